//! The security schemes operations name: the session, in the three places
//! [`crate::http::extract::session_id_of`] looks (in that order), the
//! admin password and the metrics token.

use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The session in the `x-session-id` header.
pub(super) const SESSION_HEADER: &str = "sessionHeader";

/// The schemes, by the names the annotations use.
fn schemes() -> [(&'static str, SecurityScheme); 5] {
    [
        (
            SESSION_HEADER,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-session-id",
                "The session id that join or embed answered. Looked up first.",
            ))),
        ),
        (
            "sessionQuery",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "sessionId",
                "The session id as a query parameter (EventSource cannot set headers). \
                 Looked up when no header is sent.",
            ))),
        ),
        (
            "sessionCookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "sessionId",
                "The cookie join and embed set (`HttpOnly; Path=/; Max-Age=86400`). \
                 Looked up last.",
            ))),
        ),
        (
            "adminPassword",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "adminPassword",
                "The admin password. Not a header: the admin routes read it from the \
                 `adminPassword` field of their JSON body (OpenAPI has no scheme for a \
                 body field). A wrong one answers 403.",
            ))),
        ),
        (
            "metricsToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer <metrics_token>`, needed only when \
                         `metrics_token` is set.",
                    ))
                    .build(),
            ),
        ),
    ]
}

/// Adds the schemes to `document`'s components.
pub(super) fn add(document: &mut OpenApi) {
    let components = document.components.get_or_insert_with(Default::default);
    for (name, scheme) in schemes() {
        components.add_security_scheme(name, scheme);
    }
}
