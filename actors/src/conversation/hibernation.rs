//! Hibernation: a settled conversation (nothing unstored, no stream, no
//! write, record or timer in flight) with no request for `hibernate_after`
//! stops its actor, whose mailboxes and task cost about 7 KiB, and hands
//! its state to the supervisor as a [`Hibernated`] room. The next request
//! wakes it into a fresh actor with that state, without reading storage.
//! The id filters are not kept: the next post that needs them loads them.
//! Never in a cluster, where other instances change the room meanwhile.

use super::documents::Document;
use super::idempotency::RecentIds;
use super::members::Members;
use super::outbox::Outbox;
use super::read_marks::ReadMarks;
use super::revisions::Revisions;
use super::tail::Tail;
use super::{ConversationArgs, ConversationMsg, ConversationState, PresenceEntry, ReactionMap};
use crate::domain::Conversation;
use crate::events::{LocalFanout, ReplayBuffer};
use ractor::ActorRef;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The reason a hibernating conversation's actor stops with: the
/// supervisor keeps its state.
pub(crate) const HIBERNATING: &str = "hibernating";

/// A conversation's state while no actor runs it: what it knows, without
/// its address, fan-out or anything in flight.
pub(crate) struct Hibernated {
    meta: Conversation,
    members: Members,
    tail: Tail,
    idempotency: RecentIds,
    older_ids: RecentIds,
    buffer: ReplayBuffer,
    reactions: ReactionMap,
    reactions_doc: Document,
    revisions: Arc<Revisions>,
    revisions_doc: Document,
    read_marks: ReadMarks,
    read_marks_doc: Document,
    presence: HashMap<String, PresenceEntry>,
    last_seq: u64,
    published_seq: u64,
    floor_seq: u64,
    last_activity_ms: i64,
    upload_bytes: u64,
}

impl Hibernated {
    /// When the room last served a request.
    pub(crate) fn last_activity_ms(&self) -> i64 {
        self.last_activity_ms
    }

    /// The state of the actor `myself` that wakes the room.
    pub(super) fn wake(
        self,
        myself: ActorRef<ConversationMsg>,
        args: ConversationArgs,
    ) -> ConversationState {
        let settings = &args.settings;
        let fanout = Box::new(LocalFanout::new(settings.subscriber_queue));
        ConversationState {
            myself,
            meta: Some(self.meta),
            load_error: None,
            members: self.members,
            tail: self.tail,
            idempotency: self.idempotency,
            older_ids: self.older_ids,
            id_filters: Default::default(),
            buffer: self.buffer,
            fanout,
            reactions: self.reactions,
            reactions_doc: self.reactions_doc,
            revisions: self.revisions,
            revisions_doc: self.revisions_doc,
            read_marks: self.read_marks,
            read_marks_doc: self.read_marks_doc,
            presence: self.presence,
            last_seq: self.last_seq,
            published_seq: self.published_seq,
            outbox: Outbox::default(),
            floor_seq: self.floor_seq,
            last_activity_ms: self.last_activity_ms,
            load_failures: 0,
            upload_bytes: self.upload_bytes,
            meta_undo: None,
            shared: None,
            hibernating: false,
            args,
        }
    }
}

impl ConversationState {
    /// Whether the room may hibernate after `idle_for` ms without a
    /// request: loaded, alone, with nothing unstored or in flight and
    /// nothing that could still call back into this actor.
    pub(super) fn may_hibernate(&self, idle_for: i64) -> bool {
        let settings = &self.args.settings;
        let after = settings.hibernate_after;
        let progress = &self.args.write_behind.progress;
        !after.is_zero()
            && after < settings.idle_timeout
            && idle_for >= i64::try_from(after.as_millis()).unwrap_or(i64::MAX)
            && self.meta.is_some()
            && self.load_error.is_none()
            && self.shared.is_none()
            && self.meta_undo.is_none()
            && self.members.stream_count() == 0
            && self.outbox.settled()
            && self.id_filters.settled()
            && self.reactions_doc.settled()
            && self.revisions_doc.settled()
            && self.read_marks_doc.settled()
            && progress.pending.load(Ordering::Acquire) == 0
            && progress.unsaved_documents.load(Ordering::Acquire) == 0
            && progress.log.oldest().is_none()
            && !self.args.write_behind.has_replay()
    }

    /// The room's state for the supervisor to keep, once its actor
    /// stopped hibernating; `None` for a room that cannot resume (it was
    /// not loaded).
    pub(crate) fn hibernate(self) -> Option<Hibernated> {
        Some(Hibernated {
            meta: self.meta?,
            members: self.members,
            tail: self.tail,
            idempotency: self.idempotency,
            older_ids: self.older_ids,
            buffer: self.buffer,
            reactions: self.reactions,
            reactions_doc: self.reactions_doc,
            revisions: self.revisions,
            revisions_doc: self.revisions_doc,
            read_marks: self.read_marks,
            read_marks_doc: self.read_marks_doc,
            presence: self.presence,
            last_seq: self.last_seq,
            published_seq: self.published_seq,
            floor_seq: self.floor_seq,
            last_activity_ms: self.last_activity_ms,
            upload_bytes: self.upload_bytes,
        })
    }
}
