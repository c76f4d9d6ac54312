//! The conversation actor: one per live conversation. It owns metadata,
//! participants, the hot tail of history, the message ids it remembers, the
//! signaling replay buffer, reactions and the subscriber fan-out, and hands
//! each accepted message to its write-behind [`crate::flusher`].
//!
//! A message id names one message of one sender: an id that names another
//! sender's message in the tail, the idempotency window, among the latest
//! ids trimmed from the tail or read by a page, or anywhere in stored
//! history (asked of its id filters) is refused (409), and the same
//! sender's repeat answers the stored message. Reactions name only
//! messages memory knows.
//!
//! Storage I/O that a caller waits on for long (history pages, reaction
//! saves) runs in spawned tasks; only the rare metadata writes (create,
//! close) are awaited in the handler, so two admins cannot race them.
//!
//! This file is the shell: the state, the actor's lifecycle, loading,
//! sequencing, publishing, housekeeping and the dispatch. Beside it, one
//! file per concern:
//! - `protocol`: the message enum (requests apart from what the actor
//!   tells itself) and the request and answer types;
//! - `loading`: reading the conversation from storage, retried on failure;
//! - `metadata`: create and close;
//! - `joining`: join, admit, the participant limit, leave, presence;
//! - `keeping`: making an acknowledged change (see [`crate::changes`]) to
//!   the state, live and at replay;
//! - `outbox`: what goes out (events, messages to store, answers) once
//!   the log holds the change behind it;
//! - `posting`: sequencing, logging, idempotent retries;
//! - `consulting`: posts whose client id no memory knows, checked against
//!   the stored history's id filters (`id_filters`) first;
//! - `streams`: opening, resuming and closing event streams, signaling;
//! - `paging`: history pages;
//! - `search`: searching the whole history, newest first;
//! - `editing`: edits, deletes, reactions, read receipts;
//! - `documents`: the reaction, revision and read-mark documents and
//!   their saving;
//! - `attachments`: uploads and downloads;
//! - `members`, `tail`, `idempotency`, `reactions`, `revisions`,
//!   `read_marks`: the data structures the state is made of.

mod attachments;
mod consulting;
mod documents;
mod editing;
pub(crate) mod hibernation;
mod id_filters;
mod idempotency;
mod joining;
mod keeping;
mod loading;
mod members;
pub(crate) mod metadata;
mod outbox;
mod paging;
mod posting;
mod protocol;
pub(crate) mod reactions;
pub(crate) mod read_marks;
pub(crate) mod revisions;
mod search;
mod shared;
mod shared_requests;
mod streams;
mod tail;

