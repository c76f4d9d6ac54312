//! Extractors: the caller's session (401 before the body is read), a
//! bounded JSON body that must say it is JSON, and path and query
//! extractors; every rejection answers in the envelope.

use super::error::AppError;
use super::query::params;
use super::state::AppState;
use super::validate::invalid;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use chats3_actors::domain::Session;
use chats3_actors::{ConversationHandle, Origin};
use futures::StreamExt;
use serde_json::Value;
use std::borrow::Cow;
use std::time::Duration;

/// The caller's session, from the `x-session-id` header, the `sessionId`
/// query parameter or the `sessionId` cookie, in that order.
pub struct CurrentSession(pub Session);

impl CurrentSession {
    /// The conversation this session belongs to.
    pub fn conversation(&self, state: &AppState) -> ConversationHandle {
        state.system.conversation(self.0.conversation_id.clone())
    }

    /// Where an HTTP request of this session comes from, for the no-echo
    /// rule: the session's own streams get no echo of what it sends.
    pub fn origin(&self) -> Origin {
        Origin::Session(self.0.session_id.as_str().into())
    }

    /// The session `id` names, or the 401 a request carrying it answers.
    pub async fn lookup(state: &AppState, id: &str) -> Result<CurrentSession, AppError> {
        if id.len() > 100 {
            return Err(AppError::unauthorized("Invalid session"));
        }
        match state.system.sessions().get(id).await? {
            Some(session) => Ok(CurrentSession(session)),
            None => Err(AppError::unauthorized("Invalid session")),
        }
    }
}

/// The session id a request carries, if any.
pub fn session_id_of(parts: &Parts) -> Option<String> {
    let from_header = parts
        .headers
        .get("x-session-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let from_query = || {
        params(&parts.uri, "sessionId")
            .find(|v| !v.is_empty())
            .map(Cow::into_owned)
    };
    let from_cookie = || {
        parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, v)| *k == "sessionId" && !v.is_empty())
            .map(|(_, v)| v.to_owned())
    };
    from_header
        .map(str::to_owned)
        .or_else(from_query)
        .or_else(from_cookie)
}

impl FromRequestParts<AppState> for CurrentSession {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let id = session_id_of(parts).ok_or_else(|| AppError::unauthorized("No session found"))?;
        CurrentSession::lookup(state, &id).await
    }
}

/// Path parameters; a rejection (e.g. `%ff` in an id) is a 400 envelope.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct AppPath<T>(pub T);

/// Query parameters; a rejection (e.g. a non-numeric `expires`) is a 400
/// envelope.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct AppQuery<T>(pub T);

fn rejected(code: &str, status: axum::http::StatusCode, text: String) -> AppError {
    if status.is_server_error() {
        return AppError::internal(text);
    }
    invalid("", code, &text)
}

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        rejected("invalid_path", rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        rejected("invalid_query", rejection.status(), rejection.body_text())
    }
}

/// A JSON body of at most `limits.max_json_body` bytes, sent as
/// `application/json` or `*/*+json`: a body a cross-site form could send
/// (`text/plain` and the like) is refused.
pub struct JsonBody(pub Value);

/// Whether the request's `Content-Type` says JSON.
fn declares_json(headers: &HeaderMap) -> bool {
    let Some(essence) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
    else {
        return false;
    };
    let essence = essence.trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.split_once('/').is_some_and(|(kind, subtype)| {
            let subtype = subtype.as_bytes();
            !kind.is_empty()
                && subtype.len() >= 5
                && subtype[subtype.len() - 5..].eq_ignore_ascii_case(b"+json")
        })
}

/// Bytes read past the limit so the client can read the 413 instead of a
/// connection reset mid-upload; beyond this the connection is dropped.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Reads a body up to `limit` bytes. Past the limit it keeps reading (and
/// discarding) for a bounded time and amount, then answers 413. A body
/// that arrives in one chunk (a small JSON body usually does) is returned
/// as that chunk, uncopied.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, AppError> {
    let mut stream = body.into_data_stream();
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            AppError::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("Unreadable body: {e}"),
            )
        })?;
        let held = first.as_ref().map_or(0, Bytes::len) + joined.len();
        if held + chunk.len() > limit {
            let mut seen = held + chunk.len();
            let drain = async {
                while let Some(Ok(chunk)) = stream.next().await {
                    seen += chunk.len();
                    if seen > DRAIN_LIMIT {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
            return Err(AppError::too_large(format!(
                "Request body is larger than {limit} bytes"
            )));
        }
        match first.take() {
            None if joined.is_empty() => first = Some(chunk),
            None => joined.extend_from_slice(&chunk),
            Some(earlier) => {
                joined.reserve(earlier.len() + chunk.len());
                joined.extend_from_slice(&earlier);
                joined.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| joined.into()))
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.config.limits.max_json_body;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
            return Err(AppError::too_large(format!(
                "Request body is larger than {limit} bytes"
            )));
        }
        let json = declares_json(request.headers());
        // Read (bounded) before refusing, so a 413 comes before any other
        // check and the client reads the answer.
        let bytes = read_limited(request.into_body(), limit).await?;
        if !json {
            return Err(invalid(
                "",
                "invalid_content_type",
                "Content-Type must be application/json",
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Value::Null));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| invalid("", "invalid_json", &format!("Malformed JSON: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::declares_json;
    use axum::http::{HeaderMap, HeaderValue, header};

    fn with_type(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn json_content_types_are_recognised_in_any_case() {
        for yes in [
            "application/json",
            "Application/JSON; charset=utf-8",
            " application/json ",
            "application/merge-patch+json",
            "application/LD+JSON",
        ] {
            assert!(declares_json(&with_type(yes)), "{yes}");
        }
        for no in [
            "text/plain",
            "application/jsonx",
            "/+json",
            "application/json5",
            "+json",
            "multipart/form-data",
        ] {
            assert!(!declares_json(&with_type(no)), "{no}");
        }
        assert!(!declares_json(&HeaderMap::new()));
    }
}
