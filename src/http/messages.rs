//! Messages and reactions of the caller's conversation.

use super::envelope::{ok, ok_empty};
use super::error::{ApiResult, AppError};
use super::extract::{AppPath, CurrentSession, JsonBody};
use super::query::Paging;
use super::sanitize::strip_html;
use super::state::AppState;
use super::validate::{DATETIME, Fields, Text, UUID, invalid};
use axum::extract::State;
use chats3_actors::PageQuery;
use chats3_actors::domain::{MessageType, NewMessage};
use serde_json::{Value, json};

/// Messages of the compatible `GET /messages` (no paging parameters).
const COMPAT_PAGE: usize = 100;

/// Message types a client may post.
const MESSAGE_TYPES: &[MessageType] = &[MessageType::Text, MessageType::System, MessageType::File];

/// `GET /api/v1/messages[?limit=&cursor=&direction=older|newer]`
pub async fn list(
    State(state): State<AppState>,
    session: CurrentSession,
    Paging(paging): Paging,
) -> ApiResult {
    let conversation = session.conversation(&state);
    let Some(query) = paging else {
        let page = conversation
            .history(PageQuery {
                limit: COMPAT_PAGE,
                cursor: None,
                newer: false,
            })
            .await?;
        return Ok(ok("Messages retrieved", page.messages));
    };
    let page = conversation.history(query).await?;
    Ok(ok(
        "Messages retrieved",
        json!({
            "messages": page.messages,
            "nextCursor": page.next_cursor.map(|c| c.to_string()),
            "hasMore": page.has_more,
        }),
    ))
}

/// `POST /api/v1/messages`
pub async fn create(
    State(state): State<AppState>,
    session: CurrentSession,
    JsonBody(body): JsonBody,
) -> ApiResult {
    send(&state, &session, body).await
}

/// Validates and posts a message: `POST /api/v1/messages` and the
/// WebSocket's `send`.
pub async fn send(state: &AppState, session: &CurrentSession, body: Value) -> ApiResult {
    let max_len = state.config.limits.max_message_len;
    let mut fields = Fields::of(&body)?;
    let message_id = fields.optional_parsed("messageId", &UUID);
    let kind = fields.one_of("type", MESSAGE_TYPES, Some(MessageType::Text));
    let text = fields.text("body", Text::len(0, max_len));
    let client_timestamp = fields.parsed("clientTimestamp", &DATETIME);
    let attachment_id = fields.optional_text("attachmentId", Text::len(0, 100));
    let filename = fields.optional_text("filename", Text::len(0, 255));
    let mimetype = fields.optional_text("mimetype", Text::len(0, 100));
    let url = fields.optional_text("url", Text::len(0, 2048));
    let (message_id, kind, text, client_timestamp, attachment_id, filename, mimetype, url) = fields
        .finish((
            message_id,
            kind,
            text,
            client_timestamp,
            attachment_id,
            filename,
            mimetype,
            url,
        ))?;
    let message = NewMessage {
        message_id,
        kind,
        body: strip_html(&text),
        client_timestamp: client_timestamp.text,
        attachment_id,
        filename,
        mimetype,
        url,
    };
    state.limiter.spend_message(&session.0)?;
    let stored = session
        .conversation(state)
        .post(&session.0.sender(), message)
        .await?;
    state.counters.message_accepted();
    Ok(ok("Message saved", stored))
}

/// `GET /api/v1/reactions`
pub async fn reactions(State(state): State<AppState>, session: CurrentSession) -> ApiResult {
    Ok(ok(
        "Reactions retrieved",
        session.conversation(&state).reactions().await?,
    ))
}

/// `POST /api/v1/reactions`
pub async fn react(
    State(state): State<AppState>,
    session: CurrentSession,
    JsonBody(body): JsonBody,
) -> ApiResult {
    set_reaction(&state, &session, body).await
}

