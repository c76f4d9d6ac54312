//! The changes a conversation acknowledges that storage must come to hold:
//! their records in the write-ahead log, and how each is made to the
//! state, the same way when a request makes it and when the log replays it
//! at start.
//!
//! Conversation create and close are not among them: their `meta.json` is
//! stored before they are answered. Read receipts are only relayed (no
//! read state is kept), so nothing of them is lost.

use super::revisions::{self, Revision};
use super::{ConversationState, KnownId, reactions};
use crate::domain::{Message, SequencedMessage};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One acknowledged change, as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub(crate) enum Change {
    /// A message was accepted: a user's, an integrator's or the service's
    /// own notice.
    Message {
        /// Its sequence (its event id).
        seq: u64,
        /// The message as accepted.
        message: Box<Message>,
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
}

impl ConversationState {
    /// Keeps an accepted message in the tail, and its id while a retry of
    /// it may still come.
    pub(super) fn keep_message(
        &mut self,
        message: SequencedMessage,
        remember_until: Option<i64>,
        now: i64,
    ) {
        if let Some(until) = remember_until.filter(|until| *until > now) {
            self.idempotency.insert(
                until,
                &message.message.message_id,
                KnownId::of(message.seq, &message.message),
            );
        }
        self.last_seq = self.last_seq.max(message.seq);
        self.tail.push(message);
        self.trim_tail();
    }

    /// Keeps a revision in the revision document (`need`: its log
    /// position's bound) and lays it over its message in the tail;
    /// answers the message as revised when the tail holds it.
    pub(super) fn keep_revision(
        &mut self,
        message_id: &str,
        revision: Revision,
        need: u64,
    ) -> Option<Message> {
        let updated = self
            .tail
            .find_mut(message_id)
            .filter(|m| revision.seq.is_none_or(|seq| seq == m.seq))
            .map(|m| {
                revisions::apply(&revision, &mut m.message);
                m.message.clone()
            });
        Arc::make_mut(&mut self.revisions).insert(message_id.to_owned(), revision);
        self.revisions_doc.touch(need);
        updated
    }

    /// Keeps a reaction change in the reaction document; whether it
    /// changed anything.
    pub(super) fn keep_reaction(
        &mut self,
        message_id: &str,
        user_id: &str,
        emoji: &str,
        added: bool,
        need: u64,
    ) -> bool {
        let changed = reactions::apply(&mut self.reactions, message_id, user_id, emoji, added);
        if changed {
            self.reactions_doc.touch(need);
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::Change;
    use crate::domain::{Role, SequencedMessage};

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
                revision: super::Revision {
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
        ];
        for change in changes {
            let json = serde_json::to_string(&change).unwrap();
            assert_eq!(serde_json::from_str::<Change>(&json).unwrap(), change);
        }
    }
}
