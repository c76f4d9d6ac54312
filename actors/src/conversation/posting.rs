//! Posting: sequencing a new message, logging it, handing it to the
//! write-behind flusher and the streams once it is durable, remembering its
//! id, and answering a sender's retry with the stored message (409 to
//! anyone else reusing the id).

use super::id_filters::WaitingPost;
use super::idempotency::KnownId;
use super::outbox::Outgoing;
use super::protocol::Reply;
use super::{ConversationState, revisions};
use crate::changes::Change;
use crate::domain::{
    ConversationStatus, Message, MessageType, NewMessage, Role, Sender, SequencedMessage,
};
use crate::error::ChatError;
use crate::events::{EventFrame, Origin};
use crate::history::Side;
use crate::time::iso_from_ms;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long the service's own messages with an id (signed system messages)
/// are remembered at least: a signed request is accepted within ±60 s of
/// its timestamp, so a replay can come up to 120 s after the first.
const SIGNED_REPLAY_WINDOW_MS: i64 = 120_000;

impl ConversationState {
    pub(super) fn check_capacity(&self) -> Result<(), ChatError> {
        let waiting = self
            .args
            .write_behind
            .progress
            .pending
            .load(Ordering::Acquire)
            + self.outbox.len()
            + self.id_filters.waiting()
            + self.shared().map_or(0, |s| s.in_flight());
        if waiting >= self.args.settings.max_pending {
            return Err(ChatError::Overloaded {
                message: "Too many messages are waiting to be stored; retry shortly",
                retry_after: Duration::from_secs(2),
            });
        }
        Ok(())
    }

    pub(super) fn post_system(&mut self, body: String, now: i64) -> Result<Message, ChatError> {
        self.post(
            &Sender::system(),
            system_notice(body, now),
            Origin::Sender,
            now,
        )
    }

    /// Drops stored messages beyond the tail's size, remembering their ids.
    pub(super) fn trim_tail(&mut self) {
        let stored_seq = self
            .args
            .write_behind
            .progress
            .stored_seq
            .load(Ordering::Acquire);
        let trimmed = self.tail.trim(stored_seq);
        for m in &trimmed {
            self.older_ids.insert(
                i64::MAX,
                &m.message.message_id,
                KnownId::of(m.seq, &m.message),
            );
        }
        if let Some(front) = self.tail.front_seq() {
            self.id_filters.note_trimmed(&trimmed, front);
        }
    }

    /// Where a message id was used, as far as the conversation remembers.
    pub(super) fn known_id(&self, message_id: &str) -> Option<KnownId> {
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
    /// message to its sender (nothing stored or broadcast) and 409 to
    /// anyone else; one no memory knows is asked of the stored history
    /// first (see `consulting`).
    pub(super) fn post_or_repeat(
        &mut self,
        sender: &Sender,
        new: NewMessage,
        origin: Origin,
        now: i64,
        reply: Reply<Message>,
    ) {
        match self.classify_post(sender, &new) {
            Err(e) => {
                let _ = reply.send(Err(e));
            }
            Ok(None) => {
                let post = WaitingPost {
                    sender: sender.clone(),
                    new,
                    origin,
                    reply,
                };
                if let Some(post) = self.consult_filters(post) {
                    let posted = self.post(&post.sender, post.new, post.origin, now);
                    self.answer(post.reply, posted);
                }
            }
            Ok(Some(seq)) => self.answer_stored(seq, reply),
        }
    }

    /// What a post is: new (`None`), the sender's retry of a stored
    /// message (its sequence), or refused: 409 for another sender's
    /// `messageId`, 403 for an integrator's message to a closed room.
    pub(super) fn classify_post(
        &self,
        sender: &Sender,
        new: &NewMessage,
    ) -> Result<Option<u64>, ChatError> {
        let meta = self.meta()?;
        // Integrators' messages need an open conversation; the service's
        // own notices (joins, leaves) do not come this way.
        if sender.role == Role::System && meta.status == ConversationStatus::Closed {
            return Err(ChatError::Forbidden("Conversation is closed".into()));
        }
        match new.message_id.as_deref().and_then(|id| self.known_id(id)) {
            None => Ok(None),
            Some(known) if !known.posted_by(sender) => Err(ChatError::Conflict(
                "Message ID already used by another sender".into(),
            )),
            Some(known) => Ok(Some(known.seq)),
        }
    }

    /// Answers the stored message with this sequence, from the tail (once
    /// what waits for the log went out) or, in a task, from storage.
    pub(super) fn answer_stored(&mut self, seq: u64, reply: Reply<Message>) {
        if let Some(m) = self.tail.at(seq) {
            let message = m.message.clone();
            self.answer(reply, Ok(message));
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

    /// Sequences and logs a new message and remembers it; it is handed to
    /// the flusher and broadcast once durable.
    pub(super) fn post(
        &mut self,
        sender: &Sender,
        new: NewMessage,
        origin: Origin,
        now: i64,
    ) -> Result<Message, ChatError> {
        self.meta()?;
        self.check_capacity()?;
        // Requests that store a message start the flusher before they
        // are handled (see `Request::stores_message`).
        if self.args.write_behind.flusher().is_none() {
            return Err(ChatError::ActorGone("the write-behind flusher"));
        }
        let remember_until = self.remember_until(sender, &new, now);
        let seq = self.next_seq(now);
        let message = self.message_of(sender, new, now);
        let logged = self.log_change(&Change::Message {
            seq,
            message: &message,
            remember_until,
        })?;
        let sequenced = SequencedMessage {
            seq,
            message: message.clone(),
        };
        let frame = Arc::new(message_frame(&sequenced).from_origin(origin));
        self.keep_message(sequenced.clone(), remember_until, now);
        self.send_out(
            logged,
            Outgoing {
                frame: Some(frame),
                store: Some(sequenced),
                reply: None,
            },
        );
        Ok(message)
    }

    /// Until when a new message's id answers a retry: only a chosen id can
    /// come back in one; the service's signed messages must be remembered
    /// for their whole replay window.
    pub(super) fn remember_until(
        &self,
        sender: &Sender,
        new: &NewMessage,
        now: i64,
    ) -> Option<i64> {
        new.message_id.is_some().then(|| {
            let ttl = self.args.settings.idempotency_ttl.as_millis() as i64;
            match sender.role {
                Role::System => now + ttl.max(SIGNED_REPLAY_WINDOW_MS),
                _ => now + ttl,
            }
        })
    }

    /// The message `sender` posts, received at `now`.
    pub(super) fn message_of(&self, sender: &Sender, new: NewMessage, now: i64) -> Message {
        Message {
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
        }
    }
}

/// The service's own notice (a join, a leave) with this body.
pub(super) fn system_notice(body: String, now: i64) -> NewMessage {
    NewMessage {
        message_id: None,
        kind: MessageType::System,
        body,
        client_timestamp: iso_from_ms(now),
        attachment_id: None,
        filename: None,
        mimetype: None,
        url: None,
    }
}

/// The `new-message` event of a stored message; its JSON `id` is the
/// message id, so a replay rebuilds exactly the event that went out live.
pub(super) fn message_frame(m: &SequencedMessage) -> EventFrame {
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