use crate::cluster::RedisLink;
use crate::domain::{Conversation, ConversationId};
use crate::error::ChatError;
use crate::events::{EventFrame, Fanout, LocalFanout, Origin, ReplayBuffer};
use crate::flusher::FlusherMsg;
use crate::settings::Settings;
use crate::store::SharedStore;
use crate::time::now_ms;
use crate::wal::Wal;
use crate::write_behind::WriteBehind;
use documents::{Document, DocumentKind};
pub(crate) use hibernation::{HIBERNATING, Hibernated};
use id_filters::IdFilters;
use idempotency::{KnownId, RecentIds};
pub(crate) use joining::invalid_join;
use members::Members;
use outbox::{Outbox, Outgoing};
pub(crate) use protocol::{ConversationMsg, Internal, Request};
pub use protocol::{
    Page, PageQuery, PresenceEntry, SearchHit, SearchPage, SearchQuery, StreamOpen, Unread,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
pub use reactions::ReactionMap;
pub use read_marks::ReadMark;
use read_marks::ReadMarks;
use revisions::Revisions;
use shared::SharedLog;
pub(crate) use shared::{ForStorage, for_storage};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
pub use streams::{REPLAY_CHUNK, ReplayChunk, ReplayCursor, StreamRelease, Subscription};
use tail::Tail;

/// What a loaded, idle conversation costs (its actor, state and the
/// supervisor's entries; BENCHMARKS.md measures about 10 KiB).
const ROOM_BYTES: usize = 10 << 10;

/// What one remembered id costs (map entry, key, order entry).
const ID_BYTES: usize = 120;

/// What one member or presence entry costs.
const MEMBER_BYTES: usize = 300;

/// Behaviour of the conversation actor.
pub(crate) struct ConversationActor;

/// Arguments of the conversation actor.
pub(crate) struct ConversationArgs {
    pub id: ConversationId,
    pub store: SharedStore,
    pub settings: Arc<Settings>,
    /// Kept by the supervisor across restarts of this conversation.
    pub write_behind: Arc<WriteBehind>,
    /// The write-ahead log; `None` when it is off (and in a cluster,
    /// where the conversation's Redis Stream is its log).
    pub log: Option<Wal>,
    /// The cluster's Redis, when this instance is in one.
    pub cluster: Option<RedisLink>,
    /// The state of the room when it wakes from hibernation (its actor
    /// then reads nothing from storage).
    pub resume: Option<Box<Hibernated>>,
}

/// State of the conversation actor.
pub(crate) struct ConversationState {
    args: ConversationArgs,
    myself: ActorRef<ConversationMsg>,
    meta: Option<Conversation>,
    load_error: Option<ChatError>,
    members: Members,
    tail: Tail,
    /// Client-chosen ids within their idempotency window.
    idempotency: RecentIds,
    /// Ids of messages older than the tail: trimmed from it or read by a page.
    older_ids: RecentIds,
    /// Filters of the stored history's ids, for ids no memory knows
    /// (loaded on need, dropped at hibernation).
    id_filters: IdFilters,
    buffer: ReplayBuffer,
    /// Behind the [`Fanout`] seam so a cross-instance backplane can replace it.
    fanout: Box<dyn Fanout>,
    reactions: ReactionMap,
    reactions_doc: Document,
    revisions: Arc<Revisions>,
    revisions_doc: Document,
    /// Each user's last-read position.
    read_marks: ReadMarks,
    read_marks_doc: Document,
    presence: HashMap<String, PresenceEntry>,
    /// Last sequence handed out; ids never go backwards.
    last_seq: u64,
    /// Last sequence that went out to the streams (the outbox holds the
    /// ones after it).
    published_seq: u64,
    /// What waits for the log before it goes out.
    outbox: Outbox,
    /// Sequence at start: resumes from before it lost buffered state.
    floor_seq: u64,
    last_activity_ms: i64,
    /// Failed loads in a row, for the retry backoff.
    load_failures: u32,
    /// Bytes of attachments stored or being stored, for the upload quota
    /// (from a listing at load when the quota is on).
    upload_bytes: u64,
    /// Deleting the `meta.json` of a create that was answered with an
    /// error; another create waits for it.
    meta_undo: Option<tokio::task::JoinHandle<()>>,
    /// In a cluster: the shared order of events (see `shared`).
    shared: Option<SharedLog>,
    /// Stopping to hibernate: the stop stores nothing (all is stored).
    hibernating: bool,
}

// Each hook boxes its body: the actor's tokio task holds the future it
// awaits inline for the actor's whole life, so without the box every idle
// room would pay for the largest handler's state.
impl Actor for ConversationActor {
    type Msg = ConversationMsg;
    type State = ConversationState;
    type Arguments = ConversationArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ConversationArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Box::pin(self.start(myself, args)).await
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        Box::pin(self.started(myself, state)).await
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        Box::pin(self.stopped(myself, state)).await
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        Box::pin(self.handled(myself, message, state)).await
    }
}

