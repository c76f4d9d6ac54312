//! Admin routes: create, look up and close conversations, authorised by
//! `adminPassword` in the body.

use super::envelope::ok;
use super::error::{ApiResult, AppError};
use super::extract::{AppPath, JsonBody};
use super::state::AppState;
use super::validate::{CONVERSATION_ID, Fields, Text};
use crate::signing::same_secret;
use axum::extract::State;
use chats3_actors::ConversationHandle;
use chats3_actors::domain::ConversationId;

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

/// `POST /api/v1/admin/conversations`
pub async fn create(State(state): State<AppState>, JsonBody(body): JsonBody) -> ApiResult {
    let mut fields = Fields::of(&body)?;
    let password = fields.text("adminPassword", Text::len(1, 1000));
    let custom = fields.optional_parsed("conversationId", &CONVERSATION_ID);
    let (password, custom) = fields.finish((password, custom))?;
    authorise(&state, &password)?;
    let id = custom.unwrap_or_else(ConversationId::generate);
    let conversation = state.system.conversation(id).create().await?;
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

/// `POST /api/v1/admin/conversations/:id`
pub async fn get_one(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let conversation = authorised_target(&state, &id, &body)?.get().await?;
    Ok(ok("Conversation retrieved", conversation))
}

/// `POST /api/v1/admin/conversations/:id/close`
pub async fn close(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let conversation = authorised_target(&state, &id, &body)?.close().await?;
    tracing::info!(conversation = %conversation.conversation_id, "conversation closed");
    Ok(ok("Conversation closed", conversation))
}

/// `POST /api/v1/admin/conversations/:id/crash`: makes the conversation's
/// actor fail as a panic would (the fault tests; only built with the
/// `fault-injection` feature).
#[cfg(feature = "fault-injection")]
pub async fn crash(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    authorised_target(&state, &id, &body)?.crash().await?;
    tracing::warn!(conversation = %id, "conversation actor failed on request (fault injection)");
    Ok(ok("Conversation actor failed", serde_json::json!({})))
}
