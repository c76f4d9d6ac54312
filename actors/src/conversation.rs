//! The conversation actor: one per live conversation. It owns metadata,
//! participants, the hot tail of history, the message ids it remembers, the
//! signaling replay buffer, reactions and the subscriber fan-out, and hands
//! each accepted message to its write-behind [`crate::flusher`].
//!
//! A message id names one message of one sender: an id that names another
//! sender's message in the tail, the idempotency window, or among the
//! latest ids trimmed from the tail or read by a page is refused (409), and the same sender's repeat answers the stored
//! message. Reactions name only such known messages.
//!
//! Storage I/O that a caller waits on for long (history pages, reaction
//! saves) runs in spawned tasks; only the rare metadata writes (create,
//! close) are awaited in the handler, so two admins cannot race them.

mod documents;
mod idempotency;
mod members;
pub mod reactions;
pub mod revisions;
mod tail;

use crate::domain::{
    AttachmentMeta, Conversation, ConversationId, ConversationStatus, Message, MessageType,
    NewMessage, Role, Sender, SequencedMessage, generate_join_code,
};
use crate::error::ChatError;
use crate::events::{EventFrame, Fanout, LocalFanout, ReplayBuffer, control_frame};
use crate::flusher::FlusherMsg;
use crate::history::Side;
use crate::settings::Settings;
use crate::store::{SharedStore, keys};
use crate::time::{iso_from_ms, now_ms};
use crate::write_behind::WriteBehind;
use bytes::Bytes;
use documents::{Document, DocumentKind};
use idempotency::{KnownId, RecentIds};
use members::Members;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
pub use reactions::ReactionMap;
use revisions::{EDIT_WINDOW_MS, Revision, Revisions};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tail::{PagePlan, Tail, finish_page};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

type Reply<T> = RpcReplyPort<Result<T, ChatError>>;

/// A page of history.
#[derive(Debug, Clone)]
pub struct Page {
    pub messages: Vec<Message>,
    /// Exclusive bound for the next page in the same direction.
    pub next_cursor: Option<u64>,
    pub has_more: bool,
}

/// Which page of history to read.
#[derive(Debug, Clone, Copy)]
pub struct PageQuery {
    pub limit: usize,
    pub cursor: Option<u64>,
    pub newer: bool,
}

/// Who opens a stream.
#[derive(Debug, Clone)]
pub struct StreamOpen {
    pub user_id: String,
    pub display_name: String,
    pub session_id: String,
    /// `Last-Event-ID` or `?cursor=`, unparsed.
    pub resume_from: Option<String>,
    /// Cancelling this ends the stream too (the server's shutdown): the
    /// stream's own token is its child, so a stream waits on one token.
    pub ends_with: CancellationToken,
}

/// An open event stream: opening frames, replay, then live events.
pub struct Subscription {
    pub user_id: String,
    /// `connected`, `room-state` and, when needed, `resync`.
    pub opening: Vec<Bytes>,
    /// Missed events to send before live ones, fetched a chunk at a time;
    /// `None` when nothing was missed.
    pub replay: Option<ReplayCursor>,
    pub live: broadcast::Receiver<Arc<EventFrame>>,
    /// Cancelled when the session leaves or the conversation stops.
    pub ended: CancellationToken,
    /// Uncounts the stream when dropped.
    pub release: StreamRelease,
}

/// Events a replay fetches from the conversation at once: a resumed stream
/// holds at most this many missed events (not yet written) in memory.
pub const REPLAY_CHUNK: usize = 64;

/// Where a resumed stream's replay stands: the missed events after `after`
/// up to `until` (the last sequence when the stream opened; later events
/// come live) are fetched from the conversation a chunk at a time, so an
/// old cursor never makes the stream hold the whole backlog.
pub struct ReplayCursor {
    conversation: ActorRef<ConversationMsg>,
    after: u64,
    until: u64,
    timeout: Duration,
    /// A `resync` frame was already sent on this stream.
    resynced: bool,
}

/// What the conversation answers a replay request with.
pub struct ReplayPart {
    /// Events in sequence order.
    frames: Vec<Arc<EventFrame>>,
    /// Events before the first frame are no longer held.
    missing: bool,
    /// The last sequence this part covers.
    reached: u64,
}

/// One chunk of a replay, ready for the stream.
pub struct ReplayChunk {
    /// A `resync` frame to send first: events before these are no longer
    /// held (sent once per stream, counting the opening's).
    pub resync: Option<Bytes>,
    /// Events in sequence order (not yet filtered by user).
    pub frames: Vec<Arc<EventFrame>>,
}

impl ReplayCursor {
    /// The next chunk of missed events, or `None` once the replay is done.
    pub async fn next_chunk(&mut self) -> Option<Result<ReplayChunk, ChatError>> {
        if self.after >= self.until {
            return None;
        }
        let (after, until) = (self.after, self.until);
        let part = crate::ask::ask(&self.conversation, self.timeout, |reply| {
            ConversationMsg::Replay {
                after,
                until,
                reply,
            }
        })
        .await
        .and_then(|part| part);
        let part = match part {
            Ok(part) => part,
            Err(e) => {
                self.after = self.until;
                return Some(Err(e));
            }
        };
        self.after = part.reached.max(after + 1);
        let resync = (part.missing && !std::mem::replace(&mut self.resynced, true)).then(|| {
            control_frame(
                after,
                "resync",
                &serde_json::json!({ "lastEventId": after.to_string() }),
            )
        });
        Some(Ok(ReplayChunk {
            resync,
            frames: part.frames,
        }))
    }
}

/// Drop guard that tells the conversation a stream closed.
pub struct StreamRelease {
    conversation: ActorRef<ConversationMsg>,
    stream_id: u64,
}

impl Drop for StreamRelease {
    fn drop(&mut self) {
        let _ = self
            .conversation
            .cast(ConversationMsg::StreamClosed(self.stream_id));
    }
}

