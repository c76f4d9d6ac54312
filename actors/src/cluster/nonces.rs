//! Ticket nonces in Redis: check-and-store is one `SET NX PX`, atomic
//! across instances, so a ticket used on one instance is refused on all.

use super::{RedisLink, key, millis};
use crate::error::ChatError;
use crate::nonces::NonceRegistry;
use async_trait::async_trait;
use std::time::Duration;

/// The [`NonceRegistry`] of an instance in a cluster.
#[derive(Clone)]
pub struct RedisNonces {
    link: RedisLink,
    ttl: Duration,
}

impl RedisNonces {
    /// Nonces remembered for `ttl` from their first use.
    pub fn new(link: RedisLink, ttl: Duration) -> Self {
        RedisNonces { link, ttl }
    }
}

#[async_trait]
impl NonceRegistry for RedisNonces {
    async fn check_and_store(&self, nonce: &str) -> Result<bool, ChatError> {
        let stored: Option<String> = self
            .link
            .call(
                redis::cmd("SET")
                    .arg(key("nonce", nonce))
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(self.ttl)),
            )
            .await?;
        Ok(stored.is_some())
    }
}
