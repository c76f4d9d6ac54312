//! Cross-cutting layers: request ids and tracing spans, security headers on
//! every answer, and CORS for integrator origins.

use super::AppState;
use super::error::{AppError, REQUEST_ID};
use super::origin::origin_allowed;
use crate::config::Config;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use std::time::Instant;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

/// Gives each request an id (echoed as `x-request-id` and used as the
/// envelope's `meta.requestId`) and a tracing span, and adds the security
/// headers to every answer. One layer for both, since each `from_fn` layer
/// costs a boxed service and a boxed future per request.
pub async fn request_context(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path());
    let started = Instant::now();
    state.metrics.request();
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request).instrument(span.clone()))
        .await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "answered"
        );
    });
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert("x-request-id", value);
    }
    for (name, value) in &state.security_headers {
        headers.insert(name.clone(), value.clone());
    }
    response
}

/// A handler panic becomes a plain 500 in the envelope; the cause is logged.
pub fn panic_response(cause: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let text = cause
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| cause.downcast_ref::<&str>().copied())
        .unwrap_or("panic");
    AppError::internal(format!("handler panicked: {text}")).into_response()
}

/// The Content-Security-Policy, with `frame-ancestors 'self'` plus every
/// integrator origin.
pub fn content_security_policy(config: &Config) -> String {
    let mut ancestors = String::from("'self'");
    for origin in config.all_origins() {
        ancestors.push(' ');
        ancestors.push_str(origin);
    }
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https:; \
         media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors {ancestors};"
    )
}

/// The headers every answer carries: nosniff, CSP, referrer policy,
/// X-XSS-Protection (as Chats3 sends it) and, in production, HSTS.
pub fn security_headers(config: &Config) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ),
        (
            header::X_XSS_PROTECTION,
            HeaderValue::from_static("1; mode=block"),
        ),
    ];
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(config)) {
        headers.push((header::CONTENT_SECURITY_POLICY, csp));
    }
    if config.server.production {
        headers.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    headers
}

/// CORS: integrator origins are echoed with credentials; others get no
/// allow-origin header.
pub fn cors(config: &Config) -> CorsLayer {
    let patterns: Vec<String> = config.all_origins().map(str::to_owned).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|o| origin_allowed(&patterns, o))
        }))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static("x-session-id"),
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
}
