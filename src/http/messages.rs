//! Messages and reactions of the caller's conversation.

use super::envelope::{Done, Envelope, ok, ok_empty};
use super::error::{ApiResult, AppError, ErrorEnvelope};
use super::extract::{AppPath, CurrentSession, JsonBody};
use super::query::{PageParams, Paging};
use super::sanitize::strip_html;
use super::state::AppState;
use super::validate::{DATETIME, Fields, Text, UUID, invalid};
use axum::extract::State;
use chats3_actors::domain::{Message, MessageType, NewMessage};
use chats3_actors::{Origin, PageQuery, ReactionMap};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// What `GET /api/v1/messages` answers: the compatible array without
/// paging parameters, a page with any of them.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum History {
    /// The last 100 messages, oldest first.
    Latest(Vec<Message>),
    /// One page.
    Page(HistoryPage),
}

/// Reactions by message id, then emoji: the users who reacted.
#[derive(Serialize, ToSchema)]
#[schema(value_type = BTreeMap<String, BTreeMap<String, Vec<String>>>)]
pub struct Reactions(ReactionMap);

/// A page of history.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    /// The page's messages, oldest first.
    messages: Vec<Message>,
    /// Where the next page in the same direction starts (opaque, exclusive).
    next_cursor: Option<String>,
    /// Whether messages lie beyond this page.
    has_more: bool,
    /// Each reader's read mark: `{userId: messageId}`, the last message
    /// that user read (every user with a mark, wherever it lies).
    readers: BTreeMap<String, String>,
}

/// What `GET /api/v1/messages/unread` answers.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnreadCount {
    /// Messages of others after the caller's read mark (system notices
    /// and deleted messages not counted).
    unread: usize,
    /// More may be unread than counted: the mark is older than the
    /// newest messages the service holds in memory (`history_tail`).
    capped: bool,
    /// The sequence of the last message the caller read (its stream
    /// event id); `null` before their first read.
    last_read_seq: Option<u64>,
    /// The last message the caller read; `null` before their first read.
    last_read_message_id: Option<String>,
}

/// Body of `POST /api/v1/messages`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct NewMessageBody {
    /// An idempotency key: the same id posted again answers the stored message.
    #[schema(format = "uuid")]
    pub message_id: Option<String>,
    /// `text` when absent.
    #[schema(value_type = Option<MessageType>, rename = "type")]
    pub kind: Option<String>,
    /// The text (HTML tags are removed); at most `limits.max_message_len`
    /// characters (10000 by default).
    #[schema(max_length = 10000)]
    pub body: String,
    /// When the client sent it; stored as sent.
    #[schema(format = DateTime)]
    pub client_timestamp: String,
    /// An attachment's id.
    #[schema(max_length = 100)]
    pub attachment_id: Option<String>,
    /// The attachment's file name.
    #[schema(max_length = 255)]
    pub filename: Option<String>,
    /// The attachment's MIME type.
    #[schema(max_length = 100)]
    pub mimetype: Option<String>,
    /// A link (any string, relative paths included).
    #[schema(max_length = 2048)]
    pub url: Option<String>,
}

/// Body of `POST /api/v1/reactions`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct ReactBody {
    /// The message reacted to.
    #[schema(format = "uuid")]
    pub message_id: String,
    /// The emoji (one per user and message: adding one removes the others).
    #[schema(min_length = 1, max_length = 10)]
    pub emoji: String,
    /// `true` adds, `false` removes the caller's.
    pub added: bool,
}

/// Body of `PATCH /api/v1/messages/:id`.
#[derive(ToSchema)]
pub struct EditBody {
    /// The new text (HTML tags are removed).
    #[schema(max_length = 10000)]
    pub body: String,
}

/// Body of `POST /api/v1/messages/:id/reactions`.
#[derive(ToSchema)]
pub struct EmojiBody {
    /// The emoji to add.
    #[schema(min_length = 1, max_length = 10)]
    pub emoji: String,
}