impl ConversationActor {
    async fn start(
        &self,
        myself: ActorRef<ConversationMsg>,
        mut args: ConversationArgs,
    ) -> Result<ConversationState, ActorProcessingErr> {
        if let Some(hibernated) = args.resume.take() {
            return Ok(hibernated.wake(myself, args));
        }
        let settings = args.settings.clone();
        let shared = args.cluster.clone().map(SharedLog::new);
        Ok(ConversationState {
            args,
            myself,
            meta: None,
            load_error: None,
            members: Members::default(),
            tail: Tail::new(settings.history_tail, Vec::new(), true),
            idempotency: RecentIds::new(settings.idempotency_max),
            older_ids: RecentIds::new(settings.idempotency_max),
            id_filters: IdFilters::default(),
            buffer: ReplayBuffer::new(settings.signaling_buffer_len, settings.signaling_buffer_ttl),
            fanout: Box::new(LocalFanout::new(settings.subscriber_queue)),
            reactions: ReactionMap::new(),
            reactions_doc: Document::default(),
            revisions: Arc::default(),
            revisions_doc: Document::default(),
            read_marks: ReadMarks::new(),
            read_marks_doc: Document::default(),
            presence: HashMap::new(),
            last_seq: 0,
            published_seq: 0,
            outbox: Outbox::default(),
            floor_seq: 0,
            last_activity_ms: now_ms(),
            load_failures: 0,
            upload_bytes: 0,
            meta_undo: None,
            shared,
            hibernating: false,
        })
    }

    /// Loads the conversation from storage (unless it woke from
    /// hibernation); messages wait in the mailbox meanwhile.
    async fn started(
        &self,
        myself: ActorRef<ConversationMsg>,
        state: &mut ConversationState,
    ) -> Result<(), ActorProcessingErr> {
        if state.meta.is_none() {
            state.try_load(&myself).await;
        }
        state.note_idle();
        Ok(())
    }

    async fn stopped(
        &self,
        _myself: ActorRef<ConversationMsg>,
        state: &mut ConversationState,
    ) -> Result<(), ActorProcessingErr> {
        if state.hibernating {
            return Ok(());
        }
        state.settle_outbox().await;
        state.members.cancel_all();
        state
            .args
            .write_behind
            .progress
            .memory_bytes
            .store(0, std::sync::atomic::Ordering::Release);
        if let Some(flusher) = state.args.write_behind.flusher() {
            let _ = flusher
                .call(FlusherMsg::Drain, Some(Duration::from_secs(60)))
                .await;
        }
        state.save_at_stop().await;
        Ok(())
    }

    async fn handled(
        &self,
        myself: ActorRef<ConversationMsg>,
        message: ConversationMsg,
        state: &mut ConversationState,
    ) -> Result<(), ActorProcessingErr> {
        let now = now_ms();
        match message {
            ConversationMsg::Request(request) => {
                state.last_activity_ms = now;
                if request.stores_message()
                    && let Err(e) = state.args.write_behind.started().await
                {
                    request.fail(e);
                } else if let Some(error) = &state.load_error {
                    request.fail(error.clone());
                } else {
                    state.serve(&myself, request, now).await;
                }
            }
            ConversationMsg::Internal(internal) => {
                if !matches!(
                    internal,
                    Internal::Housekeep
                        | Internal::DocumentSaved { .. }
                        | Internal::Logged
                        | Internal::Notice { .. }
                        | Internal::RangeRead(_)
                        | Internal::CatchUp
                        | Internal::Stored(_)
                ) {
                    state.last_activity_ms = now;
                }
                state.note(&myself, internal, now).await?;
            }
        }
        state.logged_if_news();
        state.note_idle();
        Ok(())
    }
}

const NOT_FOUND: ChatError = ChatError::NotFound("Conversation not found");

