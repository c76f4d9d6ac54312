//! What a conversation is asked and told: the message enum, with callers'
//! requests (each answered through its reply port) apart from what the
//! conversation sends itself, and the request and answer types.

use super::read_marks::ReadMark;
use super::streams::{ReplayPart, Subscription};
use super::{DocumentKind, KnownId, ReactionMap};
use crate::domain::{
    AttachmentMeta, AttachmentUpload, AttachmentVariant, Conversation, Message, NewMessage, Sender,
};
use crate::error::ChatError;
use crate::events::Origin;
use bytes::Bytes;
use ractor::RpcReplyPort;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use tokio_util::sync::CancellationToken;

/// Where a request's answer goes.
pub(crate) type Reply<T> = RpcReplyPort<Result<T, ChatError>>;

/// Messages of the conversation actor.
#[expect(
    clippy::large_enum_variant,
    reason = "a request moves into the mailbox once; boxing it would cost an allocation per request"
)]
pub(crate) enum ConversationMsg {
    /// A caller's request, answered through its reply port.
    Request(Request),
    /// Sent by the conversation itself, its tasks, timers and streams, and
    /// by the supervisor's housekeeping: nothing waits for an answer.
    Internal(Internal),
}

impl From<Request> for ConversationMsg {
    fn from(request: Request) -> Self {
        ConversationMsg::Request(request)
    }
}

impl From<Internal> for ConversationMsg {
    fn from(internal: Internal) -> Self {
        ConversationMsg::Internal(internal)
    }
}

/// A caller's request.
pub(crate) enum Request {
    /// Creates the conversation; when it exists, answers 409, or (with
    /// `keep_existing`) its metadata as it is, a closed one staying closed.
    Create {
        keep_existing: bool,
        title: Option<String>,
        reply: Reply<Conversation>,
    },
    /// The conversation's metadata.
    Get(Reply<Conversation>),
    /// Closes the conversation to new joins.
    Close(Reply<Conversation>),
    /// Join with a code as a new user.
    Join {
        user_id: String,
        join_code: String,
        display_name: String,
        reply: Reply<()>,
    },
    /// Admit an embedded user (ticket already verified).
    Admit { user: Sender, reply: Reply<()> },
    /// Accepts a message: stored behind, broadcast now.
    Post {
        sender: Sender,
        message: NewMessage,
        /// Which of the sender's streams get no echo.
        origin: Origin,
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
    /// The next chunk of a resumed stream's replay (see
    /// [`super::ReplayCursor`]).
    Replay {
        after: u64,
        until: u64,
        reply: Reply<ReplayPart>,
    },
    /// A page of history.
    History(PageQuery, Reply<Page>),
    /// A page of the messages whose text holds a query.
    Search(SearchQuery, Reply<SearchPage>),
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
    /// Edits (`body: Some`) or soft-deletes (`None`) one's own message.
    Revise {
        user_id: String,
        message_id: String,
        body: Option<String>,
        reply: Reply<Message>,
    },
    /// Moves the user's read mark forward to a message and tells the
    /// streams.
    Read {
        user_id: String,
        message_id: String,
        /// Which of the user's streams are not told.
        origin: Origin,
        reply: Reply<()>,
    },
    /// A user's unread count and read mark.
    Unread {
        user_id: String,
        reply: Reply<Unread>,
    },
    /// Announced presence of users.
    Presence(Reply<HashMap<String, PresenceEntry>>),
    /// Announces a user's presence.
    SetPresence {
        user_id: String,
        status: String,
        reply: Reply<()>,
    },
    /// Stores an uploaded file, its thumbnail and its metadata.
    PutAttachment(Box<AttachmentUpload>, Reply<AttachmentMeta>),
    /// An attachment's metadata and the bytes of one of its forms.
    AttachmentData(String, AttachmentVariant, Reply<(AttachmentMeta, Bytes)>),
    /// An attachment's metadata and a link that downloads one of its
    /// forms without a session.
    AttachmentLink(String, AttachmentVariant, Reply<(AttachmentMeta, String)>),
}

/// What the conversation tells itself.
pub(crate) enum Internal {
    /// A stream closed (sent by its [`super::StreamRelease`]).
    StreamClosed(u64),
    /// The `peer-leave` grace period of a user ran out.
    GraceExpired { user_id: String, generation: u64 },
    /// Ids of messages a history page read from storage.
    PageRead(Vec<(String, KnownId)>),
    /// A document write finished.
    DocumentSaved {
        kind: DocumentKind,
        version: u64,
        ok: bool,
    },
    /// Retry a document write.
    SaveDocument(DocumentKind),
    /// An upload was not stored (or its caller gave up): its bytes no
    /// longer count toward the quota.
    UploadFailed(u64),
    /// Timer: expire buffers and holds, unload when idle.
    Housekeep,
    /// Tries loading from storage again after a failed load.
    Reload,
    /// Records became durable (or failed to): what waits for them in the
    /// outbox may go out (the outcomes wait beside the outbox).
    Logged,
    /// In a cluster: an append to the conversation's stream came back.
    Appended(Box<super::shared::AppendOutcome>),
    /// In a cluster: a notice of entry `seq` (after `prev`) came by pub/sub.
    Notice { seq: u64, prev: u64, json: String },
    /// In a cluster: a read of the stream's missing range came back.
    RangeRead(super::shared::RangeRead),
    /// In a cluster: storage holds the messages through this sequence.
    Stored(u64),
    /// A consult of the stored history's id filters came back.
    Consulted(Box<super::id_filters::Consulted>),
    /// In a cluster: read what may have been missed (the pub/sub
    /// subscription was renewed, or a read failed and its retry is due).
    CatchUp,
    /// Makes the actor fail, to exercise supervision.
    #[cfg(any(test, feature = "fault-injection"))]
    Crash,
}

impl Request {
    /// Whether handling this may store a message (and so needs the flusher).
    pub(super) fn stores_message(&self) -> bool {
        matches!(
            self,
            Request::Post { .. }
                | Request::Join { .. }
                | Request::Admit { .. }
                | Request::Leave { .. }
        )
    }

