//! The chats3 actor system. No HTTP lives here: the service crate calls the
//! typed handles and implements [`store::Store`] for S3 and a local directory.
//!
//! Layout:
//! - `domain`: validated ids, messages, conversations, sessions, events.
//! - `store`: the storage trait and the key layout shared with Chats3.
//! - `history`: reading message batches back from storage in order;
//!   `ndjson`: the line codec of the stored objects.
//! - `segments`: compaction of batches into segments and the history index;
//!   `id_filter`: the keyed Bloom filter of a segment's message ids.
//! - `events`: serialized event frames, the replay buffer and the fan-out seam.
//! - `changes`: the conversations' acknowledged changes as the
//!   write-ahead log carries them.
//! - `conversation`: one actor per live conversation (participants, tail,
//!   idempotency, signaling buffer, reactions, fan-out).
//! - `flusher`: the write-behind actor that batches messages into storage;
//!   `write_behind`: a conversation's progress and its flusher, started on
//!   the first message to store.
//! - `ask`: one bounded request to an actor.
//! - `supervisor`: spawns, restarts and idles out conversations; `absent`:
//!   its negative cache of ids that do not exist.
//! - `addresses`: the loaded conversations' actors, read by handles
//!   without a hop through the supervisor, which keeps it in step.
//! - `ttl_registry`: one registry actor of entries that expire;
//!   `sessions`, `nonces`: its two uses, behind the seams a shared store
//!   replaces.
//! - `wal`: the write-ahead log of opaque records; `log_records`: the
//!   registries' and conversations' records in it and their replay at
//!   start; `retention`: what the log must keep, the oldest need of those
//!   replaying from it; `log_needs`: one conversation's needs.
//! - `handle`: the async API with timeouts that HTTP handlers call;
//!   `membership`: its operations that span a conversation and the
//!   registries (join, embed, leave).
//! - `error`: the one error type and [`Report`], its cause chain for logs.
//! - `settings`: the knobs (each a `config.toml` key); `time`: clocks and
//!   ISO-8601 timestamps.
//!
//! - `fuzzing` (feature `fuzzing`): the private decoders, for `fuzz/`.
//!
//! Only `domain`, `error`, `store` and `time` are public modules; the rest
//! is reached through the handles and the types re-exported here.
//!
//! A request's path, and the seams a shared backend replaces:
//!
//! ```text
//! handler ─▶ System::join / enter_embedded / leave ─▶ SessionRegistry ┐ seams
//!        └─▶ ConversationHandle ─▶ addresses (hit) ─▶ Conversation(id)  │
//!                                └▶ supervisor (miss: load, spawn)     │
//!            Conversation ─▶ Fanout (seam) ─▶ streams                   │
//!            Flusher ─▶ Store (seam) ─▶ fs | S3      NonceRegistry ─────┘
//! ```
//!
//! Supervision tree:
//!
//! ```text
//! ConversationSupervisor
//!   ├── Conversation(id) ── casts accepted messages ──▶ Flusher(id)
//!   └── Flusher(id)   (a sibling, so pending batches outlive a conversation
//!                      panic; started by the conversation on its first
//!                      message to store; one housekeeping ticker for all)
//! SessionRegistry      NonceRegistry
//! ```

#![warn(missing_docs, unreachable_pub)]

mod absent;
mod addresses;
mod ask;
mod changes;
pub mod cluster;
mod conversation;
pub mod domain;
pub mod error;
mod events;
mod flusher;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod handle;
mod history;
mod id_filter;
mod log_needs;
mod log_records;
mod membership;
mod ndjson;
mod nonces;
mod retention;
mod segments;
mod sessions;
mod settings;
pub mod store;
mod supervisor;
pub mod time;
mod ttl_registry;
pub mod wal;
mod write_behind;

#[cfg(test)]
mod conversation_log_tests;
#[cfg(test)]
mod registry_log_tests;
#[cfg(test)]
mod segments_tests;
#[cfg(test)]
mod system_tests;
#[cfg(test)]
mod test_support;

pub use conversation::metadata::CLOSED_EVENT;
pub use conversation::revisions::EDIT_WINDOW_MS;
pub use conversation::{
    Page, PageQuery, PresenceEntry, REPLAY_CHUNK, ReactionMap, ReadMark, ReplayChunk, ReplayCursor,
    SearchHit, SearchPage, SearchQuery, StreamOpen, StreamRelease, Subscription, Unread,
};
pub use error::{ChatError, Report};
pub use events::{EventFrame, EventJson, Origin, Viewer};
pub use handle::{ConversationHandle, System, Unstored, UnstoredConversation};
pub use nonces::NonceRegistry;
pub use sessions::SessionRegistry;
pub use settings::Settings;
pub use supervisor::SupervisorStats;
