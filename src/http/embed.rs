//! Iframe embedding with integrator-signed tickets: `POST /api/v1/embed`
//! answers JSON, `GET /embed` sets the cookie and redirects into the room.

use super::cookies::session_cookie;
use super::envelope::ok;
use super::error::{ApiResult, AppError};
use super::extract::JsonBody;
use super::origin::origin_allowed;
use super::redirect::found;
use super::sessions::open_session;
use super::signing::verify;
use super::state::AppState;
use super::validate::{Fields, Text, is_url};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chats3_actors::domain::{ConversationId, Role, Sender, Session};
use chats3_actors::time::{now_ms, parse_iso_ms};
use serde::Deserialize;
use serde_json::{Value, json};

/// How far `issuedAt` may be from the server's clock, either way: a
/// ticket is then usable for at most twice this, within the nonces' memory.
const TICKET_MAX_SKEW_MS: i64 = 60_000;

/// Checks a ticket in the documented order; the error says which check
/// failed (always 403 here).
pub async fn verify_ticket(
    state: &AppState,
    ticket_text: &str,
    signature: &str,
) -> Result<(ConversationId, Sender), AppError> {
    let ticket: Value = serde_json::from_str(ticket_text)
        .map_err(|_| AppError::forbidden("Validation error: ticket is not valid JSON"))?;
    let field = |name: &str| {
        ticket
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let required = [
        "integratorId",
        "conversationId",
        "userId",
        "displayName",
        "role",
        "origin",
        "issuedAt",
        "expiresAt",
        "nonce",
    ];
    if required.iter().any(|name| field(name).is_none()) {
        return Err(AppError::forbidden("Missing required fields"));
    }
    let text = |name: &str| field(name).unwrap_or_default();
    let integrator = state
        .config
        .integrators
        .iter()
        .find(|i| i.id == text("integratorId"))
        .ok_or_else(|| AppError::forbidden("Unknown integrator"))?;
    if !verify(
        integrator.secret.as_bytes(),
        ticket_text.as_bytes(),
        signature,
    ) {
        return Err(AppError::forbidden("Invalid signature"));
    }
    let now = now_ms();
    if parse_iso_ms(text("expiresAt")).is_none_or(|t| now > t) {
        return Err(AppError::forbidden("Ticket expired"));
    }
    let issued_at = parse_iso_ms(text("issuedAt"));
    if issued_at.is_none_or(|t| now - t > TICKET_MAX_SKEW_MS) {
        return Err(AppError::forbidden("Ticket too old"));
    }
    if issued_at.is_some_and(|t| t - now > TICKET_MAX_SKEW_MS) {
        return Err(AppError::forbidden("Ticket issued in the future"));
    }
    if !origin_allowed(&integrator.allowed_origins, text("origin")) {
        return Err(AppError::forbidden("Origin not allowed"));
    }
    let role = match text("role") {
        "user" => Role::User,
        "admin" => Role::Admin,
        _ => return Err(AppError::forbidden("Invalid role")),
    };
    let conversation_id = ConversationId::parse(text("conversationId"))
        .ok_or_else(|| AppError::not_found("Conversation not found"))?;
    let (user_id, display_name) = (text("userId"), text("displayName").trim());
    // The same rule as join's avatarUrl: an http(s) URL of at most 500.
    let avatar_url = field("avatarUrl");
    if user_id.chars().count() > 100
        || display_name.is_empty()
        || display_name.chars().count() > 50
        || avatar_url.is_some_and(|u| u.chars().count() > 500 || !is_url(u))
    {
        return Err(AppError::forbidden("Invalid user in ticket"));
    }
    let avatar_url = avatar_url.map(str::to_owned);
    if !state
        .system
        .nonces()
        .check_and_store(&text("nonce").chars().take(200).collect::<String>())
        .await?
    {
        return Err(AppError::forbidden("Nonce already used (replay attack)"));
    }
    let user = Sender {
        user_id: user_id.to_owned(),
        display_name: display_name.to_owned(),
        avatar_url,
        role,
    };
    Ok((conversation_id, user))
}

/// Verifies the ticket, admits the user and opens a session.
async fn embed_session(
    state: &AppState,
    ticket: &str,
    signature: &str,
) -> Result<Session, AppError> {
    let (conversation_id, user) = verify_ticket(state, ticket, signature).await?;
    state
        .system
        .existing_conversation(conversation_id.clone())
        .admit(&user)
        .await?;
    open_session(
        state,
        conversation_id,
        user.user_id,
        user.display_name,
        user.avatar_url,
        user.role,
    )
    .await
}

/// `POST /api/v1/embed`
pub async fn create_session(State(state): State<AppState>, JsonBody(body): JsonBody) -> ApiResult {
    let mut fields = Fields::of(&body)?;
    let ticket = fields.text("ticket", Text::len(1, 8192));
    let signature = fields.text("signature", Text::len(1, 200));
    let (ticket, signature) = fields.finish((ticket, signature))?;
    let session = embed_session(&state, &ticket, &signature).await?;
    let mut response = ok(
        "Session created",
        json!({ "sessionId": session.session_id, "conversationId": session.conversation_id }),
    );
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&session.session_id, state.config.server.production),
    );
    Ok(response)
}

/// Query of `GET /embed`.
#[derive(Deserialize)]
pub struct LandingQuery {
    ticket: Option<String>,
    signature: Option<String>,
}

fn plain(status: StatusCode, text: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// `GET /embed?ticket=&signature=`: cookie and 302 into the room, or a
/// plain-text 400/403.
pub async fn landing(
    State(state): State<AppState>,
    query: Result<Query<LandingQuery>, QueryRejection>,
) -> Response {
    // This page answers its failures in plain text, as Chats3 did.
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return plain(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let (Some(ticket), Some(signature)) = (
        query.ticket.filter(|t| !t.is_empty() && t.len() <= 8192),
        query.signature.filter(|s| !s.is_empty() && s.len() <= 200),
    ) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "Missing ticket or signature".into(),
        );
    };
    match embed_session(&state, &ticket, &signature).await {
        Ok(session) => {
            let location = format!(
                "/room/{}?sessionId={}&embed=1",
                session.conversation_id, session.session_id
            );
            let mut response = found(&location);
            response.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(&session.session_id, state.config.server.production),
            );
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => plain(e.status, e.message),
    }
}