/// Messages of the conversation actor.
pub enum ConversationMsg {
    /// Creates the conversation (409 when it exists).
    Create(Reply<Conversation>),
    /// The conversation's metadata.
    Get(Reply<Conversation>),
    /// Closes the conversation to new joins.
    Close(Reply<Conversation>),
    /// Join with a code; answers the new user's id.
    Join {
        join_code: String,
        display_name: String,
        reply: Reply<String>,
    },
    /// Admit an embedded user (ticket already verified).
    Admit { user: Sender, reply: Reply<()> },
    /// Accepts a message: stored behind, broadcast now.
    Post {
        sender: Sender,
        message: NewMessage,
        reply: Reply<Message>,
    },
    /// Leaves: system message, `peer-leave`, optionally ends the session's streams.
    Leave {
        user: Sender,
        session_id: String,
        end_session: bool,
        reply: Reply<()>,
    },
    /// Relays a signaling event; answers its event id.
    Signal {
        from: String,
        kind: String,
        to: Option<String>,
        data: Value,
        reply: Reply<String>,
    },
    /// Opens an event stream.
    Subscribe(StreamOpen, Reply<Subscription>),
    /// The next chunk of a resumed stream's replay (see [`ReplayCursor`]).
    Replay {
        after: u64,
        until: u64,
        reply: Reply<ReplayPart>,
    },
    /// A stream closed (sent by its [`StreamRelease`]).
    StreamClosed(u64),
    /// A page of history.
    History(PageQuery, Reply<Page>),
    /// Ids of messages a history page read from storage.
    PageRead(Vec<(String, KnownId)>),
    /// The reaction map.
    Reactions(Reply<ReactionMap>),
    /// Adds or removes one reaction.
    React {
        user_id: String,
        message_id: String,
        emoji: String,
        added: bool,
        reply: Reply<()>,
    },
    /// A document write finished.
    DocumentSaved {
        kind: DocumentKind,
        version: u64,
        ok: bool,
    },
    /// Retry a document write.
    SaveDocument(DocumentKind),
    /// Edits (`body: Some`) or soft-deletes (`None`) one's own message.
    Revise {
        user_id: String,
        message_id: String,
        body: Option<String>,
        reply: Reply<Message>,
    },
    /// A read receipt.
    Read {
        user_id: String,
        message_id: String,
        reply: Reply<()>,
    },
    /// Announced presence of users.
    Presence(Reply<HashMap<String, PresenceEntry>>),
    /// Announces a user's presence.
    SetPresence {
        user_id: String,
        status: String,
        reply: Reply<()>,
    },
    /// The `peer-leave` grace period of a user ran out.
    GraceExpired { user_id: String, generation: u64 },
    /// Timer: expire buffers and holds, unload when idle.
    Housekeep,
    /// Tries loading from storage again after a failed load.
    Reload,
    /// Makes the actor fail, to exercise supervision.
    #[cfg(test)]
    Crash,
    /// Stores an uploaded file and its metadata.
    PutAttachment {
        meta: AttachmentMeta,
        data: Bytes,
        reply: Reply<AttachmentMeta>,
    },
    /// An upload was not stored (or its caller gave up): its bytes no
    /// longer count toward the quota.
    UploadFailed(u64),
    /// An attachment's metadata.
    AttachmentInfo(String, Reply<AttachmentMeta>),
    /// An attachment's metadata and bytes.
    AttachmentData(String, Reply<(AttachmentMeta, Bytes)>),
}

/// A user's announced presence.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceEntry {
    pub status: String,
    pub last_seen: i64,
}

/// Messages with reactions per conversation at most (a map loaded from
/// storage may name any id, so the map keeps its own bound).
const MAX_REACTED_MESSAGES: usize = 100_000;

/// Ids of messages older than the tail remembered per conversation (the
/// latest trimmed from it or read by a page), so they can be reacted to and
/// their ids are not reused.
const MAX_OLDER_IDS: usize = 10_000;

/// How long the service's own messages with an id (signed system messages)
/// are remembered at least: a signed request is accepted within ±60 s of
/// its timestamp, so a replay can come up to 120 s after the first.
const SIGNED_REPLAY_WINDOW_MS: i64 = 120_000;

/// How long a failed document write waits before it is tried again.
const DOCUMENT_RETRY: Duration = Duration::from_secs(1);

/// Presence entries kept per conversation at most.
const MAX_PRESENCE: usize = 1_000;

/// Behaviour of the conversation actor.
pub struct ConversationActor;

/// Arguments of the conversation actor.
pub struct ConversationArgs {
    pub id: ConversationId,
    pub store: SharedStore,
    pub settings: Arc<Settings>,
    /// Kept by the supervisor across restarts of this conversation.
    pub write_behind: Arc<WriteBehind>,
}

