//! The two implementations of the actors' [`Store`] trait (a local
//! directory and S3) and the request counters `/metrics` shows.

pub mod fs;
pub mod s3;

use chats3_actors::store::{SharedStore, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{Backend, StorageConfig};

/// Storage requests made, by kind.
#[derive(Debug, Default)]
pub struct StorageCounters {
    pub gets: AtomicU64,
    pub puts: AtomicU64,
    pub lists: AtomicU64,
    pub deletes: AtomicU64,
    pub errors: AtomicU64,
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
    pub store: SharedStore,
    pub counters: Arc<StorageCounters>,
    /// Present on S3: presigns download URLs.
    pub s3: Option<Arc<s3::S3Store>>,
}

impl Storage {
    /// Opens the configured backend.
    pub async fn open(config: &StorageConfig) -> anyhow::Result<Storage> {
        let counters = Arc::new(StorageCounters::default());
        match config.backend {
            Backend::Fs => {
                let store = fs::FsStore::open(&config.fs_root, counters.clone())?;
                Ok(Storage {
                    store: Arc::new(store),
                    counters,
                    s3: None,
                })
            }
            Backend::S3 => {
                let store = Arc::new(s3::S3Store::new(&config.s3, counters.clone()).await?);
                Ok(Storage {
                    store: store.clone() as Arc<dyn Store>,
                    counters,
                    s3: Some(store),
                })
            }
        }
    }
}
