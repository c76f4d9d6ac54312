//! What leaves the conversation waits for the write-ahead log: a change is
//! made to the state at once (so the next request sees it), its record is
//! queued on the log in the handler, and what goes out because of it (the
//! broadcast, the message handed to the flusher, the answer) waits in the
//! outbox until the record is durable. Everything that goes out does so in
//! the order it was made, so an event never overtakes an earlier one still
//! waiting, and an answer never precedes the change it reports.
//!
//! The log's writer notes each record's outcome beside the outbox as soon
//! as its group is synced (no task in between) and nudges the conversation
//! once per batch of news ([`Internal::Logged`]); the conversation also
//! looks for news after every message it handles, so what is ready goes
//! out without waiting behind the requests queued in its mailbox. Each
//! entry waits for its own record's outcome. With the log off nothing
//! waits and nothing is queued.

use super::protocol::{Internal, Reply};
use super::{ConversationMsg, ConversationState};
use crate::changes::Change;
use crate::domain::SequencedMessage;
use crate::error::{ChatError, Report};
use crate::events::EventFrame;
use crate::flusher::FlusherMsg;
use crate::log_needs::NONE;
use crate::log_records::encode_change;
use ractor::ActorRef;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// A change's record queued on the log.
pub(super) struct Logged {
    ticket: u64,
    /// The log's end before the record: never after the record itself.
    pub(super) need: u64,
}

/// The outcomes of the conversation's records, noted by the log's writer
/// and taken by the conversation.
#[derive(Default)]
struct Durability {
    state: Mutex<Outcomes>,
    /// Outcomes wait to be taken (read without the lock).
    news: AtomicBool,
    /// Told when no record's outcome is outstanding.
    settled: Notify,
}

#[derive(Default)]
struct Outcomes {
    /// Outcomes not yet taken, in log order.
    known: Vec<(u64, Result<(), ChatError>)>,
    /// Records logged whose outcome is not known yet.
    outstanding: usize,
}

impl Durability {
    fn lock(&self) -> MutexGuard<'_, Outcomes> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes a record's outcome (on the writer thread); the first news
    /// since the conversation last looked nudges it.
    fn note(
        &self,
        ticket: u64,
        outcome: Result<(), ChatError>,
        conversation: &ActorRef<ConversationMsg>,
    ) {
        let (first, settled) = {
            let mut state = self.lock();
            state.known.push((ticket, outcome));
            state.outstanding -= 1;
            let first = !self.news.swap(true, Ordering::AcqRel);
            (first, state.outstanding == 0)
        };
        if first {
            let _ = conversation.cast(Internal::Logged.into());
        }
        if settled {
            self.settled.notify_one();
        }
    }

    /// The outcomes noted since the last call.
    fn take(&self) -> Vec<(u64, Result<(), ChatError>)> {
        let mut state = self.lock();
        self.news.store(false, Ordering::Release);
        std::mem::take(&mut state.known)
    }
}

/// An answer to send once its change is durable (or the failure).
pub(super) type Answer = Box<dyn FnOnce(Result<(), ChatError>) + Send + Sync>;

/// What goes out once what came before it has.
#[derive(Default)]
pub(super) struct Outgoing {
    /// An event for the streams.
    pub(super) frame: Option<Arc<EventFrame>>,
    /// A message for the flusher (counted in `pending` once handed; until
    /// then the outbox's length counts toward `max_pending`).
    pub(super) store: Option<SequencedMessage>,
    /// An answer.
    pub(super) reply: Option<Answer>,
}

impl Outgoing {
    /// An event only.
    pub(super) fn event(frame: Arc<EventFrame>) -> Self {
        Outgoing {
            frame: Some(frame),
            ..Outgoing::default()
        }
    }
}

/// One entry waiting to go out.
struct Waiting {
    /// The record it waits for; `None`: it waits only for those before it.
    logged: Option<Logged>,
    /// The record's outcome, once known.
    outcome: Option<Result<(), ChatError>>,
    out: Outgoing,
}

impl Waiting {
    fn ready(&self) -> bool {
        self.logged.is_none() || self.outcome.is_some()
    }
}

/// The entries waiting, oldest first.
#[derive(Default)]
pub(super) struct Outbox {
    waiting: VecDeque<Waiting>,
    next_ticket: u64,
    /// Made with the first record logged.
    durability: Option<Arc<Durability>>,
}

impl Outbox {
    /// The oldest need of an entry waiting (`NONE` when none waits).
    fn oldest_need(&self) -> u64 {
        self.waiting
            .iter()
            .find_map(|w| w.logged.as_ref().map(|l| l.need))
            .unwrap_or(NONE)
    }

    /// How many entries wait.
    pub(super) fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Nothing waits to go out and the log owes no record an outcome (so
    /// nothing will tell the conversation anything).
    pub(super) fn settled(&self) -> bool {
        self.waiting.is_empty()
            && self.durability.as_ref().is_none_or(|d| {
                let outcomes = d.lock();
                outcomes.outstanding == 0 && outcomes.known.is_empty()
            })
    }
}

impl ConversationState {
    /// Queues `change`'s record on the log (when it is on), before the
    /// change is made: a log that cannot take it refuses the request here,
    /// with nothing changed.
    pub(super) fn log_change<M: serde::Serialize>(
        &mut self,
        change: &Change<M>,
    ) -> Result<Option<Logged>, ChatError> {
        let Some(wal) = &self.args.log else {
            return Ok(None);
        };
        let bytes = encode_change(self.args.id.as_str(), change)?;
        let need = wal.end();
        let ticket = self.outbox.next_ticket;
        let durability = self
            .outbox
            .durability
            .get_or_insert_with(Arc::default)
            .clone();
        durability.lock().outstanding += 1;
        let conversation = self.myself.clone();
        let noted = durability.clone();
        let appended = wal.append_then(bytes, move |outcome| {
            let outcome = outcome.map(|_| ()).map_err(ChatError::from);
            noted.note(ticket, outcome, &conversation);
        });
        if let Err(e) = appended {
            durability.lock().outstanding -= 1;
            return Err(e.into());
        }
        self.outbox.next_ticket += 1;
        Ok(Some(Logged { ticket, need }))
    }

