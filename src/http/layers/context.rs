//! The outermost layer: a request id (echoed as `x-request-id` and used as
//! the envelope's `meta.requestId`), a tracing span, the request metrics
//! (counted as it arrives, then by route and status with its latency once
//! answered), and the security headers on every answer. One layer for all of it,
//! since each `from_fn` layer costs a boxed service and a boxed future per
//! request.

use super::security_headers::SecurityHeaders;
use crate::http::counters::{Counters, Route};
use crate::http::envelope::REQUEST_ID;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Runs the request inside its id and span, and completes its answer.
pub async fn request_context(
    State(counters): State<Arc<Counters>>,
    State(security_headers): State<SecurityHeaders>,
    request: Request,
    next: Next,
) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path());
    let started = Instant::now();
    let method = request.method().clone();
    counters.request();
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request).instrument(span.clone()))
        .await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    let route = Route::of(response.extensions().get::<MatchedPath>());
    counters.answered(&method, route, status, took);
    span.in_scope(|| {
        tracing::debug!(status, elapsed_ms = took.as_millis() as u64, "answered");
    });
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert("x-request-id", value);
    }
    for (name, value) in security_headers.iter() {
        headers.insert(name.clone(), value.clone());
    }
    response
}
