//! The chats3 actor system. No HTTP lives here: the service crate calls the
//! typed handles and implements [`store::Store`] for S3 and a local directory.
//!
//! Layout:
//! - `domain`: validated ids, messages, conversations, sessions, events.
//! - `store`: the storage trait and the key layout shared with Chats3.
//! - `history`: reading message batches back from storage in order.
//! - `segments`: compaction of batches into segments and the history index.
//! - `events`: serialized event frames, the replay buffer and the fan-out seam.
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
//! - `handle`: the async API with timeouts that HTTP handlers call.
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

pub mod absent;
pub mod addresses;
pub mod ask;
pub mod conversation;
pub mod domain;
pub mod error;
pub mod events;
pub mod flusher;
pub mod handle;
pub mod history;
pub mod membership;
pub mod nonces;
pub mod segments;
pub mod sessions;
pub mod settings;
pub mod store;
pub mod supervisor;
pub mod time;
pub mod ttl_registry;
pub mod write_behind;

#[cfg(test)]
mod system_tests;

pub use error::ChatError;
pub use handle::{ConversationHandle, System, Unstored, UnstoredConversation};
pub use settings::Settings;
