//! Joining with a code, leaving, and reading one's session and conversation.

use super::cookies::{cleared_cookie, session_cookie};
use super::envelope::{ok, ok_empty};
use super::error::ApiResult;
use super::extract::{AppQuery, CurrentSession, JsonBody};
use super::state::AppState;
use super::validate::{AVATAR_URL, CONVERSATION_ID, Fields, JOIN_CODE, Text};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /api/v1/join`
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
        json!({
            "sessionId": session.session_id,
            "userId": session.user_id,
            "conversationId": session.conversation_id,
        }),
    );
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&session.session_id, state.config.server.production),
    );
    Ok(response)
}

/// Query of `POST /api/v1/leave`.
#[derive(Deserialize)]
pub struct LeaveQuery {
    #[serde(rename = "keepSession")]
    keep_session: Option<String>,
}

/// `POST /api/v1/leave[?keepSession=true]` (any body is ignored).
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

/// `GET /api/v1/session`
pub async fn session(CurrentSession(session): CurrentSession) -> ApiResult {
    Ok(ok("Session retrieved", session))
}

/// `GET /api/v1/conversation`
pub async fn conversation(State(state): State<AppState>, session: CurrentSession) -> ApiResult {
    Ok(ok(
        "Conversation retrieved",
        session.conversation(&state).get().await?,
    ))
}

/// `GET /api/v1/presence`: `{userId: {status, lastSeen}}`
pub async fn presence(State(state): State<AppState>, session: CurrentSession) -> ApiResult {
    Ok(ok(
        "Presence retrieved",
        session.conversation(&state).presence().await?,
    ))
}

/// `POST /api/v1/presence` `{status: online|away|offline}`
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
    let status = fields.one_of("status", &["online", "away", "offline"], None);
    let status = fields.finish(status)?;
    session
        .conversation(state)
        .set_presence(&session.0.user_id, status)
        .await?;
    Ok(ok(
        "Presence updated",
        json!({ "userId": session.0.user_id, "status": status }),
    ))
}
