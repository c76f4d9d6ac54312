//! Joining with a code, leaving, and reading one's session and conversation.

use super::cookies::{cleared_cookie, session_cookie};
use super::envelope::{Done, Envelope, ok, ok_empty};
use super::error::{ApiResult, ErrorEnvelope};
use super::extract::{AppQuery, CurrentSession, JsonBody};
use super::rules::{PRESENCE_STATUSES, PresenceStatus};
use super::state::AppState;
use super::validate::{AVATAR_URL, CONVERSATION_ID, Fields, JOIN_CODE, Text};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use chats3_actors::PresenceEntry;
use chats3_actors::domain::{Conversation, ConversationId, Session};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

/// Body of `POST /api/v1/join`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct JoinBody {
    /// The conversation to join.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,100}$")]
    pub conversation_id: String,
    /// Its join code.
    #[schema(pattern = "^[A-Z0-9]{6}$")]
    pub join_code: String,
    /// The name shown for the user, 1..50 characters once trimmed; unique
    /// (case-insensitive) among active participants.
    #[schema(min_length = 1, max_length = 50)]
    pub display_name: String,
    /// An http(s) URL of at most 500 characters.
    #[schema(format = "uri", max_length = 500)]
    pub avatar_url: Option<String>,
}

/// A new session, as join answers it (the `sessionId` cookie is set too).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Joined<'a> {
    /// The session's id.
    session_id: &'a str,
    /// The user's id.
    user_id: &'a str,
    /// The conversation joined.
    conversation_id: &'a ConversationId,
}

/// Body of `POST /api/v1/presence`.
#[derive(ToSchema)]
pub struct PresenceBody {
    /// The status to announce.
    #[schema(value_type = PresenceStatus)]
    pub status: String,
}

/// What `POST /api/v1/presence` answers.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresenceSet<'a> {
    /// The caller.
    user_id: &'a str,
    /// What they announced.
    #[schema(value_type = PresenceStatus)]
    status: &'a str,
}

/// Joins a conversation with its code: a new session and its cookie.
///
/// Broadcasts the system message "NAME joined the conversation".
#[utoipa::path(
    post,
    path = "/api/v1/join",
    tag = "sessions",
    request_body = JoinBody,
    responses(
        (status = 200, description = "Joined", body = Envelope<Joined>,
            headers(("Set-Cookie" = String, description = "`sessionId=…; Max-Age=86400; Path=/; HttpOnly`"))),
        (status = 403, description = "Wrong code, unknown or closed conversation, or the conversation is full", body = ErrorEnvelope),
        (status = 409, description = "An active participant has that name", body = ErrorEnvelope),
    )
)]
pub async fn join(State(state): State<AppState>, JsonBody(body): JsonBody) -> ApiResult {
    let mut fields = Fields::of(&body)?;
    let id = fields.parsed("conversationId", &CONVERSATION_ID);
    let join_code = fields.parsed("joinCode", &JOIN_CODE);
    let display_name = fields.text("displayName", Text::trimmed(1, 50));
    let avatar_url = fields.optional_parsed("avatarUrl", &AVATAR_URL);
    let (id, join_code, display_name, avatar_url) =
        fields.finish((id, join_code, display_name, avatar_url))?;
    let session = state
        .system
        .join(id, &join_code, &display_name, avatar_url)
        .await?;
    let mut response = ok(
        "Joined conversation",
        Joined {
            session_id: &session.session_id,
            user_id: &session.user_id,
            conversation_id: &session.conversation_id,
        },
    );
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&session.session_id, state.config.server.production),
    );
    Ok(response)
}

/// Query of `POST /api/v1/leave`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeaveQuery {
    /// `true` keeps the session (and its cookie) alive.
    #[serde(rename = "keepSession")]
    keep_session: Option<String>,
}

/// Leaves the conversation: ends the session and its streams.
///
/// Broadcasts "NAME left the conversation" and `peer-leave`. Takes no
/// body (any body is ignored). With `keepSession=true` the session stays.
#[utoipa::path(
    post,
    path = "/api/v1/leave",
    tag = "sessions",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    params(LeaveQuery),
    responses(
        (status = 200, description = "Left; the cookie is cleared unless the session is kept", body = Done),
        (status = 400, description = "Unusable query", body = ErrorEnvelope),
    )
)]
pub async fn leave(
    State(state): State<AppState>,
    session: CurrentSession,
    AppQuery(query): AppQuery<LeaveQuery>,
) -> ApiResult {
    let keep = query.keep_session.as_deref() == Some("true");
    state.system.leave(&session.0, keep).await?;
    if keep {
        return Ok(ok_empty("Left conversation"));
    }
    let mut response = ok_empty("Left conversation").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cleared_cookie(state.config.server.production),
    );
    Ok(response)
}

/// The caller's session.
#[utoipa::path(
    get,
    path = "/api/v1/session",
    tag = "sessions",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The session", body = Envelope<Session>))
)]
pub async fn session(CurrentSession(session): CurrentSession) -> ApiResult {
    Ok(ok("Session retrieved", session))
}

/// The metadata of the caller's conversation (as the admin routes answer it).
#[utoipa::path(
    get,
    path = "/api/v1/conversation",
    tag = "sessions",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, description = "The conversation", body = Envelope<Conversation>),
        (status = 404, description = "The conversation is gone", body = ErrorEnvelope),
    )
)]
pub async fn conversation(State(state): State<AppState>, session: CurrentSession) -> ApiResult {
    Ok(ok(
        "Conversation retrieved",
        session.conversation(&state).get().await?,
    ))
}

/// What each user of the conversation announced.
///
/// `{userId: {status, lastSeen}}`.
#[utoipa::path(
    get,
    path = "/api/v1/presence",
    operation_id = "list_presence",
    tag = "sessions",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "Presence by user id", body = Envelope<HashMap<String, PresenceEntry>>))
)]
pub async fn presence(State(state): State<AppState>, session: CurrentSession) -> ApiResult {
    Ok(ok(
        "Presence retrieved",
        session.conversation(&state).presence().await?,
    ))
}

/// Announces the caller's presence (broadcast as `presence-update`).
#[utoipa::path(
    post,
    path = "/api/v1/presence",
    tag = "sessions",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    request_body = PresenceBody,
    responses((status = 200, description = "Announced", body = Envelope<PresenceSet>))
)]
pub async fn set_presence(
    State(state): State<AppState>,
    session: CurrentSession,
    JsonBody(body): JsonBody,
) -> ApiResult {
    update_presence(&state, &session, body).await
}

/// Validates and sets the caller's presence: `POST /api/v1/presence` and
/// the WebSocket's `presence`.
pub async fn update_presence(state: &AppState, session: &CurrentSession, body: Value) -> ApiResult {
    let mut fields = Fields::of(&body)?;
    let status = fields.one_of("status", PRESENCE_STATUSES, None);
    let status = fields.finish(status)?;
    session
        .conversation(state)
        .set_presence(&session.0.user_id, status)
        .await?;
    Ok(ok(
        "Presence updated",
        PresenceSet {
            user_id: &session.0.user_id,
            status,
        },
    ))
}
