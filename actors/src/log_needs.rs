//! What of the write-ahead log one conversation still needs: the oldest log
//! position of a change it acknowledged (or is about to) that storage does
//! not hold yet. A need is the log's end read *before* the change was
//! appended, so it is never after the change's own record, and a reader of
//! the needs that saw none may release up to an end it read before looking
//! (see [`crate::retention`]).
//!
//! Five places hold such changes, each with its own entry here: changes
//! waiting in the conversation's outbox for durability, messages handed to
//! the flusher and not yet stored, document changes (reactions, revisions)
//! not yet saved, records replayed at start not yet applied, and the
//! intent of a compaction not yet finished.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// No need: the entry holds nothing unstored.
pub(crate) const NONE: u64 = u64::MAX;

/// One conversation's needs.
#[derive(Debug)]
pub(crate) struct LogNeeds {
    /// The needs of messages handed to the flusher and not yet stored, in
    /// the order they were handed (the order the flusher stores them).
    handed: Mutex<VecDeque<u64>>,
    /// The oldest need of a change waiting in the outbox.
    outbox: AtomicU64,
    /// The oldest need of a document change not yet saved.
    documents: AtomicU64,
    /// The oldest replayed record not yet applied.
    replay: AtomicU64,
    /// The intent of a compaction not yet finished (its garbage not yet
    /// deleted).
    compacting: AtomicU64,
}

impl Default for LogNeeds {
    fn default() -> Self {
        LogNeeds {
            handed: Mutex::new(VecDeque::new()),
            outbox: AtomicU64::new(NONE),
            documents: AtomicU64::new(NONE),
            replay: AtomicU64::new(NONE),
            compacting: AtomicU64::new(NONE),
        }
    }
}

impl LogNeeds {
    /// A message with this need goes to the flusher.
    pub(crate) fn handed(&self, need: u64) {
        self.lock_handed().push_back(need);
    }

    /// The last message handed did not reach the flusher after all.
    pub(crate) fn unhand(&self) {
        self.lock_handed().pop_back();
    }

    /// The flusher stored the next `count` messages handed to it.
    pub(crate) fn stored(&self, count: usize) {
        let mut handed = self.lock_handed();
        let count = count.min(handed.len());
        handed.drain(..count);
        if handed.is_empty() {
            handed.shrink_to(8);
        }
    }

    /// The outbox's oldest need now (`NONE`: it is empty).
    pub(crate) fn set_outbox(&self, need: u64) {
        self.outbox.store(need, Ordering::SeqCst);
    }

    /// The oldest unsaved document change's need now (`NONE`: all saved).
    pub(crate) fn set_documents(&self, need: u64) {
        self.documents.store(need, Ordering::SeqCst);
    }

    /// The oldest replayed record not yet applied (`NONE`: all applied).
    pub(crate) fn set_replay(&self, need: u64) {
        self.replay.store(need, Ordering::SeqCst);
    }

    /// A compaction is about to log its intent: needed from `need` on,
    /// unless an earlier unfinished one needs more.
    pub(crate) fn hold_compacting(&self, need: u64) {
        let _ = self
            .compacting
            .compare_exchange(NONE, need, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The compactions are finished (`NONE`) .
    pub(crate) fn set_compacting(&self, need: u64) {
        self.compacting.store(need, Ordering::SeqCst);
    }

    /// The oldest position this conversation needs, `None` for none.
    pub(crate) fn oldest(&self) -> Option<u64> {
        let handed = self.lock_handed().front().copied().unwrap_or(NONE);
        let oldest = [
            handed,
            self.outbox.load(Ordering::SeqCst),
            self.documents.load(Ordering::SeqCst),
            self.replay.load(Ordering::SeqCst),
            self.compacting.load(Ordering::SeqCst),
        ]
        .into_iter()
        .min()
        .unwrap_or(NONE);
        (oldest != NONE).then_some(oldest)
    }

    fn lock_handed(&self) -> std::sync::MutexGuard<'_, VecDeque<u64>> {
        self.handed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::{LogNeeds, NONE};

    #[test]
    fn the_oldest_of_all_places_is_needed() {
        let needs = LogNeeds::default();
        assert_eq!(needs.oldest(), None);
        needs.handed(10);
        needs.handed(20);
        needs.set_documents(15);
        assert_eq!(needs.oldest(), Some(10));
        needs.stored(1);
        assert_eq!(needs.oldest(), Some(15));
        needs.set_documents(NONE);
        needs.set_outbox(30);
        assert_eq!(needs.oldest(), Some(20));
        needs.stored(5);
        assert_eq!(needs.oldest(), Some(30));
        needs.set_outbox(NONE);
        needs.set_replay(3);
        assert_eq!(needs.oldest(), Some(3));
        needs.set_replay(NONE);
        assert_eq!(needs.oldest(), None);
    }
}