impl ConversationState {
    /// Serves one caller's request on a loaded conversation.
    async fn serve(&mut self, myself: &ActorRef<ConversationMsg>, request: Request, now: i64) {
        let request = if self.shared.is_some() {
            match self.serve_shared(request, now) {
                Some(request) => request,
                None => return,
            }
        } else {
            request
        };
        match request {
            Request::Create {
                keep_existing: true,
                reply,
                ..
            } if self.meta.is_some() => drop(reply.send(self.meta().cloned())),
            Request::Create { title, reply, .. } => {
                let result = self.create(title).await;
                let created = result.is_ok();
                if reply.send(result).is_err() && created {
                    // The caller gave up (timed out): it was told the create
                    // failed, so the conversation must not exist.
                    self.undo_create();
                }
            }
            Request::Get(reply) => drop(reply.send(self.meta().cloned())),
            Request::Close(reply) => drop(reply.send(self.close().await)),
            Request::Join {
                user_id,
                join_code,
                display_name,
                reply,
            } => {
                let joined = self.join(&user_id, &join_code, &display_name, now);
                self.answer(reply, joined);
            }
            Request::Admit { user, reply } => {
                let admitted = self.admit(&user, now);
                self.answer(reply, admitted);
            }
            Request::Post {
                sender,
                message,
                origin,
                reply,
            } => self.post_or_repeat(&sender, message, origin, now, reply),
            Request::Leave {
                user,
                session_id,
                end_session,
                reply,
            } => {
                let left = self.leave(&user, &session_id, end_session, now);
                self.answer(reply, left);
            }
            Request::Signal {
                from,
                kind,
                to,
                data,
                reply,
            } => {
                let signalled = self.signal(&from, &kind, to.as_deref(), &data, now);
                self.answer(reply, signalled);
            }
            Request::Subscribe(open, reply) => self.open_stream(myself, open, reply),
            Request::Replay {
                after,
                until,
                reply,
            } => drop(reply.send(Ok(self.replay_chunk(after, until)))),
            Request::History(query, reply) => self.history(myself, query, reply),
            Request::Search(query, reply) => self.search(query, reply),
            Request::Reactions(reply) => {
                drop(reply.send(self.meta().map(|_| self.reactions.clone())))
            }
            Request::React {
                user_id,
                message_id,
                emoji,
                added,
                reply,
            } => {
                let reacted = self.react(myself, &user_id, &message_id, &emoji, added, now);
                self.answer(reply, reacted);
            }
            Request::Revise {
                user_id,
                message_id,
                body,
                reply,
            } => {
                let revised = self.revise(myself, &user_id, &message_id, body, now);
                self.answer(reply, revised);
            }
            Request::Read {
                user_id,
                message_id,
                origin,
                reply,
            } => {
                let read = self.mark_read(myself, &user_id, &message_id, origin, now);
                self.answer(reply, read);
            }
            Request::Unread { user_id, reply } => drop(reply.send(self.unread(&user_id))),
            Request::Presence(reply) => {
                drop(reply.send(self.meta().map(|_| self.presence.clone())))
            }
            Request::SetPresence {
                user_id,
                status,
                reply,
            } => {
                let set = self.set_presence(&user_id, status, now);
                self.answer(reply, set);
            }
            Request::PutAttachment(upload, reply) => self.put_attachment(myself, *upload, reply),
            Request::AttachmentData(id, variant, reply) => self.attachment_data(id, variant, reply),
            Request::AttachmentLink(id, variant, reply) => self.attachment_link(id, variant, reply),
        }
    }

    /// Handles what the conversation told itself; an error stops the actor
    /// (only the test hook does that).
    async fn note(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        internal: Internal,
        now: i64,
    ) -> Result<(), ActorProcessingErr> {
        match internal {
            Internal::Reload if self.load_error.is_some() => self.try_load(myself).await,
            Internal::Reload => {}
            Internal::Housekeep if self.load_error.is_some() => {
                if now - self.last_activity_ms > 60_000 {
                    myself.stop(Some("storage unavailable".into()))
                }
            }
            Internal::Housekeep => self.housekeep(myself, now),
            Internal::StreamClosed(stream_id) => self.stream_closed(myself, stream_id),
            Internal::GraceExpired {
                user_id,
                generation,
            } => self.grace_expired(&user_id, generation, now),
            Internal::PageRead(ids) => self.page_read(ids),
            Internal::DocumentSaved { kind, version, ok } => {
                self.document_saved(myself, kind, version, ok)
            }
            Internal::SaveDocument(kind) => self.save_due(myself, kind),
            Internal::UploadFailed(bytes) => self.upload_failed(bytes),
            Internal::Logged => self.logged(),
            Internal::Appended(outcome) => self.appended(*outcome, now),
            Internal::Notice { seq, prev, json } => self.notice(seq, prev, &json, now),
            Internal::RangeRead(read) => self.range_read(read, now),
            Internal::CatchUp => self.catch_up_retry(),
            Internal::Stored(seq) => self.stored_through(seq),
            Internal::Consulted(consulted) => self.consulted(*consulted, now),
            #[cfg(any(test, feature = "fault-injection"))]
            Internal::Crash => return Err("crash requested by a test".into()),
        }
        Ok(())
    }

