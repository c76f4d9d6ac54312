//! A conversation in a cluster (`[cluster] backend = "redis"`): its
//! events have one order shared by every instance, the order of the
//! conversation's Redis Stream (see [`crate::cluster::stream`]). A change
//! made here is appended there first (a task, off the mailbox); every
//! instance, this one included, applies the stream's entries in sequence
//! order to its tail, documents and streams, so each stream on any
//! instance sees the same events with the same `id:`. Notices come by
//! pub/sub, in order; a notice whose predecessor was not applied (a gap)
//! or a lost subscription reads the missing range with `XRANGE`.
//!
//! An answer waits until its entry is applied here, so the caller's next
//! request on this instance sees its change.

use super::protocol::{Internal, Reply};
use super::read_marks::{self, ReadMark};
use super::streams::{ROOM_STATE_AT, Subscription, room_state};
use super::{ConversationState, posting::message_frame};
use crate::cluster::RedisLink;
use crate::cluster::documents::DocumentChange;
use crate::cluster::roster::Admission;
use crate::cluster::stream::{Appended, Claim, Entry, RANGE_COUNT};
use crate::domain::{Conversation, Message, Participant, Revision, SequencedMessage};
use crate::error::{ChatError, Report};
use crate::events::{EventFrame, Origin};
use crate::log_needs::NONE;
use crate::time::iso_from_ms;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What storage keeps of an entry of the stream.
pub(crate) enum ForStorage {
    /// A message, for the next batch.
    Message(Box<SequencedMessage>),
    /// A change of the reaction, revision or read-mark document.
    Document(DocumentChange),
}

/// What storage keeps of entry `seq`; `None` for an entry storage keeps
/// nothing of (signaling, presence, membership, metadata).
pub(crate) fn for_storage(seq: u64, json: &str) -> Option<ForStorage> {
    match serde_json::from_str::<SharedEntry>(json).ok()? {
        SharedEntry::Message { mut message, .. } => {
            message.server_received_at = iso_from_ms(received_at(seq));
            Some(ForStorage::Message(Box::new(SequencedMessage {
                seq,
                message: *message,
            })))
        }
        SharedEntry::Event {
            change: Some(change),
            ..
        } => {
            let change = match change {
                EventChange::Revision {
                    message_id,
                    revision,
                } => DocumentChange::Revision {
                    message_id,
                    revision,
                },
                EventChange::Reaction {
                    message_id,
                    user_id,
                    emoji,
                    added,
                } => DocumentChange::Reaction {
                    message_id,
                    user_id,
                    emoji,
                    added,
                },
                EventChange::ReadMark {
                    user_id,
                    message_id,
                    seq,
                } => DocumentChange::ReadMark {
                    user_id,
                    mark: ReadMark { message_id, seq },
                },
                EventChange::Presence { .. } | EventChange::Member(_) => return None,
            };
            Some(ForStorage::Document(change))
        }
        _ => None,
    }
}

/// The millisecond of a sequence, where every instance places its entry.
fn received_at(seq: u64) -> i64 {
    i64::try_from(seq / 1000).unwrap_or(i64::MAX)
}

/// One entry of the stream, as JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub(super) enum SharedEntry {
    /// A message; its `serverReceivedAt` is its sequence's millisecond,
    /// so it never decreases along history whichever instance took it.
    Message {
        message: Box<Message>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remember_until: Option<i64>,
        /// A join or leave this notice reports.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member: Option<MemberChange>,
        /// Where it was sent from, for the no-echo rule.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<SharedOrigin>,
    },
    /// An event that is not a message, with what it changes.
    Event {
        event_id: String,
        kind: String,
        from: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        data: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<EventChange>,
        /// Where it was sent from, for the no-echo rule.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<SharedOrigin>,
    },
    /// A change of membership that nothing is broadcast for.
    Member(MemberChange),
    /// The metadata after a create or close.
    Meta(Conversation),
}

impl SharedEntry {
    /// The entry sent from `origin` (on instance `instance_id`).
    pub(super) fn sent_from(mut self, origin: &Origin, instance_id: &str) -> Self {
        if let SharedEntry::Message { origin: at, .. } | SharedEntry::Event { origin: at, .. } =
            &mut self
        {
            *at = SharedOrigin::of(origin, instance_id);
        }
        self
    }
}

