//! Admin routes: create, look up and close conversations, authorised by
//! `adminPassword` in the body.

use super::AppState;
use super::error::{ApiResult, AppError, ok};
use super::extract::{AppPath, JsonBody};
use super::signing::same_secret;
use super::validate::{Fields, Text, is_conversation_id};
use axum::extract::State;
use chats3_actors::ConversationHandle;
use chats3_actors::domain::ConversationId;

/// Validates the body (400 first) and then the password (403).
fn authorise(
    state: &AppState,
    fields: Fields<'_>,
    password: Option<String>,
) -> Result<(), AppError> {
    fields.finish()?;
    if !same_secret(password.as_deref().unwrap_or(""), &state.admin_password) {
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
    let custom = fields.optional_matching(
        "conversationId",
        Text::len(1, 100),
        "1-100 of A-Z a-z 0-9 _ -",
        is_conversation_id,
    );
    authorise(&state, fields, password)?;
    let id = custom
        .and_then(|c| ConversationId::parse(&c))
        .unwrap_or_else(ConversationId::generate);
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
    authorise(state, fields, password)?;
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
