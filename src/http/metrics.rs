//! `GET /metrics`: Prometheus text (`prometheus-client`'s encoder) with
//! what is read when scraped (request, message, stream, conversation,
//! storage, log and Redis counters, as a table) and the labelled
//! instruments the HTTP layer ([`super::counters`]) and storage
//! ([`crate::storage::instruments`]) update as they go: requests and
//! latency by route, streams by transport, fan-out drops and resyncs,
//! storage requests by operation and outcome, stored batches. Behind a
//! bearer token when `metrics_token` is set.

use super::error::AppError;
use super::state::AppState;
use crate::signing::same_secret;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

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
    let mut response = encode(&state).await.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// A metric read when scraped: its kind, name (counters without
/// `_total`, which the encoder adds), help and value.
type Reading = (Kind, &'static str, &'static str, u64);

/// Whether a read value only grows.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// Every metric in Prometheus' text format: what is read when scraped
/// (the service's atomics, the actors' stats, the log's and Redis'
/// counters), then the labelled instruments and histograms.
async fn encode(state: &AppState) -> String {
    let m = state.counters.read();
    let s = state.storage.metrics();
    let stats = state.system.stats().await.unwrap_or_default();
    let mut readings: Vec<Reading> = vec![
        (
            Kind::Counter,
            "chats3_http_requests",
            "HTTP requests received",
            m.requests,
        ),
        (
            Kind::Counter,
            "chats3_messages_accepted",
            "Messages accepted",
            m.messages,
        ),
        (
            Kind::Counter,
            "chats3_streams_opened",
            "Event streams opened",
            m.streams_opened,
        ),
        (
            Kind::Gauge,
            "chats3_streams_open",
            "Event streams open now",
            m.streams_open,
        ),
        (
            Kind::Gauge,
            "chats3_conversations_live",
            "Conversation actors running",
            stats.conversations as u64,
        ),
        (
            Kind::Gauge,
            "chats3_conversations_hibernating",
            "Loaded conversations hibernating: state kept, no actor",
            stats.hibernating as u64,
        ),
        (
            Kind::Gauge,
            "chats3_conversations_known_absent",
            "Unknown conversation ids remembered, answered without loading a room",
            stats.known_absent as u64,
        ),
        (
            Kind::Gauge,
            "chats3_messages_pending",
            "Accepted messages not yet stored (write-behind)",
            stats.pending_messages as u64,
        ),
        (
            Kind::Counter,
            "chats3_storage_gets",
            "Storage GET requests",
            s.gets,
        ),
        (
            Kind::Counter,
            "chats3_storage_puts",
            "Storage PUT requests",
            s.puts,
        ),
        (
            Kind::Counter,
            "chats3_storage_lists",
            "Storage LIST requests",
            s.lists,
        ),
        (
            Kind::Counter,
            "chats3_storage_deletes",
            "Storage DELETE requests (one per batch of keys)",
            s.deletes,
        ),
        (
            Kind::Counter,
            "chats3_storage_errors",
            "Failed storage requests, timeouts included",
            s.errors,
        ),
        (
            Kind::Counter,
            "chats3_storage_timeouts",
            "Storage requests cut by storage.operation_timeout",
            s.timeouts,
        ),
        (
            Kind::Gauge,
            "chats3_storage_failing",
            "1 while the latest storage request failed or timed out",
            u64::from(s.failing),
        ),
    ];
    if let Some(wal) = state.system.log() {
        readings.extend([
            (Kind::Gauge, "chats3_log_bytes", "Bytes the write-ahead log holds on disk", wal.bytes()),
            (Kind::Counter, "chats3_log_records", "Records written to the write-ahead log", wal.records()),
            (Kind::Counter, "chats3_log_syncs", "Group commits of the write-ahead log (one write and, with sync = fsync, one fdatasync each)", wal.syncs()),
        ]);
    }
    if let Some(link) = state.system.cluster() {
        readings.extend([
            (
                Kind::Counter,
                "chats3_redis_round_trips",
                "Calls to the cluster's Redis",
                link.stats().round_trips(),
            ),
            (
                Kind::Counter,
                "chats3_redis_errors",
                "Calls to the cluster's Redis that failed or timed out",
                link.stats().errors(),
            ),
        ]);
    }
    let mut registry = Registry::default();
    for (kind, name, help, value) in readings {
        match kind {
            Kind::Counter => registry.register(name, help, ConstCounter::new(value)),
            Kind::Gauge => registry.register(
                name,
                help,
                ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)),
            ),
        }
    }
    state.counters.register(&mut registry);
    state.storage.instruments().register(&mut registry);
    let mut out = String::new();
    if let Err(e) = prometheus_text::encode(&mut out, &registry) {
        tracing::error!(error = %e, "encoding the metrics failed");
    }
    out
}