    /// Answers the request with `error` instead of serving it (a
    /// conversation whose state is unknown, a flusher that cannot start).
    pub(super) fn fail(self, error: ChatError) {
        match self {
            Request::Create { reply, .. } | Request::Get(reply) | Request::Close(reply) => {
                drop(reply.send(Err(error)))
            }
            Request::Signal { reply, .. } => drop(reply.send(Err(error))),
            Request::Join { reply, .. }
            | Request::Admit { reply, .. }
            | Request::Leave { reply, .. }
            | Request::React { reply, .. }
            | Request::Read { reply, .. }
            | Request::SetPresence { reply, .. } => drop(reply.send(Err(error))),
            Request::Post { reply, .. } | Request::Revise { reply, .. } => {
                drop(reply.send(Err(error)))
            }
            Request::Subscribe(_, reply) => drop(reply.send(Err(error))),
            Request::Replay { reply, .. } => drop(reply.send(Err(error))),
            Request::History(_, reply) => drop(reply.send(Err(error))),
            Request::Search(_, reply) => drop(reply.send(Err(error))),
            Request::Reactions(reply) => drop(reply.send(Err(error))),
            Request::Unread { reply, .. } => drop(reply.send(Err(error))),
            Request::Presence(reply) => drop(reply.send(Err(error))),
            Request::PutAttachment(_, reply) => drop(reply.send(Err(error))),
            Request::AttachmentData(_, _, reply) => drop(reply.send(Err(error))),
            Request::AttachmentLink(_, _, reply) => drop(reply.send(Err(error))),
        }
    }
}

/// A page of history.
#[derive(Debug, Clone)]
pub struct Page {
    /// Messages in sequence order.
    pub messages: Vec<Message>,
    /// Exclusive bound for the next page in the same direction.
    pub next_cursor: Option<u64>,
    /// Whether more messages lie beyond this page.
    pub has_more: bool,
    /// Each reader's last-read message: `{userId: messageId}`.
    pub readers: BTreeMap<String, String>,
}

/// A user's unread messages and read mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    /// Messages of others after the mark (system notices and deleted
    /// messages not counted), as far as the hot tail reaches.
    pub count: usize,
    /// More may be unread than counted: the mark is older than the tail.
    pub capped: bool,
    /// The mark: the last message read.
    pub last_read: Option<ReadMark>,
}

/// Which page of history to read.
#[derive(Debug, Clone, Copy)]
pub struct PageQuery {
    /// Messages per page at most.
    pub limit: usize,
    /// Exclusive bound: the sequence the page starts after (or before).
    pub cursor: Option<u64>,
    /// Newer messages than the cursor (else older).
    pub newer: bool,
}

/// Which page of a search to read.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// What the messages' text holds, compared case-insensitively.
    pub text: String,
    /// Exclusive bound: only messages before this sequence (the previous
    /// page's `next_cursor`).
    pub cursor: Option<u64>,
    /// Hits per page at most.
    pub limit: usize,
}

/// A page of search hits, newest first.
#[derive(Debug, Clone)]
pub struct SearchPage {
    /// The hits, newest first; fewer than the limit (none, even) when the
    /// page's scan ran out of its budget first.
    pub hits: Vec<SearchHit>,
    /// Where the next page starts (exclusive); `None` at the start of
    /// history.
    pub next_cursor: Option<u64>,
    /// Whether older messages are left to search.
    pub has_more: bool,
}

/// One message a search found.
#[derive(Debug, Clone)]
pub struct SearchHit {
    /// Its sequence: a history cursor just after it.
    pub seq: u64,
    /// The message, as history shows it (edits applied).
    pub message: Message,
}

/// Who opens a stream.
#[derive(Debug, Clone)]
pub struct StreamOpen {
    /// The user whose stream this is.
    pub user_id: String,
    /// Their display name, for the participant list.
    pub display_name: String,
    /// Their session: leaving ends its streams.
    pub session_id: String,
    /// `Last-Event-ID` or `?cursor=`, unparsed.
    pub resume_from: Option<String>,
    /// Cancelling this ends the stream too (the server's shutdown): the
    /// stream's own token is its child, so a stream waits on one token.
    pub ends_with: CancellationToken,
}

/// A user's announced presence.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresenceEntry {
    /// What the user announced (`online`, `away`, ...).
    pub status: String,
    /// When, in milliseconds since the epoch.
    pub last_seen: i64,
}