/// Where an entry was sent from, as every instance reads it: a stream's
/// id means something on its own instance only.
#[derive(Debug, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub(super) enum SharedOrigin {
    /// An HTTP request of this session.
    Session { session_id: String },
    /// A command up this stream of this instance.
    Stream {
        instance_id: String,
        session_id: String,
        stream_id: u64,
    },
    /// Every stream, the sender's included.
    Nowhere,
}

impl SharedOrigin {
    /// `origin` on instance `instance_id`; `None` for the default (none
    /// of the sender's streams).
    fn of(origin: &Origin, instance_id: &str) -> Option<Self> {
        match origin {
            Origin::Sender => None,
            Origin::Session(session) => Some(SharedOrigin::Session {
                session_id: session.to_string(),
            }),
            Origin::Stream(session, stream) => Some(SharedOrigin::Stream {
                instance_id: instance_id.to_owned(),
                session_id: session.to_string(),
                stream_id: *stream,
            }),
            Origin::Nowhere => Some(SharedOrigin::Nowhere),
        }
    }

    /// The origin as instance `instance_id` applies it: a stream of
    /// another instance is none of this one's, so every stream here gets
    /// the event.
    fn here(origin: Option<Self>, instance_id: &str) -> Origin {
        match origin {
            None => Origin::Sender,
            Some(SharedOrigin::Session { session_id }) => Origin::Session(session_id.into()),
            Some(SharedOrigin::Stream {
                instance_id: from,
                session_id,
                stream_id,
            }) if from == instance_id => Origin::Stream(session_id.into(), stream_id),
            Some(SharedOrigin::Stream { .. } | SharedOrigin::Nowhere) => Origin::Nowhere,
        }
    }
}

/// What an event changes beside being broadcast.
#[derive(Debug, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub(super) enum EventChange {
    Revision {
        message_id: String,
        revision: Revision,
    },
    Reaction {
        message_id: String,
        user_id: String,
        emoji: String,
        added: bool,
    },
    Presence {
        user_id: String,
        status: String,
    },
    ReadMark {
        user_id: String,
        message_id: String,
        seq: u64,
    },
    Member(MemberChange),
}

/// A join or a leave.
#[derive(Debug, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub(super) enum MemberChange {
    Joined {
        user_id: String,
        display_name: String,
    },
    Left {
        user_id: String,
        /// The session whose streams end, when it ends.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
    },
}

/// A change of the roster (see [`crate::cluster::roster`]) that goes
/// before an append.
pub(super) enum RosterStep {
    /// Count a user in, or refuse the append.
    Admit(Admission),
    /// Stop counting a user.
    Remove(String),
}

/// What to do once an append is applied here (`Ok(seq)` of its last
/// entry, or of the message a claimed id names) or failed.
pub(super) type Then =
    Box<dyn FnOnce(&mut ConversationState, Result<u64, ChatError>) + Send + Sync>;

/// The outcome of an append, told back to the conversation.
pub(crate) struct AppendOutcome {
    result: Result<Appended, ChatError>,
    entries: Vec<String>,
    /// The append was the conversation's create.
    starts: bool,
    then: Then,
}

/// A range read, told back to the conversation.
pub(crate) struct RangeRead {
    entries: Result<Vec<Entry>, ChatError>,
}

/// The conversation's part of the cluster.
pub(super) struct SharedLog {
    link: RedisLink,
    /// Appends whose outcome has not come back.
    in_flight: usize,
    /// Answers waiting for their sequence to be applied.
    waiting: Vec<(u64, Then)>,
    /// A range read is under way.
    catching_up: bool,
    /// The highest sequence a notice named.
    seen: u64,
}

/// How long a failed range read waits before the next.
const CATCH_UP_RETRY: Duration = Duration::from_millis(250);

impl SharedLog {
    pub(super) fn new(link: RedisLink) -> Self {
        SharedLog {
            link,
            in_flight: 0,
            waiting: Vec::new(),
            catching_up: false,
            seen: 0,
        }
    }

    /// Appends waiting for their outcome, for the bound on what waits.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }
}

