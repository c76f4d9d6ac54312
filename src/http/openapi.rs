//! The OpenAPI 3.1 document. Its operations come from the handlers'
//! `#[utoipa::path]` annotations, collected as the router registers them
//! ([`super::openapi_document`]); this adds what they share:
//! - [`security`]: the session (header, query, cookie), the admin password
//!   and the metrics token;
//! - [`answers`]: the error answers the layers give to any request (rate
//!   limits, origins, body limits, deadlines, overload), added to every
//!   operation they apply to;
//! - [`frames`]: the frames of the event streams (SSE and WebSocket);

mod answers;
mod frames;
mod security;

use utoipa::OpenApi;

/// Info, tags, the stream frames and the WebSocket entry.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "chats3",
        description = "Real-time chat, API-compatible with Chats3. Every JSON answer is the envelope \
            `{success, message, details?, meta}`; successes are 200, errors carry `meta` too.",
    ),
    components(schemas(
        chats3_actors::domain::Participant,
        frames::StreamFrame,
        frames::Connected,
        frames::RoomState,
        frames::Resync,
        frames::ConversationClosed,
        frames::WsServerFrame,
        frames::WsCommand,
        frames::WsAck,
    )),
    tags(
        (name = "sessions", description = "Joining, leaving, the session, its conversation and presence"),
        (name = "messages", description = "History, posting, edits, deletes, reads and reactions"),
        (name = "events", description = "The event streams (SSE, WebSocket) and the signaling relay"),
        (name = "attachments", description = "Uploads and their signed links"),
        (name = "embed", description = "Iframe embedding with integrator-signed tickets"),
        (name = "integrators", description = "Signed system messages"),
        (name = "admin", description = "Conversations, authorised by the admin password"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "pages", description = "The browser UI"),
        (name = "documentation", description = "This document and its page"),
    )
)]
struct Shared;

/// The whole document: `routes` (the operations the router serves) with
/// what every operation shares.
pub fn document(routes: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut document = Shared::openapi();
    document.merge(routes);
    frames::add_events(&mut document);
    security::add(&mut document);
    answers::add(&mut document);
    document
}