    /// The metadata, or 404 for a conversation that does not exist.
    fn meta(&self) -> Result<&Conversation, ChatError> {
        self.meta.as_ref().ok_or(NOT_FOUND)
    }

    /// A fresh sequence: above every earlier one and at least the current
    /// time in microseconds, so ids keep rising across restarts.
    fn next_seq(&mut self, now: i64) -> u64 {
        self.last_seq = (self.last_seq + 1).max(u64::try_from(now).unwrap_or(0) * 1000);
        self.last_seq
    }

    /// Publishes an event that is not a message (signaling, reactions,
    /// edits, presence) once what waits before it went out; answers its
    /// event id.
    fn publish(
        &mut self,
        kind: &str,
        from: &str,
        to: Option<&str>,
        data: &impl serde::Serialize,
        now: i64,
    ) -> String {
        let event_id = uuid::Uuid::new_v4().to_string();
        let frame = self.event_frame_with_id(&event_id, kind, from, to, data, now, Origin::Sender);
        self.send_out(None, Outgoing::event(frame));
        event_id
    }

    /// A new broadcast (not a message) with a fresh id and sequence, to
    /// send out behind the change it reports; `origin` names the sender's
    /// streams it skips.
    fn event_frame(
        &mut self,
        kind: &str,
        from: &str,
        data: &impl serde::Serialize,
        now: i64,
        origin: Origin,
    ) -> Arc<EventFrame> {
        let event_id = uuid::Uuid::new_v4().to_string();
        self.event_frame_with_id(&event_id, kind, from, None, data, now, origin)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the event's fields, each its own"
    )]
    fn event_frame_with_id(
        &mut self,
        event_id: &str,
        kind: &str,
        from: &str,
        to: Option<&str>,
        data: &impl serde::Serialize,
        now: i64,
        origin: Origin,
    ) -> Arc<EventFrame> {
        let seq = self.next_seq(now);
        Arc::new(EventFrame::new(seq, event_id, kind, from, to, data, now).from_origin(origin))
    }

    /// Tells the supervisor about how many bytes this conversation holds,
    /// for the bound on all loaded conversations.
    fn note_memory(&self) {
        let bytes = ROOM_BYTES
            + self.tail.approx_bytes()
            + self.buffer.bytes()
            + (self.idempotency.len() + self.older_ids.len()) * ID_BYTES
            + self.id_filters.bytes()
            + self.members.member_count() * MEMBER_BYTES
            + self.presence.len() * MEMBER_BYTES
            + (self.reactions.len() + self.read_marks.len()) * ID_BYTES;
        self.args
            .write_behind
            .progress
            .memory_bytes
            .store(bytes, std::sync::atomic::Ordering::Release);
    }

    /// Tells the supervisor since when this conversation is idle (no open
    /// stream), for unloading the idlest under pressure.
    fn note_idle(&self) {
        let since = if self.members.stream_count() == 0 {
            self.last_activity_ms
        } else {
            i64::MAX
        };
        self.args
            .write_behind
            .progress
            .idle_since_ms
            .store(since, std::sync::atomic::Ordering::Release);
    }

    /// Expires buffers, ids and holds; stops the actor when idle, or
    /// hibernates it when settled and idle for `hibernate_after`.
    fn housekeep(&mut self, myself: &ActorRef<ConversationMsg>, now: i64) {
        let settings = self.args.settings.clone();
        self.buffer.expire(now);
        self.idempotency.expire(now);
        self.members
            .expire_holds(now, settings.join_hold.as_millis() as i64);
        self.trim_tail();
        self.note_memory();
        self.renew_roster(self.members.streaming_users(), now);
        let idle_for = now - self.last_activity_ms;
        let idle_limit = if self.meta.is_some() {
            settings.idle_timeout
        } else {
            settings.idle_timeout.min(Duration::from_secs(10))
        };
        if self.members.stream_count() == 0 && idle_for >= idle_limit.as_millis() as i64 {
            myself.stop(Some("idle".into()));
        } else if self.may_hibernate(idle_for) {
            self.hibernating = true;
            myself.stop(Some(HIBERNATING.into()));
        }
    }
}