impl ConversationState {
    /// This instance's id in the cluster ("" when alone).
    pub(super) fn instance_id(&self) -> &str {
        self.shared.as_ref().map_or("", |s| s.link.instance_id())
    }

    /// The conversation's cluster link: `Some` in a cluster.
    pub(super) fn shared(&self) -> Option<&SharedLog> {
        self.shared.as_ref()
    }

    /// Appends `entries` in one round trip (claiming `claim` first), then
    /// runs `then` once they are applied here.
    pub(super) fn append(
        &mut self,
        entries: Vec<SharedEntry>,
        claim: Option<(String, String, Duration)>,
        then: Then,
    ) {
        self.append_after(None, entries, claim, then);
    }

    /// Changes the roster first (a failure, such as a full room, answers
    /// `then` and appends nothing), then appends like [`Self::append`].
    pub(super) fn append_after(
        &mut self,
        step: Option<RosterStep>,
        entries: Vec<SharedEntry>,
        claim: Option<(String, String, Duration)>,
        then: Then,
    ) {
        self.append_entries(step, entries, claim, false, then);
    }

    /// Appends the entries of the conversation's create, the first of its
    /// stream.
    pub(super) fn append_first(&mut self, entries: Vec<SharedEntry>) {
        self.append_entries(None, entries, None, true, Box::new(|_, _| {}));
    }

    fn append_entries(
        &mut self,
        step: Option<RosterStep>,
        entries: Vec<SharedEntry>,
        claim: Option<(String, String, Duration)>,
        starts: bool,
        then: Then,
    ) {
        let Some(shared) = self.shared.as_mut() else {
            then(self, Err(ChatError::ActorGone("the cluster link")));
            return;
        };
        let texts: Vec<String> = entries
            .iter()
            .map(|e| serde_json::to_string(e).unwrap_or_default())
            .collect();
        shared.in_flight += 1;
        let link = shared.link.clone();
        let id = self.args.id.clone();
        let floor = self.published_seq.max(self.last_seq);
        let myself = self.myself.clone();
        let now_us = u64::try_from(crate::time::now_ms()).unwrap_or(0) * 1000;
        tokio::spawn(async move {
            let stepped = match &step {
                None => Ok(()),
                Some(RosterStep::Admit(admission)) => link.admit(&id, admission).await,
                Some(RosterStep::Remove(user_id)) => link.remove(&id, user_id).await,
            };
            if let Err(e) = stepped {
                let outcome = AppendOutcome {
                    result: Err(e),
                    entries: Vec::new(),
                    starts,
                    then,
                };
                let _ = myself.cast(Internal::Appended(Box::new(outcome)).into());
                return;
            }
            let claim = claim.as_ref().map(|(message_id, sender, ttl)| Claim {
                message_id,
                sender_user_id: sender,
                ttl: *ttl,
            });
            let result = match link.append(&id, floor, now_us, claim, starts, &texts).await {
                Ok(Appended::Known { sender_user_id, .. })
                    if claim.is_some_and(|c| c.sender_user_id != sender_user_id) =>
                {
                    Err(ChatError::Conflict(
                        "Message ID already used by another sender".into(),
                    ))
                }
                result => result,
            };
            let outcome = AppendOutcome {
                result,
                entries: texts,
                starts,
                then,
            };
            let _ = myself.cast(Internal::Appended(Box::new(outcome)).into());
        });
    }

