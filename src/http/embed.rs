//! Iframe embedding with integrator-signed tickets: `POST /api/v1/embed`
//! answers JSON, `GET /embed` sets the cookie and redirects into the room.

use super::cookies::session_cookie;
use super::envelope::ok;
use super::error::{ApiResult, AppError};
use super::extract::JsonBody;
use super::redirect::found;
use super::state::AppState;
use super::ticket::{TicketError, check_ticket};
use super::validate::{Fields, Text};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chats3_actors::domain::Session;
use chats3_actors::time::now_ms;
use serde::Deserialize;
use serde_json::json;

/// Checks the ticket, then enters the user: the nonce, admission and the
/// session in one call.
async fn embed_session(
    state: &AppState,
    ticket: &str,
    signature: &str,
) -> Result<Session, AppError> {
    let ticket = check_ticket(&state.config.integrators, ticket, signature, now_ms()).map_err(
        |e| match e {
            TicketError::Refused(message) => AppError::forbidden(message),
            TicketError::UnknownConversation => AppError::not_found("Conversation not found"),
        },
    )?;
    Ok(state
        .system
        .enter_embedded(
            ticket.conversation_id,
            ticket.user,
            &ticket.nonce,
            ticket.create_missing,
        )
        .await?)
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
