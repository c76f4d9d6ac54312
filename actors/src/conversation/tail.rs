//! The hot tail of history: the newest messages in memory, never dropping
//! one that is not yet stored, so that anything older than the tail is
//! in storage and a page is served from memory, storage, or both. Messages
//! are indexed by id, so finding one costs no scan.

use crate::domain::{ConversationId, SequencedMessage};
use crate::history::{self, Side};
use crate::store::{Store, StoreError};
use std::collections::{HashMap, VecDeque};

/// Bytes a held message costs beyond its text (the struct, its `String`
/// headers, the id map entry).
const PER_MESSAGE: usize = 400;

/// Newest messages of a conversation.
#[derive(Debug)]
pub(crate) struct Tail {
    /// In `seq` order.
    items: VecDeque<SequencedMessage>,
    /// `messageId` → `seq`; where history written before ids were unique
    /// holds one id twice, the oldest message keeps it.
    by_id: HashMap<String, u64>,
    /// True while the tail holds the whole history.
    complete: bool,
    keep: usize,
}

/// How to build a page: ready from memory, or with a storage read first.
#[derive(Debug)]
pub(crate) enum PagePlan {
    Ready(Vec<SequencedMessage>, bool),
    Storage {
        side: Side,
        /// Messages of the tail that belong to the page.
        tail_part: Vec<SequencedMessage>,
        /// Oldest sequence the tail holds; storage supplies what is older.
        tail_front: u64,
        limit: usize,
    },
}

impl Tail {
    /// Estimated bytes of the messages held (text fields plus a fixed
    /// overhead per message and per id entry).
    pub(crate) fn approx_bytes(&self) -> usize {
        self.items
            .iter()
            .map(|m| {
                let msg = &m.message;
                PER_MESSAGE
                    + msg.message_id.len() * 2
                    + msg.body.len()
                    + msg.sender_user_id.len()
                    + msg.sender_display_name.len()
                    + msg.conversation_id.len()
                    + msg.client_timestamp.len()
                    + msg.server_received_at.len()
            })
            .sum()
    }

    pub(crate) fn new(keep: usize, loaded: Vec<SequencedMessage>, complete: bool) -> Self {
        let mut tail = Tail {
            items: VecDeque::with_capacity(loaded.len()),
            by_id: HashMap::with_capacity(loaded.len()),
            complete,
            keep: keep.max(1),
        };
        for message in loaded {
            tail.push(message);
        }
        tail
    }

    pub(crate) fn push(&mut self, message: SequencedMessage) {
        self.by_id
            .entry(message.message.message_id.clone())
            .or_insert(message.seq);
        self.items.push_back(message);
    }

    /// Drops the oldest messages beyond `keep`, but only stored ones, and
    /// returns them.
    pub(crate) fn trim(&mut self, stored_seq: u64) -> Vec<SequencedMessage> {
        let mut dropped = Vec::new();
        while self.items.len() > self.keep
            && self.items.front().is_some_and(|m| m.seq <= stored_seq)
            && let Some(old) = self.items.pop_front()
        {
            if self.by_id.get(&old.message.message_id) == Some(&old.seq) {
                self.by_id.remove(&old.message.message_id);
            }
            self.complete = false;
            dropped.push(old);
        }
        if self.by_id.capacity() > 2 * self.by_id.len().max(self.keep) {
            self.by_id.shrink_to_fit();
        }
        dropped
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.complete
    }

    /// The message with this id, if the tail holds it.
    pub(crate) fn get(&self, message_id: &str) -> Option<&SequencedMessage> {
        let index = self.position(*self.by_id.get(message_id)?)?;
        self.items.get(index)
    }

    pub(crate) fn find_mut(&mut self, message_id: &str) -> Option<&mut SequencedMessage> {
        let index = self.position(*self.by_id.get(message_id)?)?;
        self.items.get_mut(index)
    }

    /// The message with this sequence, if the tail holds it.
    pub(crate) fn at(&self, seq: u64) -> Option<&SequencedMessage> {
        self.items.get(self.position(seq)?)
    }

    fn position(&self, seq: u64) -> Option<usize> {
        let index = self.items.partition_point(|m| m.seq < seq);
        self.items
            .get(index)
            .is_some_and(|m| m.seq == seq)
            .then_some(index)
    }

    /// Messages after `seq`, when the tail holds all of them.
    pub(crate) fn after(&self, seq: u64) -> Option<impl Iterator<Item = &SequencedMessage>> {
        let covered = self.complete
            || self
                .items
                .front()
                .is_some_and(|f| seq.saturating_add(1) >= f.seq);
        covered.then(|| {
            let start = self.items.partition_point(|m| m.seq <= seq);
            self.items.range(start..)
        })
    }

    /// How many messages after `seq` the tail holds that `counts`, and
    /// whether it holds every message after `seq`.
    pub(crate) fn count_after(
        &self,
        seq: u64,
        counts: impl Fn(&SequencedMessage) -> bool,
    ) -> (usize, bool) {
        let start = self.items.partition_point(|m| m.seq <= seq);
        let counted = self.items.range(start..).filter(|m| counts(m)).count();
        (counted, self.after(seq).is_some())
    }

    /// The messages before `bound`, newest first.
    pub(crate) fn newest_before(&self, bound: u64) -> impl Iterator<Item = &SequencedMessage> {
        let end = self.items.partition_point(|m| m.seq < bound);
        self.items.range(..end).rev()
    }