/// State of the conversation actor.
pub struct ConversationState {
    args: ConversationArgs,
    meta: Option<Conversation>,
    load_error: Option<String>,
    members: Members,
    tail: Tail,
    /// Client-chosen ids within their idempotency window.
    idempotency: RecentIds,
    /// Ids of messages older than the tail: trimmed from it or read by a page.
    older_ids: RecentIds,
    buffer: ReplayBuffer,
    /// Behind the [`Fanout`] seam so a cross-instance backplane can replace it.
    fanout: Box<dyn Fanout>,
    reactions: ReactionMap,
    reactions_doc: Document,
    revisions: Arc<Revisions>,
    revisions_doc: Document,
    presence: HashMap<String, PresenceEntry>,
    /// Last sequence handed out; ids never go backwards.
    last_seq: u64,
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
        _myself: ActorRef<ConversationMsg>,
        args: ConversationArgs,
    ) -> Result<ConversationState, ActorProcessingErr> {
        let settings = args.settings.clone();
        Ok(ConversationState {
            args,
            meta: None,
            load_error: None,
            members: Members::default(),
            tail: Tail::new(settings.history_tail, Vec::new(), true),
            idempotency: RecentIds::new(settings.idempotency_max),
            older_ids: RecentIds::new(MAX_OLDER_IDS),
            buffer: ReplayBuffer::new(settings.signaling_buffer_len, settings.signaling_buffer_ttl),
            fanout: Box::new(LocalFanout::new(settings.subscriber_queue)),
            reactions: ReactionMap::new(),
            reactions_doc: Document::default(),
            revisions: Arc::default(),
            revisions_doc: Document::default(),
            presence: HashMap::new(),
            last_seq: 0,
            floor_seq: 0,
            last_activity_ms: now_ms(),
            load_failures: 0,
            upload_bytes: 0,
            meta_undo: None,
        })
    }

    /// Loads the conversation from storage; messages wait in the mailbox meanwhile.
    async fn started(
        &self,
        myself: ActorRef<ConversationMsg>,
        state: &mut ConversationState,
    ) -> Result<(), ActorProcessingErr> {
        state.try_load(&myself).await;
        Ok(())
    }

    async fn stopped(
        &self,
        _myself: ActorRef<ConversationMsg>,
        state: &mut ConversationState,
    ) -> Result<(), ActorProcessingErr> {
        state.members.cancel_all();
        if let Some(flusher) = state.args.write_behind.flusher() {
            let _ = flusher
                .call(FlusherMsg::Drain, Some(Duration::from_secs(60)))
                .await;
        }
        for kind in [DocumentKind::Reactions, DocumentKind::Revisions] {
            state.document(kind).settle().await;
            if state.document(kind).dirty() {
                let (key, body) = state.document_body(kind);
                match state.args.store.put(&key, body, "application/json").await {
                    Ok(()) => state.document(kind).saved_now(),
                    Err(e) => {
                        tracing::error!(conversation = %state.args.id, %key, error = %e, "document not saved at stop")
                    }
                }
            }
        }
        state.note_documents();
        Ok(())
    }

    async fn handled(
        &self,
        myself: ActorRef<ConversationMsg>,
        message: ConversationMsg,
        state: &mut ConversationState,
    ) -> Result<(), ActorProcessingErr> {
        let now = now_ms();
        if !matches!(
            message,
            ConversationMsg::Housekeep | ConversationMsg::DocumentSaved { .. }
        ) {
            state.last_activity_ms = now;
        }
        if message.stores_message()
            && let Err(e) = state.args.write_behind.started().await
        {
            reply_unavailable(message, &e.to_string());
            return Ok(());
        }
        if let Some(error) = &state.load_error {
            match message {
                ConversationMsg::Reload => state.try_load(&myself).await,
                ConversationMsg::Housekeep if now - state.last_activity_ms > 60_000 => {
                    myself.stop(Some("storage unavailable".into()))
                }
                message => reply_unavailable(message, error),
            }
            return Ok(());
        }
        match message {
            ConversationMsg::Create(reply) => {
                let result = state.create().await;
                let created = result.is_ok();
                if reply.send(result).is_err() && created {
                    // The caller gave up (timed out): it was told the create
                    // failed, so the conversation must not exist.
                    state.undo_create();
                }
            }
            ConversationMsg::Get(reply) => {
                let _ = reply.send(state.meta().cloned());
            }
            ConversationMsg::Close(reply) => {
                let _ = reply.send(state.close().await);
            }
            ConversationMsg::Join {
                join_code,
                display_name,
                reply,
            } => {
                let _ = reply.send(state.join(&join_code, &display_name, now));
            }
            ConversationMsg::Admit { user, reply } => {
                let _ = reply.send(state.admit(&user, now));
            }
            ConversationMsg::Post {
                sender,
                message,
                reply,
            } => state.post_or_repeat(&sender, message, now, reply),
            ConversationMsg::Leave {
                user,
                session_id,
                end_session,
                reply,
            } => {
                let _ = reply.send(state.leave(&user, &session_id, end_session, now));
            }
            ConversationMsg::Signal {
                from,
                kind,
                to,
                data,
                reply,
            } => {
                let _ = reply.send(state.signal(&from, &kind, to.as_deref(), &data, now));
            }
            ConversationMsg::Subscribe(open, reply) => {
                let _ = reply.send(state.subscribe(&myself, open));
            }
            ConversationMsg::Replay {
                after,
                until,
                reply,
            } => {
                let _ = reply.send(Ok(state.replay_chunk(after, until)));
            }
            ConversationMsg::StreamClosed(stream_id) => {
                if let Some((user_id, generation)) = state.members.close_stream(stream_id) {
                    myself.send_after(state.args.settings.leave_grace, move || {
                        ConversationMsg::GraceExpired {
                            user_id,
                            generation,
                        }
                    });
                }
            }
            ConversationMsg::GraceExpired {
                user_id,
                generation,
            } => {
                if state.members.grace_expired(&user_id, generation) {
                    state.publish("peer-leave", &user_id, None, &serde_json::json!({}), now);
                }
            }
            ConversationMsg::History(query, reply) => state.history(&myself, query, reply),
            ConversationMsg::PageRead(ids) => {
                for (message_id, known) in ids {
                    if state.tail.get(&message_id).is_none() {
                        state.older_ids.insert(i64::MAX, &message_id, known);
                    }
                }
            }
            ConversationMsg::Reactions(reply) => {
                let _ = reply.send(state.meta().map(|_| state.reactions.clone()));
            }
            ConversationMsg::React {
                user_id,
                message_id,
                emoji,
                added,
                reply,
            } => {
                let result = state.react(&myself, &user_id, &message_id, &emoji, added, now);
                let _ = reply.send(result);
            }
            ConversationMsg::DocumentSaved { kind, version, ok } => {
                state.document(kind).finished(version, ok);
                state.note_documents();
                if ok {
                    let delay = state.args.settings.flush_interval;
                    state.schedule_save(&myself, kind, delay);
                } else {
                    state.schedule_save(&myself, kind, DOCUMENT_RETRY);
                }
            }
            ConversationMsg::SaveDocument(kind) => {
                state.document(kind).due();
                state.save_document(&myself, kind);
            }
            ConversationMsg::Revise {
                user_id,
                message_id,
                body,
                reply,
            } => {
                let result = state.revise(&myself, &user_id, &message_id, body, now);
                let _ = reply.send(result);
            }
            ConversationMsg::Read {
                user_id,
                message_id,
                reply,
            } => {
                let result = state.read_receipt(&user_id, &message_id, now);
                let _ = reply.send(result);
            }
            ConversationMsg::Presence(reply) => {
                let _ = reply.send(state.meta().map(|_| state.presence.clone()));
            }
            ConversationMsg::SetPresence {
                user_id,
                status,
                reply,
            } => {
                let result = state.set_presence(&user_id, status, now);
                let _ = reply.send(result);
            }
            ConversationMsg::Housekeep => state.housekeep(&myself, now),
            ConversationMsg::Reload => {}
            #[cfg(test)]
            ConversationMsg::Crash => return Err("crash requested by a test".into()),
            ConversationMsg::PutAttachment { meta, data, reply } => {
                state.put_attachment(&myself, meta, data, reply)
            }
            ConversationMsg::UploadFailed(bytes) => {
                state.upload_bytes = state.upload_bytes.saturating_sub(bytes);
            }
            ConversationMsg::AttachmentInfo(id, reply) => {
                state.read_attachment(id, false, move |r| {
                    let _ = reply.send(r.map(|(meta, _)| meta));
                })
            }
            ConversationMsg::AttachmentData(id, reply) => {
                state.read_attachment(id, true, move |r| {
                    let _ = reply.send(r);
                })
            }
        }
        Ok(())
    }
}

