//! Cross-cutting layers: request ids and tracing spans, security headers on
//! every answer, admission (rate limit and deadline), and CORS for
//! integrator origins.

use super::AppState;
use super::error::{AppError, REQUEST_ID};
use super::rate_limit;
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

/// Admits a request: checks the per-address budget over all routes (a 429
/// when it is spent), then answers 503 in the envelope when the request
/// takes longer than `server.request_timeout` to produce its response head
/// (event streams answer at once, so only their opening counts).
pub async fn admission(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(refused) = rate_limit::check_global(&state, &request) {
        return refused;
    }
    match tokio::time::timeout(state.config.server.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => AppError::unavailable("request timed out", 1).into_response(),
    }
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

/// Whether `origin` matches an allowed pattern: exact, or
/// `scheme://*.domain` for any subdomain of `domain` with that scheme.
pub fn origin_allowed(patterns: &[String], origin: &str) -> bool {
    patterns.iter().any(|pattern| {
        if pattern == origin {
            return true;
        }
        let Some((scheme, rest)) = pattern.split_once("://*.") else {
            return false;
        };
        let Some(host) = origin
            .strip_prefix(scheme)
            .and_then(|o| o.strip_prefix("://"))
        else {
            return false;
        };
        let host = host.split(':').next().unwrap_or(host);
        host.len() > rest.len() + 1
            && host.ends_with(rest)
            && host[..host.len() - rest.len()].ends_with('.')
    })
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

#[cfg(test)]
mod tests {
    use super::origin_allowed;

    #[test]
    fn wildcard_origins_match_subdomains_only() {
        let patterns = vec![
            "https://*.example.com".to_owned(),
            "http://localhost:4000".to_owned(),
        ];
        assert!(origin_allowed(&patterns, "https://a.example.com"));
        assert!(origin_allowed(&patterns, "https://a.b.example.com:8443"));
        assert!(origin_allowed(&patterns, "http://localhost:4000"));
        assert!(!origin_allowed(&patterns, "https://example.com.evil.net"));
        assert!(!origin_allowed(&patterns, "https://badexample.com"));
        assert!(!origin_allowed(&patterns, "http://a.example.com"));
        assert!(!origin_allowed(&patterns, "http://localhost:4001"));
    }
}
