//! Several instances on one Redis (`[cluster] backend = "redis"`): the
//! shared state lives in Redis so that any request may reach any
//! instance. [`RedisLink`] is the one connection (multiplexed, reconnecting
//! by itself) and counts every round trip and failure for `/metrics` and
//! `/ready`; the registries behind the [`crate::SessionRegistry`] and
//! [`crate::NonceRegistry`] seams are Redis keys with TTLs.
//!
//! - `sessions`: sessions as keys whose TTL slides on each use;
//! - `nonces`: a ticket nonce's check-and-store as one `SET NX PX`;
//! - `stream`: a conversation's Redis Stream, the one order of its events
//!   (appended by one Lua script, read back by range);
//! - `notices`: the instance's pub/sub subscription that brings each
//!   appended entry to the conversation loaded here;
//! - `roster`: the participant limit and display-name uniqueness, one
//!   Lua script for every instance;
//! - `storing`: storage exactly once, by the holder of each
//!   conversation's lease: batches, and
//! - `documents`: the reaction, revision and read-mark documents it saves;
//! - `compaction`: its compactions' intents, recorded under the lease.

mod compaction;
pub(crate) mod documents;
mod nonces;
pub(crate) mod notices;
pub(crate) mod roster;
mod sessions;
pub(crate) mod storing;
pub(crate) mod stream;

pub use nonces::RedisNonces;
pub use sessions::RedisSessions;

use crate::error::ChatError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Every key chats3 writes starts with this.
pub(crate) const KEY_PREFIX: &str = "chats3:";

/// How long `/ready` waits for Redis's answer.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a Redis call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("redis: {0}")]
pub struct ClusterError(#[source] pub Arc<redis::RedisError>);

/// Round trips and failures since start.
#[derive(Debug, Default)]
pub struct RedisStats {
    round_trips: AtomicU64,
    errors: AtomicU64,
    /// The last call failed (cleared by the next that succeeds).
    failing: AtomicBool,
}

impl RedisStats {
    /// Calls made to Redis.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Calls that failed (unreachable, timed out, refused).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// The connection to the cluster's Redis, shared by every part of this
/// instance that keeps state there.
#[derive(Clone)]
pub struct RedisLink {
    client: redis::Client,
    connection: ConnectionManager,
    timeout: Duration,
    stats: Arc<RedisStats>,
    instance_id: Arc<str>,
}

impl RedisLink {
    /// A link to `url` that connects on first use and reconnects by
    /// itself; each call fails after `timeout` rather than hang, so an
    /// unreachable Redis answers 503 quickly.
    pub fn connect(url: &str, instance_id: &str, timeout: Duration) -> Result<Self, ClusterError> {
        let client = redis::Client::open(url).map_err(|e| ClusterError(Arc::new(e)))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| ClusterError(Arc::new(e)))?;
        Ok(RedisLink {
            client,
            connection,
            timeout,
            stats: Arc::default(),
            instance_id: instance_id.into(),
        })
    }

    /// This instance's id in the cluster.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The client, for connections of their own (pub/sub).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// How long one call may take.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Round trips and failures so far.
    pub fn stats(&self) -> &RedisStats {
        &self.stats
    }

    /// Whether Redis answers a `PING` within a second.
    pub async fn ping(&self) -> bool {
        let mut ping = redis::cmd("PING");
        let answer = tokio::time::timeout(PING_TIMEOUT, self.call::<String>(&mut ping)).await;
        matches!(answer, Ok(Ok(_)))
    }

    /// Runs one command (or script invocation) as one round trip,
    /// counted; a failure is [`ChatError::Cluster`] (503 + `Retry-After`).
    pub(crate) async fn call<T: redis::FromRedisValue>(
        &self,
        command: &mut redis::Cmd,
    ) -> Result<T, ChatError> {
        let mut connection = self.connection.clone();
        self.counted(command.query_async(&mut connection).await)
    }

    /// Runs a Lua script (`EVALSHA`, loading it first where Redis does not
    /// know it yet), counted like [`RedisLink::call`].
    pub(crate) async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, ChatError> {
        let mut connection = self.connection.clone();
        self.counted(invocation.invoke_async(&mut connection).await)
    }

    fn counted<T>(&self, result: redis::RedisResult<T>) -> Result<T, ChatError> {
        self.stats.round_trips.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(value) => {
                self.stats.failing.store(false, Ordering::Relaxed);
                Ok(value)
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                if !self.stats.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "a Redis call failed");
                }
                Err(ChatError::Cluster(ClusterError(Arc::new(e))))
            }
        }
    }
}

/// The key of `name` in the `kind` family (`chats3:{kind}:{name}`).
pub(crate) fn key(kind: &str, name: &str) -> String {
    format!("{KEY_PREFIX}{kind}:{name}")
}

/// `duration` in whole milliseconds, at least one (Redis refuses 0).
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}
