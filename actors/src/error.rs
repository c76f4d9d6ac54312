//! The one error type of the actor system; the service maps it to HTTP.

use std::time::Duration;

/// What can go wrong when asking the actor system for something.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ChatError {
    #[error("{0}")]
    /// 404.
    NotFound(&'static str),
    #[error("{0}")]
    /// 403.
    Forbidden(String),
    #[error("{0}")]
    /// 409.
    Conflict(String),
    #[error("{0}")]
    /// 400.
    Invalid(String),
    /// 413: a size bound was reached (e.g. a conversation's upload quota).
    #[error("{0}")]
    TooLarge(String),
    /// A per-client bound was reached (e.g. streams per session).
    #[error("{0}")]
    TooMany(String),
    /// Back-pressure: too much is waiting to be stored.
    #[error("{message}")]
    Overloaded {
        message: &'static str,
        retry_after: Duration,
    },
    /// Storage failed for a request that needs it now.
    #[error("storage unavailable: {0}")]
    Storage(String),
    /// The actor did not answer in time or is gone.
    #[error("actor unavailable: {0}")]
    Unavailable(String),
}

impl From<crate::store::StoreError> for ChatError {
    fn from(e: crate::store::StoreError) -> Self {
        ChatError::Storage(e.to_string())
    }
}
