//! The one error type of the actor system, which the service maps to
//! HTTP, and the storage failure it carries. Failures keep their cause
//! (`source`), and callers decide by variant.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A storage failure; every one but [`StoreError::Changed`] is treated as
/// transient and retried where the caller can wait.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The call did not finish within its time limit.
    #[error("storage did not answer within {0:?}")]
    TimedOut(std::time::Duration),
    /// The backend refused the call or could not be reached.
    #[error("{operation} failed")]
    Backend {
        /// The call, e.g. `GetObject`.
        operation: &'static str,
        /// Why.
        #[source]
        cause: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// A key or what is stored under it cannot be used (an unsafe key, an
    /// unreadable document).
    #[error("{0}")]
    Unusable(String),
    /// A conditional write found another object than the one it was told
    /// to replace: another writer came first. Not a failure of storage;
    /// the writer reads again before it writes.
    #[error("the object changed since it was read")]
    Changed,
}

impl StoreError {
    /// A failed backend call.
    pub fn backend(
        operation: &'static str,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Backend {
            operation,
            cause: Arc::new(cause),
        }
    }

    /// A stored document that does not parse.
    pub fn unreadable(what: &str, cause: impl std::fmt::Display) -> Self {
        StoreError::Unusable(format!("{what} unreadable: {cause}"))
    }
}

/// What can go wrong when asking the actor system for something.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChatError {
    /// 404.
    #[error("{0}")]
    NotFound(&'static str),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 400.
    #[error("{0}")]
    Invalid(String),
    /// 413: a size bound was reached (e.g. a conversation's upload quota).
    #[error("{0}")]
    TooLarge(String),
    /// A per-client bound was reached (e.g. streams per session).
    #[error("{0}")]
    TooMany(String),
    /// Back-pressure or a bound of the whole service: retry after a while.
    #[error("{message}")]
    Overloaded {
        /// What the client is told.
        message: &'static str,
        /// When to retry.
        retry_after: Duration,
    },
    /// Storage failed for a request that needs it now.
    #[error("storage unavailable")]
    Storage(#[source] StoreError),
    /// The write-ahead log could not make a change durable (it failed or
    /// is closed); the change was not acknowledged.
    #[error("the change could not be logged")]
    Log(#[source] crate::wal::WalError),
    /// The cluster's Redis could not be reached or refused a call; nothing
    /// was acknowledged.
    #[error("the cluster backend is unavailable")]
    Cluster(#[source] crate::cluster::ClusterError),
    /// An actor did not answer within the call timeout.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// An actor is gone: it stopped between the lookup and the call (idled
    /// out, restarting), or a part it needs is gone. Asking a fresh actor
    /// may succeed.
    #[error("{0} is gone")]
    ActorGone(&'static str),
    /// An actor could not be started.
    #[error("{what} could not start")]
    SpawnFailed {
        /// Which actor.
        what: &'static str,
        /// Why.
        #[source]
        cause: Arc<ractor::SpawnErr>,
    },
}

impl ChatError {
    /// A failed spawn of `what`.
    pub fn spawn_failed(what: &'static str, cause: ractor::SpawnErr) -> Self {
        ChatError::SpawnFailed {
            what,
            cause: Arc::new(cause),
        }
    }
}

/// How long a client waits before retrying a change the full log refused.
const LOG_FULL_RETRY: Duration = Duration::from_secs(5);

impl From<crate::wal::WalError> for ChatError {
    fn from(e: crate::wal::WalError) -> Self {
        match e {
            crate::wal::WalError::Full => ChatError::Overloaded {
                message: "Too many changes waiting to be stored",
                retry_after: LOG_FULL_RETRY,
            },
            other => ChatError::Log(other),
        }
    }
}

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        ChatError::Storage(e)
    }
}

/// Displays an error with its whole cause chain, `outer: inner: root`, for
/// logs.
pub struct Report<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{ChatError, Report, StoreError};

    #[test]
    fn a_report_shows_the_whole_cause_chain() {
        let root = std::io::Error::other("connection refused");
        let error = ChatError::Storage(StoreError::backend("GetObject", root));
        assert_eq!(
            Report(&error).to_string(),
            "storage unavailable: GetObject failed: connection refused"
        );
    }
}
