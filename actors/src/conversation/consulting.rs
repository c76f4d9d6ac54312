//! Posts whose client `messageId` no memory knows, in a conversation
//! whose history is longer than the tail: before the id is taken, the id
//! filters of the stored history (see `id_filters`) tell whether a stored
//! message has it. When the held filters cover the history and answer
//! "absent", the post goes on at once, with no storage read. Otherwise it
//! waits for a consult, a task that reads what is missing and verifies each
//! "maybe" by reading its object, and comes back with a message; the
//! actor serves others meanwhile. A stored message of another sender
//! answers 409, one of the same sender answers that message (a retry);
//! a false positive never refuses.
//!
//! Ordering: a post that waits is sequenced when its consult returns, so
//! a post that needed none (no client id, or one memory knows) may be
//! sequenced before it even when it came later. Waiting posts keep their
//! order among themselves, and the answer still follows the log as for
//! every post.

use super::id_filters::{Consulted, Verdict, WaitingPost, consult};
use super::idempotency::KnownId;
use super::protocol::Internal;
use super::{ConversationState, revisions};
use crate::error::ChatError;

impl ConversationState {
    /// Whether the post may go on now (then it is given back); else it
    /// waits for a consult and is answered when that returns.
    pub(super) fn consult_filters(&mut self, post: WaitingPost) -> Option<WaitingPost> {
        let Some(message_id) = post.new.message_id.as_deref() else {
            return Some(post);
        };
        if self.tail.is_complete() {
            return Some(post);
        }
        let front = self.memory_front();
        if self.id_filters.ready_for(front) {
            let (objects, trimmed) = self.id_filters.maybes(message_id);
            if objects.is_empty() && !trimmed {
                return Some(post);
            }
        }
        if let Err(e) = self.check_capacity() {
            let _ = post.reply.send(Err(e));
            return None;
        }
        self.id_filters.wait(post);
        self.start_consult();
        None
    }

    /// The oldest sequence memory holds every message from: the tail's front.
    fn memory_front(&self) -> u64 {
        self.tail
            .front_seq()
            .unwrap_or(self.last_seq.saturating_add(1))
    }

    /// Starts a consult for the waiting posts unless one is in flight.
    fn start_consult(&mut self) {
        let Some(message_ids) = self.id_filters.start_consult() else {
            return;
        };
        let held_maybes = message_ids
            .iter()
            .map(|message_id| self.id_filters.maybes(message_id).0)
            .collect();
        let held = self.id_filters.held_keys();
        let front = self.memory_front();
        let store = self.args.store.clone();
        let id = self.args.id.clone();
        let me = self.myself.clone();
        tokio::spawn(async move {
            let consulted =
                consult(store.as_ref(), &id, front, &message_ids, &held, held_maybes).await;
            let _ = me.cast(Internal::Consulted(Box::new(consulted)).into());
        });
    }

    /// A consult came back: its posts are decided (memory may know their
    /// ids by now: a post decided before them took one), then those that
    /// waited behind it.
    pub(super) fn consulted(&mut self, consulted: Consulted, now: i64) {
        for (post, verdict) in self.id_filters.finish_consult(consulted) {
            self.decide(post, verdict, now);
        }
        for post in self.id_filters.take_waiting() {
            self.post_known_or_consult(post, now);
        }
        self.note_memory();
    }

    /// Serves a post whose id storage was asked about.
    fn decide(&mut self, post: WaitingPost, verdict: Verdict, now: i64) {
        match self.classify_post(&post.sender, &post.new) {
            Err(e) => drop(post.reply.send(Err(e))),
            Ok(Some(seq)) => self.answer_stored(seq, post.reply),
            Ok(None) => match verdict {
                Verdict::Used(mut stored) => {
                    let known = KnownId::of(stored.seq, &stored.message);
                    let mine = known.posted_by(&post.sender);
                    self.older_ids
                        .insert(i64::MAX, &stored.message.message_id, known);
                    if mine {
                        revisions::overlay(&self.revisions, &mut stored);
                        self.answer(post.reply, Ok(stored.message));
                    } else {
                        let _ = post.reply.send(Err(ChatError::Conflict(
                            "Message ID already used by another sender".into(),
                        )));
                    }
                }
                Verdict::Unused | Verdict::Unknown => self.post_checked(post, now),
            },
        }
    }

    /// Serves a post again from the start (it waited behind a consult).
    fn post_known_or_consult(&mut self, post: WaitingPost, now: i64) {
        match self.classify_post(&post.sender, &post.new) {
            Err(e) => drop(post.reply.send(Err(e))),
            Ok(Some(seq)) => self.answer_stored(seq, post.reply),
            Ok(None) => {
                if let Some(post) = self.consult_filters(post) {
                    self.post_checked(post, now);
                }
            }
        }
    }

    /// Posts what no memory and no stored message claims: appended to the
    /// shared stream in a cluster, else sequenced here.
    fn post_checked(&mut self, post: WaitingPost, now: i64) {
        if self.shared.is_some() {
            self.append_post(&post.sender, post.new, &post.origin, now, post.reply);
        } else {
            let posted = self.post(&post.sender, post.new, post.origin, now);
            self.answer(post.reply, posted);
        }
    }
}
