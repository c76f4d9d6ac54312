//! `/api/v1/signaling`: the event stream (`GET`, Server-Sent Events) and
//! the signaling relay (`POST`).

use super::envelope::{Envelope, ok};
use super::error::{ApiResult, AppError, ErrorEnvelope};
use super::event_stream;
use super::extract::{CurrentSession, JsonBody};
use super::query::ResumeFrom;
use super::rules::{SIGNAL_TYPES, SignalType};
use super::state::AppState;
use super::validate::{Fields, Text};
use axum::extract::State;
use chats3_actors::{StreamOpen, Subscription};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Largest `data` of a signaling event (an SDP offer is a few KiB), which
/// bounds the replay buffer and every subscriber queue.
pub const MAX_SIGNAL_DATA: usize = 64 * 1024;

/// Body of `POST /api/v1/signaling`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct SignalBody {
    /// The event's type.
    #[schema(value_type = SignalType, rename = "type")]
    pub kind: String,
    /// The one user it is for; absent or empty, a broadcast.
    #[schema(max_length = 200)]
    pub to_user_id: Option<String>,
    /// Any JSON of at most 64 KiB, relayed unchanged (absent: `null`).
    #[schema(value_type = Value, required = false)]
    pub data: Option<serde_json::Value>,
}

/// What `POST /api/v1/signaling` answers.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Signalled {
    /// The event's id: its `id` on the streams.
    event_id: String,
}

/// Relays a signaling event to the conversation's streams.
#[utoipa::path(
    post,
    path = "/api/v1/signaling",
    tag = "events",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    request_body = SignalBody,
    responses((status = 200, description = "Relayed", body = Envelope<Signalled>))
)]
pub async fn signal(
    State(state): State<AppState>,
    session: CurrentSession,
    JsonBody(body): JsonBody,
) -> ApiResult {
    relay(&state, &session, body).await
}

/// Validates and relays a signaling event: `POST /api/v1/signaling` and
/// the WebSocket's `signal`.
pub async fn relay(state: &AppState, session: &CurrentSession, body: Value) -> ApiResult {
    let mut fields = Fields::of(&body)?;
    let kind = fields.one_of("type", SIGNAL_TYPES, None);
    let to = fields.optional_text("toUserId", Text::len(0, 200));
    let data = fields.json("data", MAX_SIGNAL_DATA);
    let (kind, to, data) = fields.finish((kind, to, data))?;
    let to = to.filter(|t| !t.is_empty());
    let event_id = session
        .conversation(state)
        .signal(&session.0.user_id, kind, to.as_deref(), &data)
        .await?;
    Ok(ok("Signaling event added", Signalled { event_id }))
}

/// The conversation's events as Server-Sent Events.
///
/// The stream opens with `retry: 3000`, then `{"type":"system","data":"connected"}`
/// and `{"type":"room-state","data":{"participants":[…]}}`, then (on a resume
/// that cannot be served in full) `{"type":"resync","data":{"lastEventId":…}}`,
/// then the events (`StreamEvent`): each block an `id:` line (the
/// per-conversation sequence) and a `data:` line of JSON (a `StreamFrame`).
/// A `: heartbeat` comment comes every 15 s. A subscriber gets broadcasts
/// except its own, events addressed to it, and targeted events it sent.
/// Resume with `Last-Event-ID` (or `?cursor=`): the missed events are
/// replayed in order, once each. Errors before the stream starts (401)
/// are envelopes.
#[utoipa::path(
    get,
    path = "/api/v1/signaling",
    operation_id = "event_stream",
    tag = "events",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    params(
        ("cursor" = Option<String>, Query, description = "Resume after this event id (when no `Last-Event-ID` is sent)"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id"),
    ),
    responses(
        (status = 200, description = "The event stream; each `data:` line is a `StreamFrame`",
            content_type = "text/event-stream", body = String,
            headers(
                ("Cache-Control" = String, description = "`no-cache`"),
                ("X-Accel-Buffering" = String, description = "`no`"),
            )),
        (status = 404, description = "The session's conversation is gone", body = ErrorEnvelope),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    session: CurrentSession,
    ResumeFrom(resume_from): ResumeFrom,
) -> ApiResult {
    let subscription = subscribe(&state, session, resume_from).await?;
    Ok(event_stream::response(
        subscription,
        state.config.server.heartbeat_interval,
        state.counters.clone(),
    ))
}

/// Opens a stream of the session's conversation, resumed after
/// `resume_from`: the SSE stream's and the WebSocket's, counted alike.
pub async fn subscribe(
    state: &AppState,
    session: CurrentSession,
    resume_from: Option<String>,
) -> Result<Subscription, AppError> {
    let conversation = session.conversation(state);
    let CurrentSession(session) = session;
    let subscription = conversation
        .subscribe(StreamOpen {
            user_id: session.user_id,
            display_name: session.display_name,
            session_id: session.session_id,
            resume_from,
            ends_with: state.shutdown.clone(),
        })
        .await?;
    Ok(subscription)
}
