//! Admin routes: create, look up and close conversations, authorised by
//! `adminPassword` in the body.

use super::envelope::{Envelope, ok};
use super::error::{ApiResult, AppError, ErrorEnvelope};
use super::extract::{AppPath, JsonBody};
use super::state::AppState;
use super::validate::{CONVERSATION_ID, Fields, Text};
use crate::signing::same_secret;
use axum::extract::State;
use chats3_actors::ConversationHandle;
use chats3_actors::domain::{Conversation, ConversationId};
use utoipa::ToSchema;

/// Body of `POST /api/v1/admin/conversations`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct CreateBody {
    /// The admin password.
    #[schema(min_length = 1, max_length = 1000)]
    pub admin_password: String,
    /// The id to create; absent, `conv-<uuid>`.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,100}$")]
    pub conversation_id: Option<String>,
    /// A title shown to its members (trimmed, 1..=100 characters); absent,
    /// the room is shown by its id.
    #[schema(min_length = 1, max_length = 100)]
    pub title: Option<String>,
}

/// The longest room title, in characters (after trimming).
const TITLE_MAX_CHARS: usize = 100;

/// Body of the admin routes that name a conversation in their path.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct AdminBody {
    /// The admin password.
    #[schema(min_length = 1, max_length = 1000)]
    pub admin_password: String,
}

/// The password check (403), once the body is valid (400 first).
fn authorise(state: &AppState, password: &str) -> Result<(), AppError> {
    if !same_secret(password, &state.admin_password) {
        return Err(AppError::forbidden("Invalid admin password"));
    }
    Ok(())
}

fn path_id(id: &str) -> Result<ConversationId, AppError> {
    ConversationId::parse(id).ok_or_else(|| AppError::not_found("Conversation not found"))
}

/// Creates a conversation with a fresh join code and an optional title.
#[utoipa::path(
    post,
    path = "/api/v1/admin/conversations",
    operation_id = "create_conversation",
    tag = "admin",
    security(("adminPassword" = [])),
    request_body = CreateBody,
    responses(
        (status = 200, description = "Created", body = Envelope<Conversation>),
        (status = 403, description = "Wrong admin password", body = ErrorEnvelope),
        (status = 409, description = "The conversation exists", body = ErrorEnvelope),
    )
)]
pub async fn create(State(state): State<AppState>, JsonBody(body): JsonBody) -> ApiResult {
    let mut fields = Fields::of(&body)?;
    let password = fields.text("adminPassword", Text::len(1, 1000));
    let custom = fields.optional_parsed("conversationId", &CONVERSATION_ID);
    let title = fields.optional_text("title", Text::trimmed(1, TITLE_MAX_CHARS));
    let (password, custom, title) = fields.finish((password, custom, title))?;
    authorise(&state, &password)?;
    let id = custom.unwrap_or_else(ConversationId::generate);
    let conversation = state.system.conversation(id).create_titled(title).await?;
    tracing::info!(conversation = %conversation.conversation_id, "conversation created");
    Ok(ok("Conversation created", conversation))
}

/// Checks a body holding only `adminPassword`, then names the conversation
/// of the path.
fn authorised_target(
    state: &AppState,
    id: &str,
    body: &serde_json::Value,
) -> Result<ConversationHandle, AppError> {
    let mut fields = Fields::of(body)?;
    let password = fields.text("adminPassword", Text::len(1, 1000));
    authorise(state, &fields.finish(password)?)?;
    Ok(state.system.existing_conversation(path_id(id)?))
}

/// Reads a conversation's metadata.
#[utoipa::path(
    post,
    path = "/api/v1/admin/conversations/{id}",
    operation_id = "get_conversation",
    tag = "admin",
    security(("adminPassword" = [])),
    params(("id" = String, Path, description = "The conversation's id")),
    request_body = AdminBody,
    responses(
        (status = 200, description = "Conversation retrieved", body = Envelope<Conversation>),
        (status = 403, description = "Wrong admin password", body = ErrorEnvelope),
        (status = 404, description = "No such conversation", body = ErrorEnvelope),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let conversation = authorised_target(&state, &id, &body)?.get().await?;
    Ok(ok("Conversation retrieved", conversation))
}

/// Closes a conversation: it takes no more joins or embeds; existing
/// sessions go on, and every open stream gets a `conversation-closed` event.
#[utoipa::path(
    post,
    path = "/api/v1/admin/conversations/{id}/close",
    operation_id = "close_conversation",
    tag = "admin",
    security(("adminPassword" = [])),
    params(("id" = String, Path, description = "The conversation's id")),
    request_body = AdminBody,
    responses(
        (status = 200, description = "Closed", body = Envelope<Conversation>),
        (status = 403, description = "Wrong admin password", body = ErrorEnvelope),
        (status = 404, description = "No such conversation", body = ErrorEnvelope),
    )
)]
pub async fn close(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let conversation = authorised_target(&state, &id, &body)?.close().await?;
    tracing::info!(conversation = %conversation.conversation_id, "conversation closed");
    Ok(ok("Conversation closed", conversation))
}

/// Makes the conversation's actor fail as a panic would.
///
/// For the fault tests; only built with the `fault-injection` feature.
#[cfg(feature = "fault-injection")]
#[utoipa::path(
    post,
    path = "/api/v1/admin/conversations/{id}/crash",
    operation_id = "crash_conversation",
    tag = "admin",
    security(("adminPassword" = [])),
    params(("id" = String, Path, description = "The conversation's id")),
    request_body = AdminBody,
    responses(
        (status = 200, description = "Failed", body = Envelope<Object>),
        (status = 403, description = "Wrong admin password", body = ErrorEnvelope),
        (status = 404, description = "No such conversation", body = ErrorEnvelope),
    )
)]
pub async fn crash(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    authorised_target(&state, &id, &body)?.crash().await?;
    tracing::warn!(conversation = %id, "conversation actor failed on request (fault injection)");
    Ok(ok("Conversation actor failed", serde_json::json!({})))
}