/// What adding or removing one reaction answers.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReactionChange<'a> {
    /// The message.
    message_id: &'a str,
    /// The emoji.
    emoji: &'a str,
}

/// Messages of the compatible `GET /messages` (no paging parameters).
const COMPAT_PAGE: usize = 100;

/// Message types a client may post.
const MESSAGE_TYPES: &[MessageType] = &[MessageType::Text, MessageType::System, MessageType::File];

/// The conversation's history, in the order the service accepted it.
///
/// Without `limit`, `cursor` and `direction`: the last 100 messages, oldest
/// first (as Chats3). With any of them: one page.
#[utoipa::path(
    get,
    path = "/api/v1/messages",
    operation_id = "list_messages",
    tag = "messages",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "Messages", body = Envelope<History>),
        (status = 400, description = "Unusable paging parameters", body = ErrorEnvelope),
    )
)]
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
        return Ok(ok("Messages retrieved", History::Latest(page.messages)));
    };
    let page = conversation.history(query).await?;
    Ok(ok(
        "Messages retrieved",
        History::Page(HistoryPage {
            messages: page.messages,
            next_cursor: page.next_cursor.map(|c| c.to_string()),
            has_more: page.has_more,
            readers: page.readers,
        }),
    ))
}

/// The caller's unread count and read mark.
///
/// Messages of others after the caller's last `POST
/// /api/v1/messages/:id/read` (or WebSocket `read`).
#[utoipa::path(
    get,
    path = "/api/v1/messages/unread",
    operation_id = "unread_count",
    tag = "messages",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The caller's unread count", body = Envelope<UnreadCount>))
)]
pub async fn unread(State(state): State<AppState>, session: CurrentSession) -> ApiResult {
    let unread = session
        .conversation(&state)
        .unread(&session.0.user_id)
        .await?;
    Ok(ok(
        "Unread count retrieved",
        UnreadCount {
            unread: unread.count,
            capped: unread.capped,
            last_read_seq: unread.last_read.as_ref().map(|mark| mark.seq),
            last_read_message_id: unread.last_read.map(|mark| mark.message_id),
        },
    ))
}

/// Posts a message, broadcast as `new-message`.
///
/// `messageId` is an idempotency key: posted again, the stored message is
/// answered and nothing new is stored or broadcast.
#[utoipa::path(
    post,
    path = "/api/v1/messages",
    operation_id = "create_message",
    tag = "messages",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    request_body = NewMessageBody,
    responses(
        (status = 200, description = "The stored message", body = Envelope<Message>),
        (status = 409, description = "`messageId` names another sender's message", body = ErrorEnvelope),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    session: CurrentSession,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let origin = session.origin();
    send(&state, &session, origin, body).await
}

/// Validates and posts a message: `POST /api/v1/messages` and the
/// WebSocket's `send`; the sender's streams `origin` names get no echo.
pub async fn send(
    state: &AppState,
    session: &CurrentSession,
    origin: Origin,
    body: Value,
) -> ApiResult {
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
        .post_from(&session.0.sender(), message, origin)
        .await?;
    state.counters.message_accepted();
    Ok(ok("Message saved", stored))
}

/// Every reaction of the conversation.
///
/// `{messageId: {emoji: [userId…]}}`.
#[utoipa::path(
    get,
    path = "/api/v1/reactions",
    operation_id = "list_reactions",
    tag = "messages",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "Reactions by message and emoji", body = Envelope<Reactions>))
)]
pub async fn reactions(State(state): State<AppState>, session: CurrentSession) -> ApiResult {
    Ok(ok(
        "Reactions retrieved",
        Reactions(session.conversation(&state).reactions().await?),
    ))
}

