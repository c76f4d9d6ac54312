//! Tuning knobs of the actor system, filled from the service's `[actors]`
//! and `[limits]` configuration.

use std::time::Duration;

/// Every bound and timer the actors use.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Longest a batch waits before it is written.
    pub flush_interval: Duration,
    /// A batch is written as soon as this many messages wait.
    pub flush_max_batch: usize,
    /// Unstored messages per conversation past which sends get 503.
    pub max_pending: usize,
    /// A conversation with no streams and no requests for this long stops.
    pub idle_timeout: Duration,
    /// A settled conversation (nothing unstored, no stream, no timer)
    /// with no request for this long hibernates: its actor stops and its
    /// state waits in the supervisor until the next request (zero: never;
    /// only when shorter than `idle_timeout`).
    pub hibernate_after: Duration,
    /// How long a `messageId` is remembered for idempotent retries.
    pub idempotency_ttl: Duration,
    /// Upper bound on remembered `messageId`s per conversation, in the
    /// idempotency window and, as many, of messages older than the tail.
    pub idempotency_max: usize,
    /// How long signaling events stay replayable.
    pub signaling_buffer_ttl: Duration,
    /// How many events stay replayable.
    pub signaling_buffer_len: usize,
    /// Messages kept in memory per live conversation.
    pub history_tail: usize,
    /// Participant limit per conversation.
    pub max_participants: usize,
    /// Open streams allowed per session.
    pub max_streams_per_session: usize,
    /// Events a slow subscriber may fall behind before it must resync.
    pub subscriber_queue: usize,
    /// Delay before `peer-leave` after a user's last stream closes.
    pub leave_grace: Duration,
    /// How long a joined user without a stream still counts toward the limit.
    pub join_hold: Duration,
    /// When the room is full, a join hold older than this is dropped.
    pub join_hold_when_full: Duration,
    /// Session sliding TTL.
    pub session_ttl: Duration,
    /// Maximum live sessions.
    pub max_sessions: usize,
    /// How long a ticket nonce is remembered.
    pub nonce_ttl: Duration,
    /// Maximum remembered nonces.
    pub max_nonces: usize,
    /// Conversations loaded at once; past it new ones answer 503.
    pub max_conversations: usize,
    /// Estimated bytes all loaded conversations may hold; past it new ones
    /// answer 503 (0 = no bound).
    pub max_loaded_memory: usize,
    /// Timeout of a handle's call into an actor.
    pub call_timeout: Duration,
    /// Bytes of attachments one conversation may hold; 0 = no bound.
    pub max_upload_bytes_per_conversation: u64,
}

impl Settings {
    /// How often every loaded conversation expires what is due and checks
    /// whether it is idle (one ticker in the supervisor for all of them).
    pub fn housekeeping_interval(&self) -> Duration {
        let hibernate = if self.hibernate_after.is_zero() {
            self.idle_timeout
        } else {
            self.hibernate_after
        };
        self.idle_timeout
            .min(hibernate)
            .min(Duration::from_secs(5))
            .max(Duration::from_millis(50))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            flush_interval: Duration::from_secs(1),
            flush_max_batch: 500,
            max_pending: 10_000,
            idle_timeout: Duration::from_secs(600),
            hibernate_after: Duration::from_secs(60),
            idempotency_ttl: Duration::from_secs(300),
            idempotency_max: 10_000,
            signaling_buffer_ttl: Duration::from_secs(60),
            signaling_buffer_len: 1_000,
            history_tail: 1_000,
            max_participants: 50,
            max_streams_per_session: 8,
            subscriber_queue: 1_024,
            leave_grace: Duration::from_secs(3),
            join_hold: Duration::from_secs(60),
            join_hold_when_full: Duration::from_secs(10),
            session_ttl: Duration::from_secs(86_400),
            max_sessions: 1_000_000,
            nonce_ttl: Duration::from_secs(120),
            max_nonces: 1_000_000,
            max_conversations: 100_000,
            max_loaded_memory: 2 << 30,
            call_timeout: Duration::from_secs(10),
            max_upload_bytes_per_conversation: 1 << 30,
        }
    }
}