    /// An append's outcome: its entries are applied (when they are next in
    /// order; else a range read fills what came before) and `then` runs
    /// once they are.
    pub(super) fn appended(&mut self, outcome: AppendOutcome, now: i64) {
        let AppendOutcome {
            result,
            entries,
            starts,
            then,
        } = outcome;
        if let Some(shared) = self.shared.as_mut() {
            shared.in_flight = shared.in_flight.saturating_sub(1);
        }
        match result {
            Err(e) => then(self, Err(e)),
            Ok(Appended::Known { seq, .. }) => self.when_applied(seq, then),
            Ok(Appended::Added { mut prev, seqs }) => {
                let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
                    then(self, Err(ChatError::Invalid("an empty append".into())));
                    return;
                };
                if prev == 0 && !starts {
                    // This append began the stream after events it does not
                    // hold (see `crate::cluster::stream`): resumes from
                    // before it may have missed them.
                    self.floor_seq = self.floor_seq.max(first);
                }
                for (seq, json) in seqs.into_iter().zip(entries) {
                    self.notice(seq, prev, &json, now);
                    prev = seq;
                }
                self.when_applied(last, then);
            }
        }
    }

    /// Runs `then` now if `seq` is applied, else once it is.
    fn when_applied(&mut self, seq: u64, then: Then) {
        if seq <= self.published_seq {
            then(self, Ok(seq));
            return;
        }
        if let Some(shared) = self.shared.as_mut() {
            shared.seen = shared.seen.max(seq);
            shared.waiting.push((seq, then));
        }
        self.catch_up();
    }

    /// A notice of entry `seq` whose predecessor is `prev` (`u64::MAX`:
    /// unknown): applied when it is next, ignored when already applied, a
    /// range read when something before it is missing.
    pub(super) fn notice(&mut self, seq: u64, prev: u64, json: &str, now: i64) {
        if seq <= self.published_seq {
            return;
        }
        let catching_up = self.shared.as_ref().is_some_and(|s| s.catching_up);
        if prev <= self.published_seq && !catching_up {
            self.follow(seq, prev, json, now);
            self.release_waiting();
            return;
        }
        if let Some(shared) = self.shared.as_mut() {
            shared.seen = shared.seen.max(seq);
        }
        self.catch_up();
    }

    /// Applies entry `seq`, the next in the stream after `prev`. When
    /// `prev` is not the last entry applied here, the stream does not
    /// continue from what this instance knows: Redis lost its data (a new
    /// stream began) or trimmed entries this instance never received.
    /// Events may be missing in between, so this instance's streams end
    /// (their clients resume with `Last-Event-ID`) and a resume from
    /// before `seq` gets `resync`: a gap is told, never silent.
    fn follow(&mut self, seq: u64, prev: u64, json: &str, now: i64) {
        if prev != self.published_seq {
            tracing::warn!(conversation = %self.args.id, seq, prev, applied = self.published_seq, "the conversation's stream does not continue from what this instance applied; its streams end and resumes from before get resync");
            self.floor_seq = self.floor_seq.max(seq);
            self.members.cancel_all();
        }
        self.apply(seq, json, now, true);
    }

    /// Reads what follows the last applied entry from the stream, unless a
    /// read is under way.
    pub(super) fn catch_up(&mut self) {
        let Some(shared) = self.shared.as_mut() else {
            return;
        };
        if shared.catching_up {
            return;
        }
        shared.catching_up = true;
        let link = shared.link.clone();
        let id = self.args.id.clone();
        let after = self.published_seq;
        let myself = self.myself.clone();
        tokio::spawn(async move {
            let entries = link.range(&id, after, None).await;
            let _ = myself.cast(Internal::RangeRead(RangeRead { entries }).into());
        });
    }

    /// A range read came back: applies it in order and reads on while more
    /// is known to follow.
    pub(super) fn range_read(&mut self, read: RangeRead, now: i64) {
        if let Some(shared) = self.shared.as_mut() {
            shared.catching_up = false;
        }
        match read.entries {
            Ok(entries) => {
                let full = entries.len() >= RANGE_COUNT;
                for (seq, prev, json) in entries {
                    if seq > self.published_seq {
                        self.follow(seq, prev, &json, now);
                    }
                }
                self.release_waiting();
                let behind = self
                    .shared
                    .as_ref()
                    .is_some_and(|s| s.seen > self.published_seq);
                if full || behind {
                    self.catch_up();
                }
            }
            Err(e) => {
                tracing::warn!(conversation = %self.args.id, error = %Report(&e), "reading the conversation's stream failed; retrying");
                if let Some(shared) = self.shared.as_mut() {
                    shared.catching_up = true;
                }
                self.myself
                    .send_after(CATCH_UP_RETRY, || Internal::CatchUp.into());
            }
        }
    }

    /// Storage holds the conversation's messages through `seq` (another
    /// instance may have stored them): the tail may let them go.
    pub(super) fn stored_through(&mut self, seq: u64) {
        self.args
            .write_behind
            .progress
            .stored_seq
            .fetch_max(seq, Ordering::AcqRel);
        self.trim_tail();
    }

    /// Keeps `users` (with streams open here) counted in the roster for
    /// three housekeeping rounds, in a task.
    pub(super) fn renew_roster(&self, users: Vec<(String, String)>, now: i64) {
        let Some(shared) = self.shared.as_ref() else {
            return;
        };
        if users.is_empty() {
            return;
        }
        let link = shared.link.clone();
        let id = self.args.id.clone();
        let interval = self.args.settings.housekeeping_interval();
        let until = now + i64::try_from((interval * 3).as_millis()).unwrap_or(i64::MAX);
        tokio::spawn(async move {
            if let Err(e) = link.renew(&id, &users, until).await {
                tracing::debug!(conversation = %id, error = %Report(&e), "renewing the roster failed");
            }
        });
    }

    /// Answers `subscription` once its `room-state` lists everyone with a
    /// stream open on any instance: `here` (this instance's, the
    /// subscriber first among them as it was just counted) and, after
    /// them, those Redis knows of elsewhere, by name. When Redis does not
    /// answer, `here` alone.
    pub(super) fn list_everyone(
        &self,
        mut subscription: Subscription,
        mut here: Vec<Participant>,
        reply: Reply<Subscription>,
    ) {
        let Some(shared) = self.shared.as_ref() else {
            let _ = reply.send(Ok(subscription));
            return;
        };
        let link = shared.link.clone();
        let id = self.args.id.clone();
        tokio::spawn(async move {
            match link.streaming(&id, crate::time::now_ms()).await {
                Ok(everyone) => {
                    let mut elsewhere: Vec<Participant> = everyone
                        .into_iter()
                        .filter(|(user, _)| !here.iter().any(|p| p.user_id == *user))
                        .map(|(user_id, display_name)| Participant {
                            user_id,
                            display_name,
                            is_me: false,
                        })
                        .collect();
                    elsewhere.sort_by(|a, b| {
                        (&a.display_name, &a.user_id).cmp(&(&b.display_name, &b.user_id))
                    });
                    here.extend(elsewhere);
                    if let Some(frame) = subscription.opening.get_mut(ROOM_STATE_AT) {
                        *frame = room_state(subscription.position, &here);
                    }
                }
                Err(e) => {
                    tracing::debug!(conversation = %id, error = %Report(&e), "reading who streams elsewhere failed; room-state lists this instance's");
                }
            }
            let _ = reply.send(Ok(subscription));
        });
    }

    /// The retry of a failed range read is due.
    pub(super) fn catch_up_retry(&mut self) {
        if let Some(shared) = self.shared.as_mut() {
            shared.catching_up = false;
        }
        self.catch_up();
    }

    /// Answers what waits for entries applied by now.
    fn release_waiting(&mut self) {
        let Some(shared) = self.shared.as_mut() else {
            return;
        };
        if shared.waiting.is_empty() {
            return;
        }
        let published = self.published_seq;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut shared.waiting)
            .into_iter()
            .partition(|(seq, _)| *seq <= published);
        shared.waiting = waiting;
        for (seq, then) in ready {
            then(self, Ok(seq));
        }
    }

    /// Reads the whole stream at load, before any stream opens: what
    /// storage does not hold yet is kept (and stored by the instance that
    /// appended it), the rest only fills the replay buffer. Resumes from
    /// before the stream's first entry get a `resync`.
    pub(super) async fn load_shared(&mut self) -> Result<(), ChatError> {
        let Some(shared) = self.shared.as_ref() else {
            return Ok(());
        };
        let link = shared.link.clone();
        let marks = link.marks(&self.args.id).await?;
        self.args
            .write_behind
            .progress
            .stored_seq
            .fetch_max(marks.stored, Ordering::AcqRel);
        let stored = self.published_seq;
        let now = crate::time::now_ms();
        let mut after = 0;
        let mut floor = None;
        loop {
            let entries = link.range(&self.args.id, after, None).await?;
            let full = entries.len() >= RANGE_COUNT;
            for (seq, prev, json) in entries {
                floor.get_or_insert(prev.min(stored));
                self.apply_at_load(seq, &json, stored, now);
                after = seq;
            }
            if !full {
                break;
            }
        }
        // The next entry follows the stream's head, even when what came
        // last (events) was trimmed.
        self.published_seq = self.published_seq.max(marks.head);
        self.last_seq = self.last_seq.max(marks.head);
        self.floor_seq = floor.unwrap_or(self.published_seq).max(marks.since);
        self.documents_saved_elsewhere();
        Ok(())
    }

    /// An entry read at load: one storage holds already (at most `stored`)
    /// only fills the replay buffer and lays what it changed over the
    /// loaded documents again (in order, so they end at the latest state).
    fn apply_at_load(&mut self, seq: u64, json: &str, stored: u64, now: i64) {
        let before = self.published_seq;
        self.apply(seq, json, now, seq > stored);
        self.published_seq = before.max(seq);
    }

    /// Makes entry `seq` (the next in order) to the state and sends its
    /// event to the streams; a message is kept (and stored by the
    /// instance that appended it) when `keep`, else it is stored already.
    fn apply(&mut self, seq: u64, json: &str, now: i64, keep: bool) {
        let at = received_at(seq);
        let entry = match serde_json::from_str::<SharedEntry>(json) {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!(conversation = %self.args.id, seq, error = %e, "an entry of the conversation's stream does not parse; skipped");
                self.published_seq = seq;
                return;
            }
        };
        let frame = match entry {
            SharedEntry::Message {
                mut message,
                remember_until,
                member,
                origin,
            } => {
                message.server_received_at = iso_from_ms(at);
                let sequenced = SequencedMessage {
                    seq,
                    message: *message,
                };
                let origin = SharedOrigin::here(origin, self.instance_id());
                let frame = Arc::new(message_frame(&sequenced).from_origin(origin));
                if keep && self.tail.at(seq).is_none() {
                    self.keep_message(sequenced, remember_until, now);
                }
                if let Some(member) = member {
                    self.apply_member(member, at);
                }
                Some(frame)
            }
            SharedEntry::Event {
                event_id,
                kind,
                from,
                to,
                data,
                change,
                origin,
            } => {
                if let Some(change) = change {
                    self.apply_change(change, at);
                }
                let origin = SharedOrigin::here(origin, self.instance_id());
                Some(Arc::new(
                    EventFrame::new(seq, &event_id, &kind, &from, to.as_deref(), &data, at)
                        .from_origin(origin),
                ))
            }
            SharedEntry::Member(member) => {
                self.apply_member(member, at);
                None
            }
            SharedEntry::Meta(meta) => {
                self.meta = Some(meta);
                None
            }
        };
        self.published_seq = seq;
        self.last_seq = self.last_seq.max(seq);
        if let Some(frame) = frame {
            self.buffer.push(frame.clone());
            self.fanout.publish(frame);
        }
    }

    /// Makes an entry's change to the state here; the documents it
    /// changes are saved by the instance holding the storing lease (see
    /// [`crate::cluster::documents`]), so the copies here count as saved.
    fn apply_change(&mut self, change: EventChange, at: i64) {
        self.apply_change_here(change, at);
        self.documents_saved_elsewhere();
    }

    fn apply_change_here(&mut self, change: EventChange, at: i64) {
        match change {
            EventChange::Revision {
                message_id,
                revision,
            } => {
                self.keep_revision(&message_id, revision, NONE);
            }
            EventChange::Reaction {
                message_id,
                user_id,
                emoji,
                added,
            } => {
                self.keep_reaction(&message_id, &user_id, &emoji, added, NONE);
            }
            EventChange::Presence { user_id, status } => {
                self.keep_presence(&user_id, status, at);
            }
            EventChange::ReadMark {
                user_id,
                message_id,
                seq,
            } => {
                if read_marks::advances(&self.read_marks, &user_id, seq) {
                    self.keep_read_mark(&user_id, ReadMark { message_id, seq }, NONE);
                }
            }
            EventChange::Member(member) => self.apply_member(member, at),
        }
    }

    fn apply_member(&mut self, member: MemberChange, at: i64) {
        match member {
            MemberChange::Joined {
                user_id,
                display_name,
            } => self.members.joined(&user_id, &display_name, at),
            MemberChange::Left {
                user_id,
                session_id,
            } => self.members.leave(&user_id, session_id.as_deref()),
        }
    }
}