/// Adds or removes the caller's reaction to a message.
#[utoipa::path(
    post,
    path = "/api/v1/reactions",
    tag = "messages",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    request_body = ReactBody,
    responses(
        (status = 200, description = "Saved", body = Done),
        (status = 404, description = "No such message", body = ErrorEnvelope),
    )
)]
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

/// Edits a message: its author, within five minutes of posting it.
///
/// Broadcast as `message-edited`.
#[utoipa::path(
    patch,
    path = "/api/v1/messages/{id}",
    operation_id = "edit_message",
    tag = "messages",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "The message's id")),
    request_body = EditBody,
    responses(
        (status = 200, description = "The edited message", body = Envelope<Message>),
        (status = 403, description = "Not the author's, a system message, or too late", body = ErrorEnvelope),
        (status = 404, description = "No such message", body = ErrorEnvelope),
    )
)]
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

/// Deletes a message (soft): its author, within five minutes of posting it.
///
/// Broadcast as `message-deleted`.
#[utoipa::path(
    delete,
    path = "/api/v1/messages/{id}",
    operation_id = "delete_message",
    tag = "messages",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "The message's id")),
    responses(
        (status = 200, description = "The deleted message", body = Envelope<Message>),
        (status = 403, description = "Not the author's, a system message, or too late", body = ErrorEnvelope),
        (status = 404, description = "No such message", body = ErrorEnvelope),
    )
)]
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

/// Moves the caller's read mark forward to a message.
///
/// Broadcast as `message-read`, to the caller's own other streams too
/// (their other tabs and devices). A message at or before the caller's
/// mark leaves it where it is. The mark is kept with the conversation:
/// paged `GET /api/v1/messages` answers carry every reader's, and `GET
/// /api/v1/messages/unread` counts from it.
#[utoipa::path(
    post,
    path = "/api/v1/messages/{id}/read",
    operation_id = "read_message",
    tag = "messages",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "The message's id")),
    responses(
        (status = 200, description = "Marked", body = Done),
        (status = 404, description = "No such message", body = ErrorEnvelope),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    session: CurrentSession,
    AppPath(id): AppPath<String>,
) -> ApiResult {
    // An HTTP request comes from no stream: every stream of the caller's
    // learns the new mark.
    mark_read(&state, &session, Origin::Nowhere, &id).await
}

/// Moves the caller's read mark to the message `id`: `POST
/// /api/v1/messages/:id/read` and the WebSocket's `read`; the caller's
/// streams `origin` names are not told.
pub async fn mark_read(
    state: &AppState,
    session: &CurrentSession,
    origin: Origin,
    id: &str,
) -> ApiResult {
    let id = path_message_id(id)?;
    session
        .conversation(state)
        .read(&session.0.user_id, id, origin)
        .await?;
    Ok(ok_empty("Read receipt sent"))
}

/// Adds the caller's reaction to a message (replacing their other one).
#[utoipa::path(
    post,
    path = "/api/v1/messages/{id}/reactions",
    tag = "messages",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "The message's id")),
    request_body = EmojiBody,
    responses(
        (status = 200, description = "Added", body = Envelope<ReactionChange>),
        (status = 404, description = "No such message", body = ErrorEnvelope),
    )
)]
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
        ReactionChange {
            message_id: id,
            emoji: &emoji,
        },
    ))
}

/// Removes the caller's reaction to a message.
#[utoipa::path(
    delete,
    path = "/api/v1/messages/{id}/reactions/{emoji}",
    tag = "messages",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    params(
        ("id" = String, Path, description = "The message's id"),
        ("emoji" = String, Path, description = "The emoji (1..10 characters)"),
    ),
    responses(
        (status = 200, description = "Removed", body = Envelope<ReactionChange>),
        (status = 400, description = "Unusable emoji", body = ErrorEnvelope),
        (status = 404, description = "No such message", body = ErrorEnvelope),
    )
)]
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
        ReactionChange {
            message_id: id,
            emoji: &emoji,
        },
    ))
}
