//! The timeout every storage call runs under, and storage health for
//! `/ready`. A call that does not finish within `[storage]
//! operation_timeout` fails (and counts as a storage error): a store that
//! hangs is a failing store. Health is the outcome of the latest call;
//! while it is failing, or when storage has not answered for a while,
//! `/ready` starts a probe (one at a time, in a task) so that readiness
//! comes back by itself once storage answers again. A conditional write
//! that found another version ([`StoreError::Changed`]) is an answer, not
//! a failure: it keeps storage healthy and is counted as `changed`.

use super::StorageCounters;
use async_trait::async_trait;
use bytes::Bytes;
use chats3_actors::domain::{AttachmentVariant, ConversationId};
use chats3_actors::store::{SharedStore, Store, StoreError, Version};
use chats3_actors::time::now_ms;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A key no one writes: reading it (absent) proves storage answers.
const PROBE_KEY: &str = "chats3-ready-probe";

/// A healthy store that has not answered for this long is probed.
const PROBE_WHEN_QUIET_MS: i64 = 2_000;

/// Outcome of the latest storage calls.
#[derive(Debug, Default)]
pub struct StorageHealth {
    failing: AtomicBool,
    last_outcome_ms: AtomicI64,
    probing: AtomicBool,
}

impl StorageHealth {
    fn record(&self, ok: bool) {
        self.failing.store(!ok, Ordering::Release);
        self.last_outcome_ms.store(now_ms(), Ordering::Release);
    }

    /// Whether the latest storage call failed or timed out.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// Whether storage is healthy as far as known now; starts a probe when
    /// it is failing or has been quiet, so a hang and a recovery are both
    /// noticed without waiting for traffic.
    pub fn check(self: &Arc<Self>, store: &SharedStore) -> bool {
        let quiet = now_ms() - self.last_outcome_ms.load(Ordering::Acquire) > PROBE_WHEN_QUIET_MS;
        if (self.is_failing() || quiet)
            && self
                .probing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            let (health, store) = (self.clone(), store.clone());
            tokio::spawn(async move {
                let _ = store.get(PROBE_KEY).await;
                health.probing.store(false, Ordering::Release);
            });
        }
        !self.is_failing()
    }
}

/// A store whose every call has a timeout and reports its outcome.
pub struct Guarded {
    inner: SharedStore,
    timeout: Duration,
    counters: Arc<StorageCounters>,
    health: Arc<StorageHealth>,
}

impl Guarded {
    /// Wraps `inner`; a call longer than `timeout` fails.
    pub fn new(
        inner: SharedStore,
        timeout: Duration,
        counters: Arc<StorageCounters>,
        health: Arc<StorageHealth>,
    ) -> Self {
        Guarded {
            inner,
            timeout,
            counters,
            health,
        }
    }

    /// Runs one call. The inner stores count what finishes; a call cut
    /// here never finished, so it is counted here, as a request of its
    /// kind, an error and a timeout.
    async fn run<T>(
        &self,
        kind: &AtomicU64,
        operation: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let (result, took) = self.timed(kind, call).await;
        self.counters
            .instruments
            .request(operation, outcome(&result), took);
        result
    }

    /// Runs one call within the timeout; answers its result and how long
    /// it took.
    async fn timed<T>(
        &self,
        kind: &AtomicU64,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> (Result<T, StoreError>, Duration) {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => {
                self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                let timed_out = Err(StoreError::TimedOut(self.timeout));
                self.counters.count(kind, &timed_out);
                timed_out
            }
        };
        self.health
            .record(!matches!(&result, Err(e) if !matches!(e, StoreError::Changed)));
        (result, started.elapsed())
    }
}

/// A call's outcome, as the request metrics label it.
fn outcome<T>(result: &Result<T, StoreError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(StoreError::Changed) => "changed",
        Err(StoreError::TimedOut(_)) => "timeout",
        Err(_) => "error",
    }
}

#[async_trait]
impl Store for Guarded {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.run(&self.counters.gets, "get", self.inner.get(key))
            .await
    }

    async fn get_versioned(&self, key: &str) -> Result<(Option<Bytes>, Version), StoreError> {
        self.run(&self.counters.gets, "get", self.inner.get_versioned(key))
            .await
    }

    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        expected: &Version,
    ) -> Result<Version, StoreError> {
        self.run(
            &self.counters.puts,
            "put",
            self.inner.put_if(key, body, content_type, expected),
        )
        .await
    }

    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        let batch = super::instruments::is_batch(key).then(|| body.clone());
        let (result, took) = self
            .timed(&self.counters.puts, self.inner.put(key, body, content_type))
            .await;
        let instruments = &self.counters.instruments;
        instruments.request("put", outcome(&result), took);
        if let (Some(body), Ok(())) = (batch, &result) {
            instruments.batch_written(&body, took);
        }
        result
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.run(&self.counters.lists, "list", self.inner.list(prefix))
            .await
    }

    async fn list_after(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        self.run(
            &self.counters.lists,
            "list",
            self.inner.list_after(prefix, start_after),
        )
        .await
    }

    async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        self.run(&self.counters.deletes, "delete", self.inner.delete(keys))
            .await
    }

    async fn usage(&self, prefix: &str) -> Result<u64, StoreError> {
        self.run(&self.counters.lists, "list", self.inner.usage(prefix))
            .await
    }

    /// Signing a link makes no request, so it is neither timed nor counted.
    async fn attachment_link(
        &self,
        conversation: &ConversationId,
        attachment_id: &str,
        variant: AttachmentVariant,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        self.inner
            .attachment_link(conversation, attachment_id, variant, ttl)
            .await
    }
}
