//! The idempotency cache: `messageId` → stored message, bounded by age and count.

use crate::domain::Message;
use std::collections::{HashMap, VecDeque};

/// Recently stored messages by id.
#[derive(Debug)]
pub struct IdempotencyCache {
    by_id: HashMap<String, Message>,
    order: VecDeque<(i64, String)>,
    ttl_ms: i64,
    max: usize,
}

impl IdempotencyCache {
    pub fn new(ttl: std::time::Duration, max: usize) -> Self {
        IdempotencyCache {
            by_id: HashMap::new(),
            order: VecDeque::new(),
            ttl_ms: ttl.as_millis() as i64,
            max: max.max(1),
        }
    }

    pub fn get(&self, message_id: &str) -> Option<&Message> {
        self.by_id.get(message_id)
    }

    pub fn insert(&mut self, now_ms: i64, message: &Message) {
        if self.order.len() == self.max
            && let Some((_, old)) = self.order.pop_front()
        {
            self.by_id.remove(&old);
        }
        self.order.push_back((now_ms, message.message_id.clone()));
        self.by_id
            .insert(message.message_id.clone(), message.clone());
    }

    pub fn expire(&mut self, now_ms: i64) {
        while self
            .order
            .front()
            .is_some_and(|(t, _)| now_ms - t > self.ttl_ms)
        {
            if let Some((_, id)) = self.order.pop_front() {
                self.by_id.remove(&id);
            }
        }
    }
}
