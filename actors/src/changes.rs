//! The changes a conversation acknowledges that storage must come to hold,
//! as its records in the write-ahead log ([`crate::log_records`] frames
//! them); the conversation makes each to its state the same way live and
//! at replay.
//!
//! A compaction's intent is logged too: not a change anyone acknowledged,
//! but what a start needs to clean up after a crash in its middle.
//!
//! Conversation create and close are not among them: their `meta.json` is
//! stored before they are answered.

use crate::domain::{Message, Revision};
use serde::{Deserialize, Serialize};

/// One acknowledged change, as logged. `M` is how the message is held:
/// owned when read back, borrowed when written (so logging a message
/// does not copy it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub(crate) enum Change<M = Box<Message>> {
    /// A message was accepted: a user's, an integrator's or the service's
    /// own notice.
    Message {
        /// Its sequence (its event id).
        seq: u64,
        /// The message as accepted.
        message: M,
        /// Until when (epoch ms) its id answers a retry; `None` for an id
        /// the service chose.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remember_until: Option<i64>,
    },
    /// A message was edited or deleted by its author.
    Revision {
        /// The message's id.
        message_id: String,
        /// Its latest revision.
        revision: Revision,
    },
    /// A compaction is about to write `segments` and then delete
    /// `replaced` (see [`crate::segments`]): a crash in between leaves
    /// messages in two objects, which the next start removes again.
    Compacting {
        /// The segment keys about to be written.
        segments: Vec<String>,
        /// The keys they replace (none of `segments`).
        replaced: Vec<String>,
    },
    /// A reaction was added or removed.
    Reaction {
        /// The message reacted to.
        message_id: String,
        /// Who reacted.
        user_id: String,
        /// The emoji.
        emoji: String,
        /// Added (else removed).
        added: bool,
    },
    /// A user's read mark moved forward.
    ReadMark {
        /// Who read.
        user_id: String,
        /// The last message they read.
        message_id: String,
        /// Its sequence.
        seq: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::Change;
    use crate::domain::{Revision, Role, SequencedMessage};

    #[test]
    fn changes_read_back_as_written() {
        let message = SequencedMessage::sample(7, "m1", Role::User).message;
        let changes = [
            Change::Message {
                seq: 7,
                message: Box::new(message),
                remember_until: Some(99),
            },
            Change::Revision {
                message_id: "m1".into(),
                revision: Revision {
                    body: "edited".into(),
                    edited_at: Some("2026-01-01T00:00:00.000Z".into()),
                    deleted_at: None,
                    seq: Some(7),
                },
            },
            Change::Reaction {
                message_id: "m1".into(),
                user_id: "u".into(),
                emoji: "👍".into(),
                added: true,
            },
            Change::ReadMark {
                user_id: "u".into(),
                message_id: "m1".into(),
                seq: 7,
            },
        ];
        for change in changes {
            let json = serde_json::to_string(&change).unwrap();
            assert_eq!(serde_json::from_str::<Change>(&json).unwrap(), change);
        }
    }
}
