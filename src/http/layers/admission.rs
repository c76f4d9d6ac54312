//! Admission of a request, in this order: a too-long head (431), the
//! per-address budget ([`super::rate_limit`]), the CSRF origin rule
//! ([`super::csrf`]), a declared body the route cannot take (refused before
//! `100 Continue`), then the request's [`super::deadline`].

use super::csrf::{self, AllowedOrigins};
use super::deadline;
use super::rate_limit::{self, Limiter};
use crate::config::Config;
use crate::http::UPLOAD_PATH;
use crate::http::error::AppError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

/// Room for multipart boundaries and part headers around an upload.
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// What admission checks against, built once from the configuration.
pub struct Admission {
    limiter: Arc<Limiter>,
    origins: AllowedOrigins,
    max_json_body: usize,
    max_upload: usize,
    request_timeout: Duration,
}

impl Admission {
    /// The rules of `config`, with `public_url` as an own origin.
    pub fn new(config: &Config, public_url: &str, limiter: Arc<Limiter>) -> Self {
        Admission {
            limiter,
            origins: AllowedOrigins::new(config, public_url),
            max_json_body: config.limits.max_json_body,
            max_upload: config.limits.max_upload,
            request_timeout: config.server.request_timeout,
        }
    }
}

/// The upload route, the one whose body may take longer than
/// `request_timeout`.
fn is_upload(request: &Request) -> bool {
    request.method() == Method::POST && request.uri().path() == UPLOAD_PATH
}

/// Admits a request; see the module doc for the order.
pub async fn admission(
    State(admission): State<Arc<Admission>>,
    request: Request,
    next: Next,
) -> Response {
    // The request context runs before routing; it labels its metrics with
    // the route template, which only a layer under the router sees.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let mut response = admit(&admission, request, next).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(matched);
    }
    response
}

/// The checks, then the handler within the request deadline.
async fn admit(admission: &Admission, request: Request, next: Next) -> Response {
    if request
        .extensions()
        .get::<crate::serve::HeadTooLarge>()
        .is_some()
        || crate::serve::head_too_large(&request)
    {
        // The connection closes after it, as after hyper's own 431.
        let mut refused = AppError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request header fields too large",
        )
        .into_response();
        refused.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        return refused;
    }
    if let Some(refused) = rate_limit::check_global(&admission.limiter, &request) {
        return refused;
    }
    if let Some(refused) = csrf::check(&admission.origins, &request) {
        return refused;
    }
    if let Some(refused) = refuse_expected_oversize(admission, &request) {
        return refused;
    }
    let upload = is_upload(&request);
    deadline::within(admission.request_timeout, upload, request, next).await
}

/// A client that sent `Expect: 100-continue` with a `Content-Length` over
/// the route's limit gets its 413 at once instead of an invitation to send.
fn refuse_expected_oversize(admission: &Admission, request: &Request) -> Option<Response> {
    let headers = request.headers();
    let expects = headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    if !expects {
        return None;
    }
    let declared: u64 = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())?;
    let (limit, message) = if is_upload(request) {
        (
            admission.max_upload + MULTIPART_OVERHEAD,
            format!("File too large (max {} bytes)", admission.max_upload),
        )
    } else {
        (
            admission.max_json_body,
            format!(
                "Request body is larger than {} bytes",
                admission.max_json_body
            ),
        )
    };
    (declared > limit as u64).then(|| AppError::too_large(message).into_response())
}
