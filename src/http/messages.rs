//! Messages and reactions of the caller's conversation.

use super::AppState;
use super::error::{ApiResult, AppError, ok, ok_empty};
use super::extract::{AppPath, CurrentSession, JsonBody};
use super::sanitize::strip_html;
use super::validate::{Fields, Text, is_datetime, is_uuid};
use axum::extract::{RawQuery, State};
use chats3_actors::conversation::PageQuery;
use chats3_actors::domain::{MessageType, NewMessage};
use serde_json::json;

/// Messages of the compatible `GET /messages` (no paging parameters).
const COMPAT_PAGE: usize = 100;

/// `GET /api/v1/messages[?limit=&cursor=&direction=older|newer]`
pub async fn list(
    State(state): State<AppState>,
    session: CurrentSession,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let params: Vec<(String, String)> = query
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let conversation = session.conversation(&state);
    let paged = ["limit", "cursor", "direction"]
        .iter()
        .any(|p| param(p).is_some());
    if !paged {
        let page = conversation
            .history(PageQuery {
                limit: COMPAT_PAGE,
                cursor: None,
                newer: false,
            })
            .await?;
        return Ok(ok("Messages retrieved", page.messages));
    }
    let mut issues = Vec::new();
    let limit = match param("limit") {
        None => 50,
        Some(text) => match text.parse::<usize>() {
            Ok(n @ 1..=100) => n,
            _ => {
                issues.push(json!({"path": ["limit"], "code": "too_big", "message": "Must be an integer from 1 to 100"}));
                0
            }
        },
    };
    let cursor = match param("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(text) => match text.parse::<u64>() {
            Ok(c) => Some(c),
            Err(_) => {
                issues.push(json!({"path": ["cursor"], "code": "invalid_format", "message": "Unknown cursor"}));
                None
            }
        },
    };
    let newer = match param("direction") {
        None | Some("older") => false,
        Some("newer") => true,
        Some(_) => {
            issues.push(json!({"path": ["direction"], "code": "invalid_enum_value", "message": "Must be one of: older, newer"}));
            false
        }
    };
    if !issues.is_empty() {
        return Err(AppError::validation(issues));
    }
    let page = conversation
        .history(PageQuery {
            limit,
            cursor,
            newer,
        })
        .await?;
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
    let max_len = state.config.limits.max_message_len;
    let mut fields = Fields::of(&body)?;
    let message_id = fields.optional_matching("messageId", Text::len(36, 36), "a UUID", is_uuid);
    let kind = fields.one_of("type", &["text", "system", "file"], Some("text"));
    let text = fields.text("body", Text::len(0, max_len));
    let client_timestamp = fields.text_matching(
        "clientTimestamp",
        Text::len(1, 64),
        "an ISO-8601 date-time",
        is_datetime,
    );
    let attachment_id = fields.optional_text("attachmentId", Text::len(0, 100));
    let filename = fields.optional_text("filename", Text::len(0, 255));
    let mimetype = fields.optional_text("mimetype", Text::len(0, 100));
    let url = fields.optional_text("url", Text::len(0, 2048));
    fields.finish()?;
    let (Some(kind), Some(text), Some(client_timestamp)) = (kind, text, client_timestamp) else {
        return Err(AppError::internal("validated fields missing"));
    };
    let kind = match kind {
        "system" => MessageType::System,
        "file" => MessageType::File,
        _ => MessageType::Text,
    };
    let message = NewMessage {
        message_id,
        kind,
        body: strip_html(&text),
        client_timestamp,
        attachment_id,
        filename,
        mimetype,
        url,
    };
    let stored = session
        .conversation(&state)
        .post(&session.0.sender(), message)
        .await?;
    state.metrics.message_accepted();
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
    let mut fields = Fields::of(&body)?;
    let message_id = fields.text_matching("messageId", Text::len(36, 36), "a UUID", is_uuid);
    let emoji = fields.text("emoji", Text::len(1, 10));
    let added = fields.boolean("added");
    fields.finish()?;
    let (Some(message_id), Some(emoji), Some(added)) = (message_id, emoji, added) else {
        return Err(AppError::internal("validated fields missing"));
    };
    session
        .conversation(&state)
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
    fields.finish()?;
    let text = text.ok_or_else(|| AppError::internal("validated body missing"))?;
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
    let id = path_message_id(&id)?;
    session
        .conversation(&state)
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
    fields.finish()?;
    let emoji = emoji.ok_or_else(|| AppError::internal("validated emoji missing"))?;
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
        return Err(AppError::validation(vec![
            json!({"path": ["emoji"], "code": "too_big", "message": "Must be 1 to 10 characters"}),
        ]));
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
