//! The two implementations of the actors' `Store` trait (a local
//! directory and S3), the timeout and health guard around both, the fs
//! backend's signed download links, and the request counters `/metrics`
//! shows.

pub mod fs;
pub mod guard;
pub mod instruments;
pub mod links;
pub mod s3;

use crate::config::{Backend, StorageConfig};
use chats3_actors::store::{SharedStore, StoreError};
use links::DownloadLinks;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Storage requests made, by kind.
#[derive(Debug, Default)]
pub struct StorageCounters {
    /// GET requests.
    pub gets: AtomicU64,
    /// PUT requests.
    pub puts: AtomicU64,
    /// LIST requests.
    pub lists: AtomicU64,
    /// DELETE requests (one per batch of keys).
    pub deletes: AtomicU64,
    /// Failed requests, timeouts included.
    pub errors: AtomicU64,
    /// Requests cut by `operation_timeout`.
    pub timeouts: AtomicU64,
    /// The labelled instruments `/metrics` shows.
    pub instruments: instruments::StorageInstruments,
}

impl StorageCounters {
    /// Counts one request of the kind `counter` counts, and its failure
    /// (a conditional write that found another version is no failure).
    pub(crate) fn count<T>(&self, counter: &AtomicU64, result: &Result<T, StoreError>) {
        counter.fetch_add(1, Ordering::Relaxed);
        if result
            .as_ref()
            .is_err_and(|e| !matches!(e, StoreError::Changed))
        {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What `/metrics` shows of storage: requests by kind and the health.
#[derive(Debug, Clone, Copy, Default)]
pub struct StorageMetrics {
    /// GET requests.
    pub gets: u64,
    /// PUT requests.
    pub puts: u64,
    /// LIST requests.
    pub lists: u64,
    /// DELETE requests (one per batch of keys).
    pub deletes: u64,
    /// Failed requests, timeouts included.
    pub errors: u64,
    /// Requests cut by `operation_timeout`.
    pub timeouts: u64,
    /// Whether the latest request failed or timed out.
    pub failing: bool,
}

/// The configured store, its counters and its health.
#[derive(Clone)]
pub struct Storage {
    store: SharedStore,
    counters: Arc<StorageCounters>,
    health: Arc<guard::StorageHealth>,
}

impl Storage {
    /// Opens the configured backend; on a directory, attachments are
    /// downloaded through `links` and `synced` writes reach the disk
    /// before they are answered.
    pub async fn open(
        config: &StorageConfig,
        synced: bool,
        links: Arc<DownloadLinks>,
    ) -> anyhow::Result<Storage> {
        let counters = Arc::new(StorageCounters::default());
        let backend: SharedStore = match config.backend {
            Backend::Fs => Arc::new(fs::FsStore::open(
                &config.fs_root,
                synced,
                counters.clone(),
                links,
            )?),
            Backend::S3 => Arc::new(
                s3::S3Store::new(&config.s3, config.operation_timeout, counters.clone()).await?,
            ),
        };
        let health = Arc::new(guard::StorageHealth::default());
        let store = Arc::new(guard::Guarded::new(
            backend,
            config.operation_timeout,
            counters.clone(),
            health.clone(),
        ));
        Ok(Storage {
            store,
            counters,
            health,
        })
    }

    /// The store the actors use: every call has a timeout and is counted.
    pub fn store(&self) -> SharedStore {
        self.store.clone()
    }

    /// Whether storage answers (`/ready`); see [`guard::StorageHealth::check`].
    pub fn ready(&self) -> bool {
        self.health.check(&self.store)
    }

    /// Storage's Prometheus instruments.
    pub fn instruments(&self) -> &instruments::StorageInstruments {
        &self.counters.instruments
    }

    /// Requests made so far and the health, now.
    pub fn metrics(&self) -> StorageMetrics {
        let c = &self.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StorageMetrics {
            gets: read(&c.gets),
            puts: read(&c.puts),
            lists: read(&c.lists),
            deletes: read(&c.deletes),
            errors: read(&c.errors),
            timeouts: read(&c.timeouts),
            failing: self.health.is_failing(),
        }
    }
}