    /// The oldest sequence held, if any.
    pub(crate) fn front_seq(&self) -> Option<u64> {
        self.items.front().map(|m| m.seq)
    }

    /// Plans a page of `limit` messages on one side of a sequence.
    pub(crate) fn plan(&self, side: Side, limit: usize) -> PagePlan {
        let front = self.items.front().map_or(u64::MAX, |f| f.seq);
        match side {
            Side::Before(bound) => {
                let end = self.items.partition_point(|m| m.seq < bound);
                let candidates: Vec<SequencedMessage> = self.items.range(..end).cloned().collect();
                if candidates.len() > limit {
                    let skip = candidates.len() - limit;
                    PagePlan::Ready(candidates.into_iter().skip(skip).collect(), true)
                } else if self.complete {
                    PagePlan::Ready(candidates, false)
                } else {
                    PagePlan::Storage {
                        side: Side::Before(bound.min(front)),
                        tail_part: candidates,
                        tail_front: front,
                        limit,
                    }
                }
            }
            Side::After(bound) => {
                if let Some(items) = self.after(bound) {
                    let mut page: Vec<SequencedMessage> = items.take(limit + 1).cloned().collect();
                    let more = page.len() > limit;
                    page.truncate(limit);
                    PagePlan::Ready(page, more)
                } else {
                    PagePlan::Storage {
                        side,
                        tail_part: self.items.iter().cloned().collect(),
                        tail_front: front,
                        limit,
                    }
                }
            }
        }
    }
}

/// Completes a plan that needs storage; runs off the actor's mailbox.
pub(crate) async fn finish_page(
    store: &dyn Store,
    id: &ConversationId,
    plan: PagePlan,
) -> Result<(Vec<SequencedMessage>, bool), StoreError> {
    match plan {
        PagePlan::Ready(page, more) => Ok((page, more)),
        PagePlan::Storage {
            side: side @ Side::Before(_),
            tail_part,
            limit,
            ..
        } => {
            let want = limit - tail_part.len();
            let (mut older, more) = if want == 0 {
                let (probe, _) = history::read_page(store, id, side, 1).await?;
                (Vec::new(), !probe.is_empty())
            } else {
                history::read_page(store, id, side, want).await?
            };
            older.extend(tail_part);
            Ok((older, more))
        }
        PagePlan::Storage {
            side: side @ Side::After(bound),
            tail_part,
            tail_front,
            limit,
        } => {
            let (found, more) = history::read_page(store, id, side, limit).await?;
            let mut page: Vec<SequencedMessage> = found
                .iter()
                .filter(|m| m.seq < tail_front)
                .cloned()
                .collect();
            if page.len() == found.len() && more {
                return Ok((page, true));
            }
            page.extend(tail_part.into_iter().filter(|m| m.seq > bound));
            let more = page.len() > limit;
            page.truncate(limit);
            Ok((page, more))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    fn msg(seq: u64) -> SequencedMessage {
        SequencedMessage::sample(seq, &format!("m{seq}"), Role::User)
    }

    fn seqs(plan: PagePlan) -> (Vec<u64>, bool) {
        match plan {
            PagePlan::Ready(page, more) => (page.iter().map(|m| m.seq).collect(), more),
            PagePlan::Storage { .. } => panic!("expected a page from memory"),
        }
    }

    #[test]
    fn complete_tail_pages_both_ways() {
        let tail = Tail::new(10, (1..=5).map(msg).collect(), true);
        assert_eq!(
            seqs(tail.plan(Side::Before(u64::MAX), 2)),
            (vec![4, 5], true)
        );
        assert_eq!(seqs(tail.plan(Side::Before(4), 3)), (vec![1, 2, 3], false));
        assert_eq!(seqs(tail.plan(Side::After(3), 2)), (vec![4, 5], false));
        assert_eq!(seqs(tail.plan(Side::After(1), 2)), (vec![2, 3], true));
    }

    #[test]
    fn messages_are_found_by_id_until_trimmed() {
        let mut tail = Tail::new(2, (1..=3).map(msg).collect(), true);
        let mut dup = msg(4);
        dup.message.message_id = "m1".into();
        tail.push(dup);
        assert_eq!(
            tail.get("m1").map(|m| m.seq),
            Some(1),
            "the oldest keeps it"
        );
        assert_eq!(tail.find_mut("m3").map(|m| m.seq), Some(3));
        assert_eq!(tail.at(2).map(|m| m.seq), Some(2));
        assert_eq!(
            tail.trim(4).iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(tail.get("m1").is_none() && tail.get("m2").is_none());
        assert!(tail.at(2).is_none());
        assert_eq!(tail.get("m3").map(|m| m.seq), Some(3));
    }

    #[test]
    fn unstored_messages_are_never_trimmed() {
        let mut tail = Tail::new(2, (1..=5).map(msg).collect(), true);
        tail.trim(2);
        assert_eq!(tail.items.len(), 3);
        assert!(!tail.complete);
        assert!(matches!(
            tail.plan(Side::Before(4), 5),
            PagePlan::Storage { .. }
        ));
        assert!(tail.after(1).is_none());
        assert_eq!(tail.after(2).unwrap().count(), 3);
    }
}
