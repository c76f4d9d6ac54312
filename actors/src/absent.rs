//! The negative cache of conversation ids: ids that storage said do not
//! exist, so that joins, embeds and system messages naming them are
//! answered without loading a conversation (random ids cost one GET each,
//! once). Bounded by count and age; a create removes its id.

use crate::domain::ConversationId;
use std::collections::{HashMap, VecDeque};

/// Ids known not to exist, oldest first.
#[derive(Debug)]
pub(crate) struct AbsentIds {
    since: HashMap<ConversationId, i64>,
    order: VecDeque<(i64, ConversationId)>,
    max: usize,
    ttl_ms: i64,
}

/// Ids remembered at most.
pub(crate) const MAX_ABSENT: usize = 100_000;

/// How long an absence is believed: another writer of the same storage
/// (a second instance, a Chats3 sharing the bucket) may create the id.
pub(crate) const ABSENT_TTL_MS: i64 = 60_000;

impl Default for AbsentIds {
    fn default() -> Self {
        AbsentIds::new(MAX_ABSENT, ABSENT_TTL_MS)
    }
}

impl AbsentIds {
    /// An empty cache of at most `max` ids, each believed for `ttl_ms`.
    pub(crate) fn new(max: usize, ttl_ms: i64) -> Self {
        AbsentIds {
            since: HashMap::new(),
            order: VecDeque::new(),
            max: max.max(1),
            ttl_ms,
        }
    }

    /// Whether the id is known not to exist.
    pub(crate) fn contains(&self, id: &ConversationId, now_ms: i64) -> bool {
        self.since
            .get(id)
            .is_some_and(|at| now_ms - at < self.ttl_ms)
    }

    /// Remembers that the id does not exist, dropping the oldest past the bound.
    pub(crate) fn insert(&mut self, id: ConversationId, now_ms: i64) {
        self.expire(now_ms);
        while self.order.len() >= self.max {
            self.pop();
        }
        self.since.insert(id.clone(), now_ms);
        self.order.push_back((now_ms, id));
    }

    /// Forgets the id (it was created).
    pub(crate) fn remove(&mut self, id: &ConversationId) {
        self.since.remove(id);
    }

    /// Ids remembered now.
    pub(crate) fn len(&self) -> usize {
        self.since.len()
    }

    fn expire(&mut self, now_ms: i64) {
        while self
            .order
            .front()
            .is_some_and(|(at, _)| now_ms - at >= self.ttl_ms)
        {
            self.pop();
        }
    }

    /// Drops the oldest entry of `order`. An id removed or inserted again
    /// since leaves a stale entry there, which drops only the map entry it
    /// matches; every map entry has one matching entry, so the map stays
    /// within the bound of `order`.
    fn pop(&mut self) {
        if let Some((at, id)) = self.order.pop_front()
            && self.since.get(&id) == Some(&at)
        {
            self.since.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> ConversationId {
        ConversationId::parse(&format!("c{n}")).unwrap()
    }

    #[test]
    fn bounded_by_count_and_age_and_forgotten_on_create() {
        let mut absent = AbsentIds::new(2, 100);
        absent.insert(id(1), 0);
        absent.insert(id(2), 10);
        absent.insert(id(3), 20);
        assert!(
            !absent.contains(&id(1), 20),
            "oldest dropped past the bound"
        );
        assert!(absent.contains(&id(2), 20));
        absent.remove(&id(3));
        assert!(!absent.contains(&id(3), 20), "a create forgets the id");
        assert!(
            !absent.contains(&id(2), 200),
            "an absence is believed for a while"
        );
        absent.insert(id(4), 300);
        assert_eq!(absent.len(), 1);
    }
}