impl ConversationMsg {
    /// Whether handling this may store a message (and so needs the flusher).
    fn stores_message(&self) -> bool {
        matches!(
            self,
            ConversationMsg::Post { .. }
                | ConversationMsg::Join { .. }
                | ConversationMsg::Admit { .. }
                | ConversationMsg::Leave { .. }
        )
    }
}

/// Answers any request with the load failure (503) instead of serving a
/// conversation whose state is unknown.
fn reply_unavailable(message: ConversationMsg, error: &str) {
    let e = || ChatError::Storage(error.to_owned());
    match message {
        ConversationMsg::Create(r) | ConversationMsg::Get(r) | ConversationMsg::Close(r) => {
            drop(r.send(Err(e())))
        }
        ConversationMsg::Join { reply, .. } | ConversationMsg::Signal { reply, .. } => {
            drop(reply.send(Err(e())))
        }
        ConversationMsg::Admit { reply, .. }
        | ConversationMsg::Leave { reply, .. }
        | ConversationMsg::React { reply, .. } => drop(reply.send(Err(e()))),
        ConversationMsg::Post { reply, .. } | ConversationMsg::Revise { reply, .. } => {
            drop(reply.send(Err(e())))
        }
        ConversationMsg::Read { reply, .. } | ConversationMsg::SetPresence { reply, .. } => {
            drop(reply.send(Err(e())))
        }
        ConversationMsg::Presence(reply) => drop(reply.send(Err(e()))),
        ConversationMsg::Subscribe(_, reply) => drop(reply.send(Err(e()))),
        ConversationMsg::Replay { reply, .. } => drop(reply.send(Err(e()))),
        ConversationMsg::History(_, reply) => drop(reply.send(Err(e()))),
        ConversationMsg::Reactions(reply) => drop(reply.send(Err(e()))),
        ConversationMsg::PutAttachment { reply, .. }
        | ConversationMsg::AttachmentInfo(_, reply) => drop(reply.send(Err(e()))),
        ConversationMsg::AttachmentData(_, reply) => drop(reply.send(Err(e()))),
        ConversationMsg::StreamClosed(_)
        | ConversationMsg::PageRead(_)
        | ConversationMsg::DocumentSaved { .. }
        | ConversationMsg::SaveDocument(_)
        | ConversationMsg::GraceExpired { .. }
        | ConversationMsg::Housekeep
        | ConversationMsg::UploadFailed(_)
        | ConversationMsg::Reload => {}
        #[cfg(test)]
        ConversationMsg::Crash => {}
    }
}

const NOT_FOUND: ChatError = ChatError::NotFound("Conversation not found");

/// The answer to a join with a wrong code or an unknown conversation: the
/// same for both, so ids cannot be probed.
pub fn invalid_join() -> ChatError {
    ChatError::Forbidden("Invalid conversation or join code".into())
}

impl ConversationState {
    /// Loads from storage; on failure answers 503 meanwhile and retries
    /// with backoff (250 ms doubling to 5 s).
    async fn try_load(&mut self, myself: &ActorRef<ConversationMsg>) {
        match self.load().await {
            Ok(()) => {
                self.load_error = None;
                self.load_failures = 0;
                let delay = self.args.settings.flush_interval;
                self.schedule_save(myself, DocumentKind::Revisions, delay);
            }
            Err(e) => {
                tracing::warn!(conversation = %self.args.id, error = %e, "loading conversation failed; retrying");
                self.load_error = Some(e.to_string());
                let delay = Duration::from_millis(250 << self.load_failures.min(5))
                    .min(Duration::from_secs(5));
                self.load_failures += 1;
                myself.send_after(delay, || ConversationMsg::Reload);
            }
        }
    }

