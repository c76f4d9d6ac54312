//! The two implementations of the actors' [`Store`] trait (a local
//! directory and S3), the timeout and health guard around both, and the
//! request counters `/metrics` shows.

pub mod fs;
pub mod guard;
pub mod s3;

use chats3_actors::store::{SharedStore, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{Backend, StorageConfig};

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
}

impl StorageCounters {
    pub(crate) fn count<T, E>(&self, counter: &AtomicU64, result: &Result<T, E>) {
        counter.fetch_add(1, Ordering::Relaxed);
        if result.is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The configured store, plus what only the HTTP layer needs of it.
#[derive(Clone)]
pub struct Storage {
    /// The backend behind [`guard::Guarded`]: every call has a timeout.
    pub store: SharedStore,
    /// Requests made, by kind (`/metrics`).
    pub counters: Arc<StorageCounters>,
    /// Whether storage answers (`/ready`).
    pub health: Arc<guard::StorageHealth>,
    /// Present on S3: presigns download URLs.
    pub s3: Option<Arc<s3::S3Store>>,
}

impl Storage {
    /// Opens the configured backend.
    pub async fn open(config: &StorageConfig) -> anyhow::Result<Storage> {
        let counters = Arc::new(StorageCounters::default());
        let (backend, s3): (SharedStore, _) = match config.backend {
            Backend::Fs => (
                Arc::new(fs::FsStore::open(&config.fs_root, counters.clone())?),
                None,
            ),
            Backend::S3 => {
                let store = Arc::new(
                    s3::S3Store::new(&config.s3, config.operation_timeout, counters.clone())
                        .await?,
                );
                (store.clone() as Arc<dyn Store>, Some(store))
            }
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
            s3,
        })
    }
}
