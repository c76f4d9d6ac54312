//! The `sessionId` cookie as Chats3 sets and clears it.

use axum::http::HeaderValue;

/// `Set-Cookie` for a new session: `SameSite=Lax` in development,
/// `Secure; SameSite=None` in production so iframes keep it.
pub fn session_cookie(session_id: &str, production: bool) -> HeaderValue {
    let attributes = if production {
        "HttpOnly; Secure; SameSite=None"
    } else {
        "HttpOnly; SameSite=Lax"
    };
    HeaderValue::from_str(&format!(
        "sessionId={session_id}; Max-Age=86400; Path=/; {attributes}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("sessionId=; Max-Age=0; Path=/"))
}

/// `Set-Cookie` that removes the session cookie.
pub fn cleared_cookie(production: bool) -> HeaderValue {
    if production {
        HeaderValue::from_static(
            "sessionId=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=None",
        )
    } else {
        HeaderValue::from_static(
            "sessionId=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax",
        )
    }
}
