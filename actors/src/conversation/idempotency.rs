//! Message ids a conversation remembers beyond its tail, bounded by age and
//! count: who posted each and at which sequence, never the message itself
//! (a repeat reads the stored message back from the tail or storage).
//! One type serves the idempotency window of client-chosen ids and the ids
//! of older pages read from storage.

use crate::domain::{Message, Role, Sender};
use std::collections::{HashMap, VecDeque};

/// Where a message id was used, and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KnownId {
    pub seq: u64,
    sender_user_id: String,
    /// The service's own messages: no user id (an embedded user may be
    /// called "system") can pass for them.
    by_service: bool,
}

impl KnownId {
    /// The id of a stored message.
    pub(crate) fn of(seq: u64, message: &Message) -> Self {
        KnownId {
            seq,
            sender_user_id: message.sender_user_id.clone(),
            by_service: message.sender_role == Role::System,
        }
    }

    /// Whether `sender` posted the message this id names.
    pub(crate) fn posted_by(&self, sender: &Sender) -> bool {
        self.sender_user_id == sender.user_id && self.by_service == (sender.role == Role::System)
    }
}

/// Recently used message ids, each until its own deadline, at most `max`.
#[derive(Debug)]
pub(crate) struct RecentIds {
    by_id: HashMap<String, (i64, KnownId)>,
    /// Insertion order with each entry's deadline, for expiry and the bound.
    order: VecDeque<(i64, String)>,
    max: usize,
}

impl RecentIds {
    /// Ids remembered now.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn new(max: usize) -> Self {
        RecentIds {
            by_id: HashMap::new(),
            order: VecDeque::new(),
            max: max.max(1),
        }
    }

    pub(crate) fn get(&self, message_id: &str) -> Option<&KnownId> {
        self.by_id.get(message_id).map(|(_, known)| known)
    }

    /// Remembers `message_id` until `until_ms`, forgetting the oldest entry
    /// when full.
    pub(crate) fn insert(&mut self, until_ms: i64, message_id: &str, known: KnownId) {
        if self.order.len() >= self.max
            && let Some((deadline, old)) = self.order.pop_front()
        {
            self.forget(deadline, &old);
        }
        self.order.push_back((until_ms, message_id.to_owned()));
        self.by_id.insert(message_id.to_owned(), (until_ms, known));
    }

    /// Forgets entries whose deadline passed. Deadlines may differ, so an
    /// entry can outlive its own behind a longer one: ids are remembered at
    /// least as long as asked, never shorter.
    pub(crate) fn expire(&mut self, now_ms: i64) {
        while let Some((deadline, _)) = self.order.front()
            && *deadline < now_ms
        {
            if let Some((deadline, id)) = self.order.pop_front() {
                self.forget(deadline, &id);
            }
        }
    }

    /// Drops an entry unless it was inserted again with another deadline.
    fn forget(&mut self, deadline: i64, message_id: &str) {
        if self
            .by_id
            .get(message_id)
            .is_some_and(|(until, _)| *until == deadline)
        {
            self.by_id.remove(message_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(seq: u64, user: &str) -> KnownId {
        KnownId {
            seq,
            sender_user_id: user.into(),
            by_service: false,
        }
    }

    #[test]
    fn ids_expire_at_their_deadline_and_the_count_is_bounded() {
        let mut ids = RecentIds::new(2);
        ids.insert(100, "a", known(1, "u"));
        ids.insert(300, "b", known(2, "u"));
        ids.expire(200);
        assert!(ids.get("a").is_none());
        assert_eq!(ids.get("b").map(|k| k.seq), Some(2));
        ids.insert(400, "c", known(3, "u"));
        ids.insert(500, "d", known(4, "u"));
        assert!(ids.get("b").is_none(), "the oldest goes when full");
        assert!(ids.get("c").is_some() && ids.get("d").is_some());
    }

    #[test]
    fn a_reinserted_id_keeps_its_new_deadline() {
        let mut ids = RecentIds::new(10);
        ids.insert(100, "a", known(1, "u"));
        ids.insert(900, "a", known(1, "u"));
        ids.expire(500);
        assert!(ids.get("a").is_some());
    }

    #[test]
    fn the_service_is_not_a_user_called_system() {
        let user = Sender {
            user_id: "system".into(),
            display_name: "S".into(),
            avatar_url: None,
            role: Role::User,
        };
        let by_service = KnownId {
            seq: 1,
            sender_user_id: "system".into(),
            by_service: true,
        };
        assert!(!by_service.posted_by(&user));
        assert!(by_service.posted_by(&Sender::system()));
    }
}
