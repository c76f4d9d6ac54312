//! `GET /metrics`: Prometheus text with request, message, stream, storage
//! and write-ahead log counters, behind a bearer token when
//! `metrics_token` is set.

use super::error::AppError;
use super::state::AppState;
use crate::signing::same_secret;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::fmt::Write;

/// Prometheus metric types.
const COUNTER: &str = "counter";
const GAUGE: &str = "gauge";

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

/// Prometheus metrics: requests, messages, streams, storage and the
/// write-ahead log.
///
/// With `metrics_token` set, only with `Authorization: Bearer <token>`.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    security((), ("metricsToken" = [])),
    responses(
        (status = 200, description = "The metrics, in Prometheus' text format", content_type = "text/plain", body = String),
        (status = 401, description = "Missing or wrong token (when one is set)", body = crate::http::error::ErrorEnvelope,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    )
)]
pub async fn render(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !authorised(&state, &headers) {
        let mut refused = AppError::unauthorized("Invalid metrics token").into_response();
        refused
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return refused;
    }
    let m = state.counters.read();
    let s = state.storage.metrics();
    let stats = state.system.stats().await.unwrap_or_default();
    let series: [(&str, &str, &str, u64); 14] = [
        (
            "chats3_http_requests_total",
            COUNTER,
            "HTTP requests received.",
            m.requests,
        ),
        (
            "chats3_messages_accepted_total",
            COUNTER,
            "Messages accepted.",
            m.messages,
        ),
        (
            "chats3_streams_opened_total",
            COUNTER,
            "Event streams opened.",
            m.streams_opened,
        ),
        (
            "chats3_streams_open",
            GAUGE,
            "Event streams open now.",
            m.streams_open,
        ),
        (
            "chats3_conversations_live",
            GAUGE,
            "Conversation actors running.",
            stats.conversations as u64,
        ),
        (
            "chats3_conversations_known_absent",
            GAUGE,
            "Unknown conversation ids remembered, answered without loading a room.",
            stats.known_absent as u64,
        ),
        (
            "chats3_messages_pending",
            GAUGE,
            "Accepted messages not yet stored.",
            stats.pending_messages as u64,
        ),
        (
            "chats3_storage_gets_total",
            COUNTER,
            "Storage GET requests.",
            s.gets,
        ),
        (
            "chats3_storage_puts_total",
            COUNTER,
            "Storage PUT requests.",
            s.puts,
        ),
        (
            "chats3_storage_lists_total",
            COUNTER,
            "Storage LIST requests.",
            s.lists,
        ),
        (
            "chats3_storage_deletes_total",
            COUNTER,
            "Storage DELETE requests (one per batch of keys).",
            s.deletes,
        ),
        (
            "chats3_storage_errors_total",
            COUNTER,
            "Failed storage requests, timeouts included.",
            s.errors,
        ),
        (
            "chats3_storage_timeouts_total",
            COUNTER,
            "Storage requests cut by storage.operation_timeout.",
            s.timeouts,
        ),
        (
            "chats3_storage_failing",
            GAUGE,
            "1 while the latest storage request failed or timed out.",
            u64::from(s.failing),
        ),
    ];
    let log = state.system.log().map(|wal| {
        [
            (
                "chats3_log_bytes",
                GAUGE,
                "Bytes the write-ahead log holds on disk.",
                wal.bytes(),
            ),
            (
                "chats3_log_records_total",
                COUNTER,
                "Records written to the write-ahead log.",
                wal.records(),
            ),
            (
                "chats3_log_syncs_total",
                COUNTER,
                "Group commits of the write-ahead log (one write and, with sync = fsync, one fdatasync each).",
                wal.syncs(),
            ),
        ]
    });
    let cluster = state.system.cluster().map(|link| {
        [
            (
                "chats3_redis_round_trips_total",
                COUNTER,
                "Calls to the cluster's Redis.",
                link.stats().round_trips(),
            ),
            (
                "chats3_redis_errors_total",
                COUNTER,
                "Calls to the cluster's Redis that failed or timed out.",
                link.stats().errors(),
            ),
        ]
    });
    let mut out = String::new();
    let optional = log
        .into_iter()
        .flatten()
        .chain(cluster.into_iter().flatten());
    for (name, kind, help, value) in series.into_iter().chain(optional) {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