    /// Sends `out` now when nothing waits and `logged` is `None`, else
    /// queues it behind what waits.
    pub(super) fn send_out(&mut self, logged: Option<Logged>, out: Outgoing) {
        if logged.is_none() && self.outbox.waiting.is_empty() {
            self.deliver(NONE, Ok(()), out);
            return;
        }
        self.outbox.waiting.push_back(Waiting {
            logged,
            outcome: None,
            out,
        });
        self.note_outbox();
    }

    /// Answers `reply` once everything before it went out (at once when
    /// nothing waits); errors go at once, they report no change.
    pub(super) fn answer<T: Send + Sync + 'static>(
        &mut self,
        reply: Reply<T>,
        result: Result<T, ChatError>,
    ) {
        match result {
            Ok(value) if !self.outbox.waiting.is_empty() => {
                let send = move |outcome: Result<(), ChatError>| {
                    let _ = reply.send(outcome.map(|()| value));
                };
                self.send_out(
                    None,
                    Outgoing {
                        reply: Some(Box::new(send)),
                        ..Outgoing::default()
                    },
                );
            }
            result => {
                let _ = reply.send(result);
            }
        }
    }

    /// Records' durability is known: sends out every entry that is ready
    /// from the front.
    pub(super) fn logged(&mut self) {
        let Some(durability) = &self.outbox.durability else {
            return;
        };
        let known = durability.take();
        let mut entries = self.outbox.waiting.iter_mut();
        for (ticket, outcome) in known {
            // Both in log order: each outcome's entry is after the last one's.
            if let Some(entry) =
                entries.find(|w| w.logged.as_ref().is_some_and(|l| l.ticket == ticket))
            {
                entry.outcome = Some(outcome);
            }
        }
        self.send_ready();
    }

    /// Sends out what is ready if the log noted outcomes since the last
    /// look: called after every message, so no entry waits for the nudge
    /// behind the requests queued in the mailbox.
    pub(super) fn logged_if_news(&mut self) {
        if self
            .outbox
            .durability
            .as_ref()
            .is_some_and(|d| d.news.load(Ordering::Acquire))
        {
            self.logged();
        }
    }

    /// Waits until every record is durable or failed (at stop, when no
    /// more mailbox messages come) and sends everything out.
    pub(super) async fn settle_outbox(&mut self) {
        if let Some(durability) = self.outbox.durability.clone() {
            loop {
                let settled = durability.settled.notified();
                if durability.lock().outstanding == 0 {
                    break;
                }
                settled.await;
            }
        }
        self.logged();
    }

    fn send_ready(&mut self) {
        while self.outbox.waiting.front().is_some_and(Waiting::ready) {
            let Some(entry) = self.outbox.waiting.pop_front() else {
                break;
            };
            let need = entry.logged.as_ref().map_or(NONE, |l| l.need);
            self.deliver(need, entry.outcome.unwrap_or(Ok(())), entry.out);
        }
        if self.outbox.waiting.is_empty() && self.outbox.waiting.capacity() > 64 {
            self.outbox.waiting = VecDeque::new();
        }
        self.note_outbox();
    }

    fn note_outbox(&self) {
        self.args
            .write_behind
            .progress
            .log
            .set_outbox(self.outbox.oldest_need());
    }

    /// Sends out one entry whose record is durable (or that has none).
    fn deliver(&mut self, need: u64, outcome: Result<(), ChatError>, out: Outgoing) {
        if let Err(e) = outcome {
            tracing::error!(conversation = %self.args.id, error = %Report(&e), "a change was not logged; it is not acknowledged");
            if let Some(reply) = out.reply {
                reply(Err(e));
            }
            return;
        }
        if let Some(message) = out.store {
            self.hand_to_flusher(need, message);
        }
        if let Some(frame) = out.frame {
            self.published_seq = self.published_seq.max(frame.seq);
            self.buffer.push(frame.clone());
            self.fanout.publish(frame);
        }
        if let Some(reply) = out.reply {
            reply(Ok(()));
        }
    }

    /// Gives the flusher a message to store; its need is held until the
    /// flusher has stored it (noted before the message is sent, so the
    /// flusher cannot store it first).
    pub(super) fn hand_to_flusher(&mut self, need: u64, message: SequencedMessage) {
        let write_behind = &self.args.write_behind;
        write_behind.progress.pending.fetch_add(1, Ordering::AcqRel);
        if need != NONE {
            write_behind.progress.log.handed(need);
        }
        let handed = write_behind
            .flusher()
            .is_some_and(|f| f.cast(FlusherMsg::Append(Box::new(message))).is_ok());
        if !handed {
            if need != NONE {
                write_behind.progress.log.unhand();
            }
            write_behind.progress.pending.fetch_sub(1, Ordering::AcqRel);
            tracing::error!(conversation = %self.args.id, "the flusher is gone; a message is not stored");
        }
    }
}
