//! Process-wide counters of the HTTP layer, read by `/metrics`: plain
//! atomics for requests, accepted messages and streams, and Prometheus
//! instruments for what has labels or buckets (requests by route and
//! status, latency by route, open streams by transport, fan-out drops and
//! resyncs). A request's update is a hash of its labels under a read lock
//! and a few relaxed atomics.

use axum::extract::MatchedPath;
use axum::http::Method;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The counters; each atomic is relaxed, since `/metrics` needs no ordering.
#[derive(Debug)]
pub struct Counters {
    requests: AtomicU64,
    messages: AtomicU64,
    streams_opened: AtomicU64,
    streams_open: AtomicU64,
    by_route: Family<RouteRequest, Counter>,
    latency: Family<RouteLabel, Histogram, fn() -> Histogram>,
    streams: Family<TransportLabel, Gauge>,
    fanout_drops: Counter,
    resyncs: Counter,
}

/// One reading of every plain counter.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// Requests received.
    pub requests: u64,
    /// Messages accepted.
    pub messages: u64,
    /// Event streams opened.
    pub streams_opened: u64,
    /// Event streams open now.
    pub streams_open: u64,
}

/// What carries an event stream.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Transport {
    /// `GET /api/v1/signaling`.
    Sse,
    /// `GET /api/v1/ws`.
    Ws,
}

impl EncodeLabelValue for Transport {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        use std::fmt::Write;
        encoder.write_str(match self {
            Transport::Sse => "sse",
            Transport::Ws => "ws",
        })
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: Transport,
}

/// The route template a request matched (`/api/v1/messages/{id}`, never
/// the raw path, so ids do not make new series), or `unmatched`.
#[derive(Debug, Clone)]
pub struct Route(Option<MatchedPath>);

impl Route {
    /// The route of a matched path, or none.
    pub fn of(matched: Option<&MatchedPath>) -> Route {
        Route(matched.cloned())
    }

    fn as_str(&self) -> &str {
        self.0.as_ref().map_or("unmatched", MatchedPath::as_str)
    }
}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        use std::fmt::Write;
        encoder.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteRequest {
    method: &'static str,
    route: Route,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: Route,
}

/// Seconds until a request's answer (its head, for streams), bucketed
/// from 0.1 ms to about 6.5 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

/// A method as a label without allocating: the standard ones by name.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            requests: AtomicU64::default(),
            messages: AtomicU64::default(),
            streams_opened: AtomicU64::default(),
            streams_open: AtomicU64::default(),
            by_route: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            streams: Family::default(),
            fanout_drops: Counter::default(),
            resyncs: Counter::default(),
        }
    }
}

impl Counters {
    /// Counts a request as it arrives.
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request's answer: by method, route and status, and its
    /// latency by route.
    pub fn answered(&self, method: &Method, route: Route, status: u16, took: Duration) {
        let method = method_label(method);
        let labels = RouteRequest {
            method,
            route,
            status,
        };
        self.by_route.get_or_create(&labels).inc();
        let route = RouteLabel {
            route: labels.route,
        };
        self.latency
            .get_or_create(&route)
            .observe(took.as_secs_f64());
    }

    /// Counts an accepted message.
    pub fn message_accepted(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a stream opening.
    pub fn stream_opened(&self, transport: Transport) {
        self.streams_opened.fetch_add(1, Ordering::Relaxed);
        self.streams_open.fetch_add(1, Ordering::Relaxed);
        self.streams
            .get_or_create(&TransportLabel { transport })
            .inc();
    }

    /// Counts a stream closing.
    pub fn stream_closed(&self, transport: Transport) {
        self.streams_open.fetch_sub(1, Ordering::Relaxed);
        self.streams
            .get_or_create(&TransportLabel { transport })
            .dec();
    }

    /// Counts a stream ended because it fell behind the fan-out queue.
    pub fn fanout_dropped(&self) {
        self.fanout_drops.inc();
    }

    /// Counts a `resync` frame sent.
    pub fn resync_sent(&self) {
        self.resyncs.inc();
    }

    /// Every plain counter now.
    pub fn read(&self) -> Reading {
        Reading {
            requests: self.requests.load(Ordering::Relaxed),
            messages: self.messages.load(Ordering::Relaxed),
            streams_opened: self.streams_opened.load(Ordering::Relaxed),
            streams_open: self.streams_open.load(Ordering::Relaxed),
        }
    }

    /// Registers the labelled instruments.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "chats3_http_responses",
            "HTTP answers by method, matched route template and status",
            self.by_route.clone(),
        );
        registry.register_with_unit(
            "chats3_http_request_duration",
            "Time to answer a request (its head, for streams) by route",
            Unit::Seconds,
            self.latency.clone(),
        );
        registry.register(
            "chats3_event_streams_open",
            "Event streams open now by transport (sse, ws)",
            self.streams.clone(),
        );
        registry.register(
            "chats3_fanout_drops",
            "Streams ended because they fell a whole subscriber queue behind (they resume with their last id)",
            self.fanout_drops.clone(),
        );
        registry.register(
            "chats3_resyncs",
            "Resync frames sent: resumes that could not be replayed in full",
            self.resyncs.clone(),
        );
    }
}
