//! `GET /metrics`: Prometheus text with request, message, stream and
//! storage counters, behind a bearer token when `metrics_token` is set.

use super::error::AppError;
use super::signing::same_secret;
use super::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// Whether the request may read the metrics: always when no
/// `metrics_token` is set, else with `Authorization: Bearer <token>`.
fn authorised(state: &AppState, headers: &HeaderMap) -> bool {
    let token = &state.config.server.metrics_token;
    token.is_empty()
        || headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| same_secret(given.trim(), token))
}

/// `GET /metrics`
pub async fn render(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !authorised(&state, &headers) {
        let mut refused = AppError::unauthorized("Invalid metrics token").into_response();
        refused
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return refused;
    }
    let m = state.counters.read();
    let s = &state.storage.counters;
    let stats = state.system.stats().await.unwrap_or_default();
    let mut out = String::new();
    let mut line = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    line(
        "chats3_http_requests_total",
        "counter",
        "HTTP requests received.",
        m.requests,
    );
    line(
        "chats3_messages_accepted_total",
        "counter",
        "Messages accepted.",
        m.messages,
    );
    line(
        "chats3_streams_opened_total",
        "counter",
        "Event streams opened.",
        m.streams_opened,
    );
    line(
        "chats3_streams_open",
        "gauge",
        "Event streams open now.",
        m.streams_open,
    );
    line(
        "chats3_conversations_live",
        "gauge",
        "Conversation actors running.",
        stats.conversations as u64,
    );
    line(
        "chats3_conversations_known_absent",
        "gauge",
        "Unknown conversation ids remembered, answered without loading a room.",
        stats.known_absent as u64,
    );
    line(
        "chats3_messages_pending",
        "gauge",
        "Accepted messages not yet stored.",
        stats.pending_messages as u64,
    );
    line(
        "chats3_storage_gets_total",
        "counter",
        "Storage GET requests.",
        s.gets.load(Ordering::Relaxed),
    );
    line(
        "chats3_storage_puts_total",
        "counter",
        "Storage PUT requests.",
        s.puts.load(Ordering::Relaxed),
    );
    line(
        "chats3_storage_lists_total",
        "counter",
        "Storage LIST requests.",
        s.lists.load(Ordering::Relaxed),
    );
    line(
        "chats3_storage_deletes_total",
        "counter",
        "Storage DELETE requests (one per batch of keys).",
        s.deletes.load(Ordering::Relaxed),
    );
    line(
        "chats3_storage_errors_total",
        "counter",
        "Failed storage requests, timeouts included.",
        s.errors.load(Ordering::Relaxed),
    );
    line(
        "chats3_storage_timeouts_total",
        "counter",
        "Storage requests cut by storage.operation_timeout.",
        s.timeouts.load(Ordering::Relaxed),
    );
    line(
        "chats3_storage_failing",
        "gauge",
        "1 while the latest storage request failed or timed out.",
        u64::from(state.storage.health.is_failing()),
    );
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
