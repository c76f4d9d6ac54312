//! Storage's Prometheus instruments, updated by the [`super::guard`]
//! around every call: requests by operation and outcome, latency by
//! operation, and the message batches written (flushes and compaction
//! segments): messages, bytes and latency per batch.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::time::Duration;

/// Seconds a storage call may take, bucketed from 0.5 ms to about 16 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// One storage request's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StorageRequest {
    /// `get`, `put`, `list` or `delete`.
    pub operation: &'static str,
    /// `ok`, `error`, `timeout` or `changed` (a conditional write found
    /// another version than it was told to replace: not a failure).
    pub outcome: &'static str,
}

/// One storage operation's label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StorageOperation {
    /// `get`, `put`, `list` or `delete`.
    pub operation: &'static str,
}

/// The instruments; clones share their values.
#[derive(Debug, Clone)]
pub struct StorageInstruments {
    requests: Family<StorageRequest, Counter>,
    latency: Family<StorageOperation, Histogram, fn() -> Histogram>,
    batch_messages: Histogram,
    batch_bytes: Histogram,
    batch_latency: Histogram,
}

impl Default for StorageInstruments {
    fn default() -> Self {
        StorageInstruments {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            batch_messages: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            batch_bytes: Histogram::new(exponential_buckets(256.0, 4.0, 11)),
            batch_latency: latency_histogram(),
        }
    }
}

impl StorageInstruments {
    /// Counts one finished (or cut) call of `operation`.
    pub fn request(&self, operation: &'static str, outcome: &'static str, took: Duration) {
        self.requests
            .get_or_create(&StorageRequest { operation, outcome })
            .inc();
        self.latency
            .get_or_create(&StorageOperation { operation })
            .observe(took.as_secs_f64());
    }

    /// Records one message batch written: its NDJSON lines, bytes and
    /// how long the write took.
    pub fn batch_written(&self, body: &[u8], took: Duration) {
        let lines = body.iter().filter(|b| **b == b'\n').count();
        self.batch_messages.observe(lines as f64);
        self.batch_bytes.observe(body.len() as f64);
        self.batch_latency.observe(took.as_secs_f64());
    }

    /// Registers every instrument.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "chats3_storage_requests",
            "Storage requests by operation and outcome (ok, error, timeout, changed)",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "chats3_storage_request_duration",
            "Storage request latency by operation",
            Unit::Seconds,
            self.latency.clone(),
        );
        registry.register(
            "chats3_flush_batch_messages",
            "Messages per stored batch object (write-behind flushes and compaction segments)",
            self.batch_messages.clone(),
        );
        registry.register_with_unit(
            "chats3_flush_batch",
            "Size of each stored batch object",
            Unit::Bytes,
            self.batch_bytes.clone(),
        );
        registry.register_with_unit(
            "chats3_flush_duration",
            "Time to store each batch object",
            Unit::Seconds,
            self.batch_latency.clone(),
        );
    }
}

/// Whether `key` names a message batch (`…/messages/…ndjson`).
pub fn is_batch(key: &str) -> bool {
    key.ends_with(".ndjson") && key.contains("/messages/")
}
