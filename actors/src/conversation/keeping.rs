//! Making an acknowledged change to the state: the same way when a request
//! makes it and when the log replays it at start (see [`crate::changes`]).

use super::read_marks::{self, ReadMark};
use super::revisions;
use super::{ConversationState, KnownId, reactions};
use crate::domain::{Message, Revision, SequencedMessage};
use std::sync::Arc;

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

    /// Moves a user's read mark forward in the read-mark document;
    /// whether it moved.
    pub(super) fn keep_read_mark(&mut self, user_id: &str, mark: ReadMark, need: u64) -> bool {
        let moved = read_marks::advance(&mut self.read_marks, user_id, mark);
        if moved {
            self.read_marks_doc.touch(need);
        }
        moved
    }
}
