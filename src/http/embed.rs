//! Iframe embedding with integrator-signed tickets: `POST /api/v1/embed`
//! answers JSON, `GET /embed` sets the cookie and redirects into the room
//! (or, failing, answers plain text, or a browser [`failure_page`]).

mod failure_page;

use failure_page::Failure;

use super::cookies::session_cookie;
use super::envelope::{Envelope, ok};
use super::error::{ApiResult, AppError, ErrorEnvelope};
use super::extract::JsonBody;
use super::origin::origin_allowed;
use super::pages::{html_page, read_page};
use super::redirect::found;
use super::state::AppState;
use super::ticket::{TicketError, check_ticket};
use super::validate::{Fields, Text};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chats3_actors::domain::{ConversationId, Session};
use chats3_actors::time::now_ms;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Body of `POST /api/v1/embed`.
#[derive(ToSchema)]
pub struct EmbedBody {
    /// The ticket: JSON text with `integratorId, conversationId, userId,
    /// displayName, avatarUrl?, role (user|admin), origin, issuedAt,
    /// expiresAt, nonce`.
    #[schema(min_length = 1, max_length = 8192)]
    pub ticket: String,
    /// base64url(HMAC-SHA256(integrator secret, the ticket text as sent)).
    #[schema(min_length = 1, max_length = 200)]
    pub signature: String,
}

/// The session an embed made (the `sessionId` cookie is set too).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Embedded<'a> {
    /// The session's id.
    session_id: &'a str,
    /// Its conversation.
    conversation_id: &'a ConversationId,
}

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

/// Enters a conversation with an integrator-signed ticket: a new session
/// and its cookie.
#[utoipa::path(
    post,
    path = "/api/v1/embed",
    operation_id = "embed",
    tag = "embed",
    request_body = EmbedBody,
    responses(
        (status = 200, description = "Session created", body = Envelope<Embedded>,
            headers(("Set-Cookie" = String, description = "`sessionId=…; Max-Age=86400; Path=/; HttpOnly`"))),
        (status = 403, description = "The ticket is refused (the message says which check failed), or the conversation is closed or full", body = ErrorEnvelope),
        (status = 404, description = "No such conversation", body = ErrorEnvelope),
        (status = 409, description = "An active participant has that name", body = ErrorEnvelope),
    )
)]
pub async fn create_session(State(state): State<AppState>, JsonBody(body): JsonBody) -> ApiResult {
    let mut fields = Fields::of(&body)?;
    let ticket = fields.text("ticket", Text::len(1, 8192));
    let signature = fields.text("signature", Text::len(1, 200));
    let (ticket, signature) = fields.finish((ticket, signature))?;
    let session = embed_session(&state, &ticket, &signature).await?;
    let mut response = ok(
        "Session created",
        Embedded {
            session_id: &session.session_id,
            conversation_id: &session.conversation_id,
        },
    );
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&session.session_id, state.config.server.production),
    );
    Ok(response)
}

/// Query of `GET /embed`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LandingQuery {
    // Required, but optional to serde: the page answers its absence in
    // plain text itself.
    /// The ticket's JSON text, as for `POST /api/v1/embed`.
    #[param(required = true)]
    ticket: Option<String>,
    /// Its signature.
    #[param(required = true)]
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

/// A failure of `GET /embed`: the service's message in plain text, as
/// Chats3 answered; a browser's navigation gets the friendly page instead,
/// with the same status.
async fn refusal(
    state: &AppState,
    headers: &HeaderMap,
    ticket: Option<&str>,
    status: StatusCode,
    message: String,
) -> Response {
    if !failure_page::wants_html(headers) {
        return plain(status, message);
    }
    let failure = Failure::of(status, &message);
    let host = failure_page::host_origin(headers, ticket, |origin| {
        state
            .config
            .integrators
            .iter()
            .any(|i| origin_allowed(&i.allowed_origins, origin))
    });
    match read_page(state, failure_page::TEMPLATE).await {
        Ok(template) => {
            let mut response = html_page(
                status,
                failure_page::render(&template, failure, status, host.as_deref()),
            );
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => plain(status, failure.title().into()),
    }
}

/// The iframe's entry: checks the ticket, sets the cookie and redirects
/// into the room.
///
/// Failures answer in plain text, as Chats3 did; a request that accepts
/// `text/html` (a browser's) gets a page with a friendly text instead, with
/// the same status, that tells an allowed embedding page over
/// `postMessage`.
#[utoipa::path(
    get,
    path = "/embed",
    operation_id = "embed_landing",
    tag = "embed",
    params(LandingQuery),
    responses(
        (status = 302, description = "Into the room",
            headers(
                ("Location" = String, description = "`/room/:conversationId?sessionId=…&embed=1`"),
                ("Set-Cookie" = String, description = "The session cookie"),
            )),
        (status = 400, description = "Missing ticket or signature", content((String = "text/plain"), (String = "text/html"))),
        (status = 403, description = "The ticket is refused", content((String = "text/plain"), (String = "text/html"))),
        (status = 404, description = "No such conversation", content((String = "text/plain"), (String = "text/html"))),
        (status = 409, description = "An active participant has that name", content((String = "text/plain"), (String = "text/html"))),
        (status = 429, description = "Too many streams or requests", content((String = "text/plain"), (String = "text/html"))),
        (status = 503, description = "Overloaded or storage unavailable", content((String = "text/plain"), (String = "text/html"))),
    )
)]
pub async fn landing(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<LandingQuery>, QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => {
            let message = rejection.body_text();
            return refusal(&state, &headers, None, StatusCode::BAD_REQUEST, message).await;
        }
    };
    let (Some(ticket), Some(signature)) = (
        query.ticket.filter(|t| !t.is_empty() && t.len() <= 8192),
        query.signature.filter(|s| !s.is_empty() && s.len() <= 200),
    ) else {
        let message = "Missing ticket or signature".to_owned();
        return refusal(&state, &headers, None, StatusCode::BAD_REQUEST, message).await;
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
        Err(e) => refusal(&state, &headers, Some(&ticket), e.status, e.message).await,
    }
}