/// Validates and sets or removes a reaction: `POST /api/v1/reactions` and
/// the WebSocket's `react`.
pub async fn set_reaction(state: &AppState, session: &CurrentSession, body: Value) -> ApiResult {
    let mut fields = Fields::of(&body)?;
    let message_id = fields.parsed("messageId", &UUID);
    let emoji = fields.text("emoji", Text::len(1, 10));
    let added = fields.boolean("added");
    let (message_id, emoji, added) = fields.finish((message_id, emoji, added))?;
    session
        .conversation(state)
        .react(&session.0.user_id, &message_id, &emoji, added)
        .await?;
    Ok(ok_empty("Reaction saved"))
}

/// A message id from the path; anything unusable is simply not found.
fn path_message_id(id: &str) -> Result<&str, AppError> {
    if id.is_empty() || id.chars().count() > 100 {
        return Err(AppError::not_found("Message not found"));
    }
    Ok(id)
}

/// `PATCH /api/v1/messages/:id` `{body}`: the author, within five minutes.
pub async fn edit(
    State(state): State<AppState>,
    session: CurrentSession,
    AppPath(id): AppPath<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let mut fields = Fields::of(&body)?;
    let text = fields.text("body", Text::len(0, state.config.limits.max_message_len));
    let text = fields.finish(text)?;
    let id = path_message_id(&id)?;
    let updated = session
        .conversation(&state)
        .revise(&session.0.user_id, id, Some(strip_html(&text)))
        .await?;
    Ok(ok("Message edited", updated))
}

/// `DELETE /api/v1/messages/:id`: a soft delete by the author, within five minutes.
pub async fn remove(
    State(state): State<AppState>,
    session: CurrentSession,
    AppPath(id): AppPath<String>,
) -> ApiResult {
    let id = path_message_id(&id)?;
    let updated = session
        .conversation(&state)
        .revise(&session.0.user_id, id, None)
        .await?;
    Ok(ok("Message deleted", updated))
}

/// `POST /api/v1/messages/:id/read`
pub async fn read(
    State(state): State<AppState>,
    session: CurrentSession,
    AppPath(id): AppPath<String>,
) -> ApiResult {
    mark_read(&state, &session, &id).await
}

/// Marks the message `id` read: `POST /api/v1/messages/:id/read` and the
/// WebSocket's `read`.
pub async fn mark_read(state: &AppState, session: &CurrentSession, id: &str) -> ApiResult {
    let id = path_message_id(id)?;
    session
        .conversation(state)
        .read(&session.0.user_id, id)
        .await?;
    Ok(ok_empty("Read receipt sent"))
}

/// `POST /api/v1/messages/:id/reactions` `{emoji}`
pub async fn add_reaction(
    State(state): State<AppState>,
    session: CurrentSession,
    AppPath(id): AppPath<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let mut fields = Fields::of(&body)?;
    let emoji = fields.text("emoji", Text::len(1, 10));
    let emoji = fields.finish(emoji)?;
    let id = path_message_id(&id)?;
    session
        .conversation(&state)
        .react(&session.0.user_id, id, &emoji, true)
        .await?;
    Ok(ok(
        "Reaction added",
        json!({ "messageId": id, "emoji": emoji }),
    ))
}

/// `DELETE /api/v1/messages/:id/reactions/:emoji`
pub async fn remove_reaction(
    State(state): State<AppState>,
    session: CurrentSession,
    AppPath((id, emoji)): AppPath<(String, String)>,
) -> ApiResult {
    let id = path_message_id(&id)?;
    if emoji.is_empty() || emoji.chars().count() > 10 {
        return Err(invalid("emoji", "too_big", "Must be 1 to 10 characters"));
    }
    session
        .conversation(&state)
        .react(&session.0.user_id, id, &emoji, false)
        .await?;
    Ok(ok(
        "Reaction removed",
        json!({ "messageId": id, "emoji": emoji }),
    ))
}
