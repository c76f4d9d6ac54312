//! Pages of history: served from the tail when it holds them, else read
//! from storage in a task; the ids a page read are remembered so they can
//! be reacted to and are not reused.

use super::idempotency::KnownId;
use super::protocol::{Internal, Page, PageQuery, Reply};
use super::tail::{PagePlan, finish_page};
use super::{ConversationMsg, ConversationState, read_marks, revisions};
use crate::domain::SequencedMessage;
use crate::error::ChatError;
use crate::history::Side;
use ractor::ActorRef;

impl ConversationState {
    /// Answers a page, from the tail or, in a task, from storage.
    pub(super) fn history(
        &self,
        myself: &ActorRef<ConversationMsg>,
        query: PageQuery,
        reply: Reply<Page>,
    ) {
        if let Err(e) = self.meta() {
            let _ = reply.send(Err(e));
            return;
        }
        let side = match (query.cursor, query.newer) {
            (Some(c), true) => Side::After(c),
            (None, true) => Side::After(0),
            (Some(c), false) => Side::Before(c),
            (None, false) => Side::Before(u64::MAX),
        };
        let plan = self.tail.plan(side, query.limit);
        let revisions = self.revisions.clone();
        let readers = read_marks::readers(&self.read_marks);
        let to_page = move |(mut messages, more): (Vec<SequencedMessage>, bool)| {
            for m in &mut messages {
                revisions::overlay(&revisions, m);
            }
            let next_cursor = match side {
                Side::Before(_) => messages.first().filter(|_| more).map(|m| m.seq),
                Side::After(bound) => Some(messages.last().map_or(bound, |m| m.seq)),
            };
            Page {
                messages: messages.into_iter().map(|m| m.message).collect(),
                next_cursor,
                has_more: more,
                readers,
            }
        };
        match plan {
            PagePlan::Ready(messages, more) => {
                let _ = reply.send(Ok(to_page((messages, more))));
            }
            plan => {
                let store = self.args.store.clone();
                let id = self.args.id.clone();
                let me = myself.clone();
                tokio::spawn(async move {
                    let result = finish_page(store.as_ref(), &id, plan).await;
                    if let Ok((messages, _)) = &result {
                        // Told before the answer, so a reaction to what the
                        // page shows finds these ids.
                        let ids = messages
                            .iter()
                            .map(|m| (m.message.message_id.clone(), KnownId::of(m.seq, &m.message)))
                            .collect();
                        let _ = me.cast(Internal::PageRead(ids).into());
                    }
                    let _ = reply.send(result.map(to_page).map_err(ChatError::from));
                });
            }
        }
    }

    /// Remembers the ids a page read from storage.
    pub(super) fn page_read(&mut self, ids: Vec<(String, KnownId)>) {
        for (message_id, known) in ids {
            if self.tail.get(&message_id).is_none() {
                self.older_ids.insert(i64::MAX, &message_id, known);
            }
        }
    }
}