    async fn load(&mut self) -> Result<(), ChatError> {
        let store = self.args.store.as_ref();
        let id = &self.args.id;
        if let Some(body) = store.get(&keys::meta(id)).await? {
            let meta: Conversation = serde_json::from_slice(&body)
                .map_err(|e| ChatError::Storage(format!("meta.json unreadable: {e}")))?;
            self.meta = Some(meta);
        }
        if let Some(body) = store.get(&keys::reactions(id)).await? {
            self.reactions = serde_json::from_slice(&body).unwrap_or_default();
        }
        let mut revisions: revisions::Revisions = match store.get(&keys::revisions(id)).await? {
            Some(body) => serde_json::from_slice(&body).unwrap_or_default(),
            None => Default::default(),
        };
        let quota = self.args.settings.max_upload_bytes_per_conversation;
        if quota > 0 && self.meta.is_some() {
            self.upload_bytes = store.usage(&keys::attachments_prefix(id)).await?;
        }
        let (mut loaded, more) =
            crate::history::read_tail(store, id, self.args.settings.history_tail).await?;
        let unstored = match self.args.write_behind.flusher() {
            Some(flusher) => flusher
                .call(FlusherMsg::Unstored, Some(self.args.settings.call_timeout))
                .await
                .ok()
                .and_then(|r| match r {
                    ractor::rpc::CallResult::Success(v) => Some(v),
                    _ => None,
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let stored_max = loaded.last().map_or(0, |m| m.seq);
        loaded.extend(unstored.into_iter().filter(|m| m.seq > stored_max));
        if revisions::attribute_legacy(&mut revisions, &loaded) {
            self.revisions_doc.touch();
        }
        for m in &mut loaded {
            revisions::overlay(&revisions, m);
        }
        self.revisions = Arc::new(revisions);
        self.last_seq = loaded.last().map_or(0, |m| m.seq);
        self.floor_seq = self.last_seq;
        self.tail = Tail::new(self.args.settings.history_tail, loaded, !more);
        Ok(())
    }

    fn meta(&self) -> Result<&Conversation, ChatError> {
        self.meta.as_ref().ok_or(NOT_FOUND)
    }

    /// A fresh sequence: above every earlier one and at least the current
    /// time in microseconds, so ids keep rising across restarts.
    fn next_seq(&mut self, now: i64) -> u64 {
        self.last_seq = (self.last_seq + 1).max(u64::try_from(now).unwrap_or(0) * 1000);
        self.last_seq
    }

    async fn write_meta(&self, meta: &Conversation) -> Result<(), ChatError> {
        let body =
            serde_json::to_vec_pretty(meta).map_err(|e| ChatError::Storage(e.to_string()))?;
        self.args
            .store
            .put(
                &keys::meta(&self.args.id),
                Bytes::from(body),
                "application/json",
            )
            .await?;
        Ok(())
    }

    async fn create(&mut self) -> Result<Conversation, ChatError> {
        if self.meta.is_some() {
            return Err(ChatError::Conflict("Conversation already exists".into()));
        }
        if self
            .meta_undo
            .as_ref()
            .is_some_and(|undo| !undo.is_finished())
        {
            return Err(ChatError::Storage(
                "an earlier failed create of this id is still being undone".into(),
            ));
        }
        let meta = Conversation {
            conversation_id: self.args.id.clone(),
            join_code: generate_join_code(),
            status: ConversationStatus::Active,
            created_at: iso_from_ms(now_ms()),
            closed_at: None,
        };
        if let Err(e) = self.write_meta(&meta).await {
            self.undo_create();
            return Err(e);
        }
        self.meta = Some(meta.clone());
        Ok(meta)
    }

    /// Forgets a create answered with an error, in memory and in storage
    /// (a write that timed out may still land).
    fn undo_create(&mut self) {
        self.meta = None;
        self.meta_undo = Some(crate::store::undo_writes(
            self.args.store.clone(),
            vec![keys::meta(&self.args.id)],
        ));
    }

    async fn close(&mut self) -> Result<Conversation, ChatError> {
        let mut meta = self.meta()?.clone();
        if meta.status == ConversationStatus::Active {
            meta.status = ConversationStatus::Closed;
            meta.closed_at = Some(iso_from_ms(now_ms()));
            self.write_meta(&meta).await?;
            self.meta = Some(meta.clone());
        }
        Ok(meta)
    }

    /// Refuses a join at the participant limit. Holds of joins without a
    /// stream count for `join_hold`, but a full room first drops those
    /// older than `join_hold_when_full`: a real user opens a stream within
    /// seconds of joining, so only joins that never do lose their hold.
    fn check_room(&mut self, now: i64) -> Result<(), ChatError> {
        let settings = &self.args.settings;
        let max = settings.max_participants;
        let hold = settings.join_hold.as_millis() as i64;
        if self.members.counted(now, hold) < max {
            return Ok(());
        }
        let hold_when_full = settings.join_hold_when_full.as_millis() as i64;
        self.members.expire_holds(now, hold.min(hold_when_full));
        if self.members.counted(now, hold) >= max {
            return Err(ChatError::Forbidden("Conversation is full".into()));
        }
        Ok(())
    }

    fn join(&mut self, join_code: &str, display_name: &str, now: i64) -> Result<String, ChatError> {
        let meta = self.meta.as_ref().ok_or_else(invalid_join)?;
        if meta.join_code != join_code {
            return Err(invalid_join());
        }
        if meta.status == ConversationStatus::Closed {
            return Err(ChatError::Forbidden("Conversation is closed".into()));
        }
        self.check_room(now)?;
        if self.members.name_taken(display_name) {
            return Err(ChatError::Conflict(
                "Display name is already taken in this conversation".into(),
            ));
        }
        self.check_capacity()?;
        let user_id = uuid::Uuid::new_v4().to_string();
        self.members.joined(&user_id, display_name, now);
        self.post_system(format!("{display_name} joined the conversation"), now)?;
        Ok(user_id)
    }

    fn admit(&mut self, user: &Sender, now: i64) -> Result<(), ChatError> {
        let meta = self.meta()?;
        if meta.status == ConversationStatus::Closed {
            return Err(ChatError::Forbidden("Conversation is closed".into()));
        }
        self.check_room(now)?;
        self.members.joined(&user.user_id, &user.display_name, now);
        Ok(())
    }

    fn check_capacity(&self) -> Result<(), ChatError> {
        if self
            .args
            .write_behind
            .progress
            .pending
            .load(Ordering::Acquire)
            >= self.args.settings.max_pending
        {
            return Err(ChatError::Overloaded {
                message: "Too many messages are waiting to be stored; retry shortly",
                retry_after: Duration::from_secs(2),
            });
        }
        Ok(())
    }

    fn post_system(&mut self, body: String, now: i64) -> Result<Message, ChatError> {
        let message = NewMessage {
            message_id: None,
            kind: MessageType::System,
            body,
            client_timestamp: iso_from_ms(now),
            attachment_id: None,
            filename: None,
            mimetype: None,
            url: None,
        };
        self.post(&Sender::system(), message, now)
    }

    /// Drops stored messages beyond the tail's size, remembering their ids.
    fn trim_tail(&mut self) {
        let stored_seq = self
            .args
            .write_behind
            .progress
            .stored_seq
            .load(Ordering::Acquire);
        for m in self.tail.trim(stored_seq) {
            self.older_ids.insert(
                i64::MAX,
                &m.message.message_id,
                KnownId::of(m.seq, &m.message),
            );
        }
    }

    /// Where a message id was used, as far as the conversation remembers.
    fn known_id(&self, message_id: &str) -> Option<KnownId> {
        match self.tail.get(message_id) {
            Some(m) => Some(KnownId::of(m.seq, &m.message)),
            None => self
                .idempotency
                .get(message_id)
                .or_else(|| self.older_ids.get(message_id))
                .cloned(),
        }
    }

    /// Accepts a new message; a known `messageId` answers the stored
    /// message to its sender (nothing stored or broadcast) and 409 to anyone else.
    fn post_or_repeat(
        &mut self,
        sender: &Sender,
        new: NewMessage,
        now: i64,
        reply: Reply<Message>,
    ) {
        if let Err(e) = self.meta() {
            let _ = reply.send(Err(e));
            return;
        }
        let known = new.message_id.as_deref().and_then(|id| self.known_id(id));
        match known {
            None => {
                let _ = reply.send(self.post(sender, new, now));
            }
            Some(known) if !known.posted_by(sender) => {
                let _ = reply.send(Err(ChatError::Conflict(
                    "Message ID already used by another sender".into(),
                )));
            }
            Some(known) => self.answer_stored(known.seq, reply),
        }
    }

    /// Answers the stored message with this sequence, from the tail or, in
    /// a task, from storage.
    fn answer_stored(&self, seq: u64, reply: Reply<Message>) {
        if let Some(m) = self.tail.at(seq) {
            let _ = reply.send(Ok(m.message.clone()));
            return;
        }
        let store = self.args.store.clone();
        let id = self.args.id.clone();
        let revisions = self.revisions.clone();
        tokio::spawn(async move {
            let side = Side::After(seq.saturating_sub(1));
            let result = match crate::history::read_page(store.as_ref(), &id, side, 1).await {
                Ok((page, _)) => match page.into_iter().find(|m| m.seq == seq) {
                    Some(mut m) => {
                        revisions::overlay(&revisions, &mut m);
                        Ok(m.message)
                    }
                    None => Err(ChatError::Conflict(
                        "Message ID already used by another message".into(),
                    )),
                },
                Err(e) => Err(e.into()),
            };
            let _ = reply.send(result);
        });
    }

    fn post(&mut self, sender: &Sender, new: NewMessage, now: i64) -> Result<Message, ChatError> {
        self.meta()?;
        self.check_capacity()?;
        // Only a chosen id can come back in a retry; the service's signed
        // messages must be remembered for their whole replay window.
        let remember_until = new.message_id.is_some().then(|| {
            let ttl = self.args.settings.idempotency_ttl.as_millis() as i64;
            match sender.role {
                Role::System => now + ttl.max(SIGNED_REPLAY_WINDOW_MS),
                _ => now + ttl,
            }
        });
        let seq = self.next_seq(now);
        let message = Message {
            message_id: new
                .message_id
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            conversation_id: self.args.id.to_string(),
            sender_user_id: sender.user_id.clone(),
            sender_display_name: sender.display_name.clone(),
            sender_avatar_url: sender.avatar_url.clone(),
            sender_role: sender.role,
            kind: new.kind,
            body: new.body,
            client_timestamp: new.client_timestamp,
            server_received_at: iso_from_ms(now),
            attachment_id: new.attachment_id,
            filename: new.filename,
            mimetype: new.mimetype,
            url: new.url,
            edited_at: None,
            deleted: None,
            deleted_at: None,
        };
        let sequenced = SequencedMessage {
            seq,
            message: message.clone(),
        };
        // Requests that store a message start the flusher before they
        // are handled (see `ConversationMsg::stores_message`).
        let progress = &self.args.write_behind.progress;
        progress.pending.fetch_add(1, Ordering::AcqRel);
        let appended = self.args.write_behind.flusher().is_some_and(|f| {
            f.cast(FlusherMsg::Append(Box::new(sequenced.clone())))
                .is_ok()
        });
        if !appended {
            progress.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(ChatError::Unavailable(
                "write-behind flusher is gone".into(),
            ));
        }
        if let Some(until) = remember_until {
            self.idempotency
                .insert(until, &message.message_id, KnownId::of(seq, &message));
        }
        let frame = Arc::new(message_frame(&sequenced));
        self.tail.push(sequenced);
        self.trim_tail();
        self.buffer.push(frame.clone());
        self.fanout.publish(frame);
        Ok(message)
    }

    fn publish(
        &mut self,
        kind: &str,
        from: &str,
        to: Option<&str>,
        data: &impl serde::Serialize,
        now: i64,
    ) -> String {
        let event_id = uuid::Uuid::new_v4().to_string();
        let seq = self.next_seq(now);
        let frame = Arc::new(EventFrame::new(seq, &event_id, kind, from, to, data, now));
        self.buffer.push(frame.clone());
        self.fanout.publish(frame);
        event_id
    }

    fn leave(
        &mut self,
        user: &Sender,
        session_id: &str,
        end_session: bool,
        now: i64,
    ) -> Result<(), ChatError> {
        self.meta()?;
        self.post_system(format!("{} left the conversation", user.display_name), now)?;
        self.publish(
            "peer-leave",
            &user.user_id,
            None,
            &serde_json::json!({}),
            now,
        );
        self.members
            .leave(&user.user_id, end_session.then_some(session_id));
        Ok(())
    }

    fn signal(
        &mut self,
        from: &str,
        kind: &str,
        to: Option<&str>,
        data: &Value,
        now: i64,
    ) -> Result<String, ChatError> {
        self.meta()?;
        Ok(self.publish(kind, from, to, data, now))
    }

    fn subscribe(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        open: StreamOpen,
    ) -> Result<Subscription, ChatError> {
        self.meta()?;
        let settings = &self.args.settings;
        if self.members.stream_count()
            >= settings.max_participants * settings.max_streams_per_session
        {
            return Err(ChatError::TooMany(
                "Too many open streams in this conversation".into(),
            ));
        }
        if self.members.streams_of_session(&open.session_id)
            >= self.args.settings.max_streams_per_session
        {
            return Err(ChatError::TooMany(
                "Too many open streams for this session".into(),
            ));
        }
        let (stream_id, ended) = self.members.open_stream(
            &open.user_id,
            &open.display_name,
            &open.session_id,
            &open.ends_with,
        );
        let release = StreamRelease {
            conversation: myself.clone(),
            stream_id,
        };
        let live = self.fanout.subscribe();
        let resume = open
            .resume_from
            .as_deref()
            .map(|text| text.trim().parse::<u64>().ok());
        let (position, replay, resync) = match resume {
            None => (self.last_seq, None, false),
            Some(Some(from)) if from <= self.last_seq => {
                let complete = self.replay_complete(from);
                let cursor = (from < self.last_seq).then(|| ReplayCursor {
                    conversation: myself.clone(),
                    after: from,
                    until: self.last_seq,
                    timeout: self.args.settings.call_timeout,
                    resynced: !complete,
                });
                (from, cursor, !complete)
            }
            Some(_) => (self.last_seq, None, true),
        };
        let mut opening = vec![
            control_frame(position, "system", &"connected"),
            control_frame(
                position,
                "room-state",
                &serde_json::json!({ "participants": self.members.participants(&open.user_id) }),
            ),
        ];
        if resync {
            opening.push(control_frame(
                position,
                "resync",
                &serde_json::json!({ "lastEventId": open.resume_from }),
            ));
        }
        Ok(Subscription {
            user_id: open.user_id,
            opening,
            replay,
            live,
            ended,
            release,
        })
    }

    /// Whether every event after `from` is still held: nothing was lost
    /// since `from` and the tail or the buffer reaches back to it.
    fn replay_complete(&self, from: u64) -> bool {
        let buffered_from = self.buffer.oldest_seq().unwrap_or(self.last_seq + 1);
        from >= self.floor_seq && (from + 1 >= buffered_from || self.tail.after(from).is_some())
    }

    /// Up to [`REPLAY_CHUNK`] events after `after` and at most `until`:
    /// messages from the tail for what the buffer no longer holds, then
    /// buffered events.
    fn replay_chunk(&self, after: u64, until: u64) -> ReplayPart {
        let buffered_from = self.buffer.oldest_seq().unwrap_or(self.last_seq + 1);
        let mut frames = Vec::new();
        let mut missing = false;
        if after + 1 < buffered_from {
            match self.tail.after(after) {
                Some(messages) => frames.extend(
                    messages
                        .take_while(|m| m.seq < buffered_from && m.seq <= until)
                        .take(REPLAY_CHUNK)
                        .map(|m| Arc::new(message_frame(m))),
                ),
                None => missing = true,
            }
        }
        let room = REPLAY_CHUNK - frames.len();
        frames.extend(
            self.buffer
                .after(after)
                .take_while(|f| f.seq <= until)
                .take(room)
                .cloned(),
        );
        let reached = match frames.last() {
            Some(last) if frames.len() == REPLAY_CHUNK => last.seq,
            _ => until,
        };
        ReplayPart {
            frames,
            missing,
            reached,
        }
    }

    fn history(&self, myself: &ActorRef<ConversationMsg>, query: PageQuery, reply: Reply<Page>) {
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
                        let _ = me.cast(ConversationMsg::PageRead(ids));
                    }
                    let _ = reply.send(result.map(to_page).map_err(ChatError::from));
                });
            }
        }
    }

    fn react(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        user_id: &str,
        message_id: &str,
        emoji: &str,
        added: bool,
        now: i64,
    ) -> Result<(), ChatError> {
        self.meta()?;
        let reacted = self.reactions.contains_key(message_id);
        if !reacted && self.known_id(message_id).is_none() {
            return Err(ChatError::NotFound("Message not found"));
        }
        if added && !reacted && self.reactions.len() >= MAX_REACTED_MESSAGES {
            return Err(ChatError::TooMany(
                "Too many reacted messages in this conversation".into(),
            ));
        }
        if reactions::apply(&mut self.reactions, message_id, user_id, emoji, added) {
            self.reactions_doc.touch();
            let delay = self.args.settings.flush_interval;
            self.schedule_save(myself, DocumentKind::Reactions, delay);
            let kind = if added {
                "reaction-added"
            } else {
                "reaction-removed"
            };
            let data =
                serde_json::json!({ "messageId": message_id, "emoji": emoji, "userId": user_id });
            self.publish(kind, user_id, None, &data, now);
        }
        Ok(())
    }

    fn document(&mut self, kind: DocumentKind) -> &mut Document {
        match kind {
            DocumentKind::Reactions => &mut self.reactions_doc,
            DocumentKind::Revisions => &mut self.revisions_doc,
        }
    }

    fn document_body(&self, kind: DocumentKind) -> (String, Bytes) {
        let (key, body) = match kind {
            DocumentKind::Reactions => (
                keys::reactions(&self.args.id),
                serde_json::to_vec(&self.reactions),
            ),
            DocumentKind::Revisions => (
                keys::revisions(&self.args.id),
                serde_json::to_vec(&*self.revisions),
            ),
        };
        (key, Bytes::from(body.unwrap_or_else(|_| b"{}".to_vec())))
    }

    /// Writes a changed document after `delay`, unless a write is already
    /// scheduled: changes until then join it.
    fn schedule_save(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        kind: DocumentKind,
        delay: Duration,
    ) {
        self.note_documents();
        if self.document(kind).dirty() && self.document(kind).schedule() {
            myself.send_after(delay, move || ConversationMsg::SaveDocument(kind));
        }
    }

    /// Tells the shutdown report how many documents are behind in storage.
    fn note_documents(&self) {
        let unsaved =
            usize::from(self.reactions_doc.dirty()) + usize::from(self.revisions_doc.dirty());
        self.args
            .write_behind
            .progress
            .unsaved_documents
            .store(unsaved, Ordering::Release);
    }

    /// Writes a document in a task, one write at a time, latest state wins.
    fn save_document(&mut self, myself: &ActorRef<ConversationMsg>, kind: DocumentKind) {
        self.note_documents();
        let Some(version) = self.document(kind).begin() else {
            return;
        };
        let (key, body) = self.document_body(kind);
        let store = self.args.store.clone();
        let me = myself.clone();
        let task = tokio::spawn(async move {
            let ok = match store.put(&key, body, "application/json").await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(%key, error = %e, "saving document failed; retrying");
                    false
                }
            };
            let _ = me.cast(ConversationMsg::DocumentSaved { kind, version, ok });
            ok
        });
        self.document(kind).writing(version, task);
    }

    /// Edits or soft-deletes a message: its author only, within five minutes.
    fn revise(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        user_id: &str,
        message_id: &str,
        body: Option<String>,
        now: i64,
    ) -> Result<Message, ChatError> {
        self.meta()?;
        let deleting = body.is_none();
        let complete = self.tail.is_complete();
        let Some(entry) = self.tail.find_mut(message_id) else {
            return Err(if complete {
                ChatError::NotFound("Message not found")
            } else {
                ChatError::Forbidden("Edit time limit exceeded".into())
            });
        };
        let seq = entry.seq;
        let message = &mut entry.message;
        let verb = if deleting { "delete" } else { "edit" };
        if message.sender_role == Role::System {
            return Err(ChatError::Forbidden(format!(
                "Cannot {verb} system messages"
            )));
        }
        if message.sender_user_id != user_id {
            return Err(ChatError::Forbidden(format!(
                "Cannot {verb} others' messages"
            )));
        }
        if message.deleted == Some(true) {
            return Err(ChatError::NotFound("Message not found"));
        }
        let sent = crate::time::parse_iso_ms(&message.server_received_at).unwrap_or(0);
        if now - sent > EDIT_WINDOW_MS {
            return Err(ChatError::Forbidden("Edit time limit exceeded".into()));
        }
        let revision = match body {
            Some(body) => Revision {
                body,
                edited_at: Some(iso_from_ms(now)),
                deleted_at: None,
                seq: Some(seq),
            },
            None => Revision {
                body: String::new(),
                edited_at: message.edited_at.clone(),
                deleted_at: Some(iso_from_ms(now)),
                seq: Some(seq),
            },
        };
        revisions::apply(&revision, message);
        let updated = message.clone();
        Arc::make_mut(&mut self.revisions).insert(message_id.to_owned(), revision);
        self.revisions_doc.touch();
        let delay = self.args.settings.flush_interval;
        self.schedule_save(myself, DocumentKind::Revisions, delay);
        if deleting {
            let data = serde_json::json!({ "messageId": message_id });
            self.publish("message-deleted", user_id, None, &data, now);
        } else {
            self.publish("message-edited", user_id, None, &updated, now);
        }
        Ok(updated)
    }

    fn read_receipt(&mut self, user_id: &str, message_id: &str, now: i64) -> Result<(), ChatError> {
        self.meta()?;
        let data = serde_json::json!({ "messageId": message_id, "userId": user_id, "readAt": iso_from_ms(now) });
        self.publish("message-read", user_id, None, &data, now);
        Ok(())
    }

    fn set_presence(&mut self, user_id: &str, status: String, now: i64) -> Result<(), ChatError> {
        self.meta()?;
        if self.presence.len() >= MAX_PRESENCE && !self.presence.contains_key(user_id) {
            let oldest = self
                .presence
                .iter()
                .min_by_key(|(_, p)| p.last_seen)
                .map(|(u, _)| u.clone());
            if let Some(oldest) = oldest {
                self.presence.remove(&oldest);
            }
        }
        let data = serde_json::json!({ "userId": user_id, "status": status });
        self.presence.insert(
            user_id.to_owned(),
            PresenceEntry {
                status,
                last_seen: now,
            },
        );
        self.publish("presence-update", user_id, None, &data, now);
        Ok(())
    }

    /// Writes the file, then its metadata, in a task; answers when both are
    /// stored. Within the conversation's upload quota, counting uploads
    /// under way; an upload answered with an error (its caller gone
    /// included) is deleted again, so nothing the client was told failed
    /// stays stored.
    fn put_attachment(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        meta: AttachmentMeta,
        data: Bytes,
        reply: Reply<AttachmentMeta>,
    ) {
        if let Err(e) = self.meta() {
            let _ = reply.send(Err(e));
            return;
        }
        let quota = self.args.settings.max_upload_bytes_per_conversation;
        let size = data.len() as u64;
        if quota > 0 && self.upload_bytes + size > quota {
            let _ = reply.send(Err(ChatError::TooLarge(format!(
                "Upload quota of this conversation exceeded ({} of {quota} bytes used)",
                self.upload_bytes
            ))));
            return;
        }
        self.upload_bytes += size;
        let store = self.args.store.clone();
        let id = self.args.id.clone();
        let me = myself.clone();
        tokio::spawn(async move {
            let written = [
                keys::attachment(&id, &meta.attachment_id),
                keys::attachment_meta(&id, &meta.attachment_id),
            ];
            let result = async {
                store.put(&written[0], data, &meta.mime_type).await?;
                let body = serde_json::to_vec_pretty(&meta)
                    .map_err(|e| ChatError::Storage(e.to_string()))?;
                store
                    .put(&written[1], Bytes::from(body), "application/json")
                    .await?;
                Ok(meta)
            }
            .await;
            let failed = result.is_err();
            if reply.send(result).is_err() || failed {
                crate::store::undo_writes(store, written.to_vec());
                let _ = me.cast(ConversationMsg::UploadFailed(size));
            }
        });
    }

    /// Reads an attachment's metadata (and bytes) in a task.
    fn read_attachment(
        &self,
        attachment_id: String,
        with_data: bool,
        done: impl FnOnce(Result<(AttachmentMeta, Bytes), ChatError>) + Send + 'static,
    ) {
        if let Err(e) = self.meta() {
            done(Err(e));
            return;
        }
        let store = self.args.store.clone();
        let id = self.args.id.clone();
        tokio::spawn(async move {
            let result = async {
                let missing = || ChatError::NotFound("Attachment not found");
                let meta = store
                    .get(&keys::attachment_meta(&id, &attachment_id))
                    .await?
                    .ok_or_else(missing)?;
                let meta: AttachmentMeta = serde_json::from_slice(&meta)
                    .map_err(|e| ChatError::Storage(format!("attachment meta unreadable: {e}")))?;
                let data = if with_data {
                    store
                        .get(&keys::attachment(&id, &attachment_id))
                        .await?
                        .ok_or_else(missing)?
                } else {
                    Bytes::new()
                };
                Ok((meta, data))
            }
            .await;
            done(result);
        });
    }

    fn housekeep(&mut self, myself: &ActorRef<ConversationMsg>, now: i64) {
        let settings = self.args.settings.clone();
        self.buffer.expire(now);
        self.idempotency.expire(now);
        self.members
            .expire_holds(now, settings.join_hold.as_millis() as i64);
        self.trim_tail();
        let idle_for = now - self.last_activity_ms;
        let idle_limit = if self.meta.is_some() {
            settings.idle_timeout
        } else {
            settings.idle_timeout.min(Duration::from_secs(10))
        };
        if self.members.stream_count() == 0 && idle_for >= idle_limit.as_millis() as i64 {
            myself.stop(Some("idle".into()));
        }
    }
}

/// The `new-message` event of a stored message; its JSON `id` is the
/// message id, so a replay rebuilds exactly the event that went out live.
fn message_frame(m: &SequencedMessage) -> EventFrame {
    let at = crate::time::parse_iso_ms(&m.message.server_received_at).unwrap_or_default();
    EventFrame::new(
        m.seq,
        &m.message.message_id,
        "new-message",
        &m.message.sender_user_id,
        None,
        &m.message,
        at,
    )
}
