//! The WebSocket opening handshake (RFC 6455 §4.2): the upgrade request
//! checked, the connection's pending upgrade taken, the 101 answer made.
//! No subprotocol and no extension is agreed (so no permessage-deflate).

use crate::http::error::AppError;
use crate::http::state::AppState;
use crate::http::validate::invalid;
use crate::serve::upgrade::PendingUpgrade;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::net::IpAddr;

/// The one WebSocket version there is.
const VERSION: &str = "13";

/// An upgrade request that passed: what the handler needs of it.
pub struct Upgrade {
    /// The 101 answer that completes the handshake.
    pub(crate) accepted: Response,
    /// Where the connection comes from once the 101 is written.
    pub(crate) pending: PendingUpgrade,
    /// The client's address, which the rate limit counts commands against.
    pub(crate) client: Option<IpAddr>,
}

impl FromRequestParts<AppState> for Upgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let headers = &parts.headers;
        let asks = parts.version == Version::HTTP_11
            && has_token(headers, header::CONNECTION, "upgrade")
            && has_token(headers, header::UPGRADE, "websocket");
        if !asks {
            return Err(upgrade_required("WebSocket upgrade required"));
        }
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(VERSION.as_bytes())
        {
            let mut refused = upgrade_required("Unsupported WebSocket version");
            refused.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static(VERSION),
            );
            return Err(refused);
        }
        let Some(key) = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .filter(|key| is_nonce(key))
        else {
            return Err(invalid(
                "Sec-WebSocket-Key",
                "invalid_format",
                "Must be a base64-encoded 16-byte nonce",
            )
            .into_response());
        };
        let accepted = accepted(key.as_bytes());
        let client = state.limiter.address_of(parts);
        let Some(pending) = PendingUpgrade::take(&mut parts.extensions) else {
            return Err(upgrade_required("This connection cannot be upgraded"));
        };
        Ok(Upgrade {
            accepted,
            pending,
            client,
        })
    }
}

/// Whether any `name` header lists `token` (comma-separated, any case).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// `Sec-WebSocket-Key` must be 16 random bytes in base64.
fn is_nonce(key: &HeaderValue) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(key.as_bytes())
        .is_ok_and(|nonce| nonce.len() == 16)
}

/// 426 in the envelope, naming the protocol to upgrade to.
fn upgrade_required(message: &str) -> Response {
    let mut response = AppError::new(StatusCode::UPGRADE_REQUIRED, message).into_response();
    response
        .headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    response
}

/// The 101 answer to the request whose key is `key`.
fn accepted(key: &[u8]) -> Response {
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_the_rfc_example() {
        let response = accepted(b"dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            response.headers()[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn tokens_are_found_in_lists_in_any_case() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(has_token(&headers, header::CONNECTION, "upgrade"));
        assert!(!has_token(&headers, header::UPGRADE, "websocket"));
        assert!(is_nonce(&HeaderValue::from_static(
            "dGhlIHNhbXBsZSBub25jZQ=="
        )));
        assert!(!is_nonce(&HeaderValue::from_static("c2hvcnQ=")));
    }
}
