//! Changing what was said: edits and soft deletes by their author within
//! the edit window, reactions on known messages (each logged, then
//! broadcast once durable), and read marks (logged, kept, broadcast).

use super::documents::DocumentKind;
use super::outbox::Outgoing;
use super::protocol::Unread;
use super::read_marks::{self, ReadMark};
use super::revisions::{EDIT_WINDOW_MS, Revision};
use super::{ConversationMsg, ConversationState, reactions};
use crate::changes::Change;
use crate::domain::{Message, Role};
use crate::error::ChatError;
use crate::events::Origin;
use crate::log_needs::NONE;
use crate::time::iso_from_ms;
use ractor::ActorRef;

/// Messages with reactions per conversation at most (a map loaded from
/// storage may name any id, so the map keeps its own bound).
const MAX_REACTED_MESSAGES: usize = 100_000;

impl ConversationState {
    /// Edits or soft-deletes a message: its author only, within five minutes.
    pub(super) fn revise(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        user_id: &str,
        message_id: &str,
        body: Option<String>,
        now: i64,
    ) -> Result<Message, ChatError> {
        let deleting = body.is_none();
        let revision = self.plan_revision(user_id, message_id, body, now)?;
        let change: Change = Change::Revision {
            message_id: message_id.to_owned(),
            revision,
        };
        let logged = self.log_change(&change)?;
        let Change::Revision { revision, .. } = change else {
            unreachable!("built as a revision above");
        };
        let need = logged.as_ref().map_or(NONE, |l| l.need);
        let updated = self
            .keep_revision(message_id, revision, need)
            .ok_or(ChatError::NotFound("Message not found"))?;
        let delay = self.args.settings.flush_interval;
        self.schedule_save(myself, DocumentKind::Revisions, delay);
        let frame = if deleting {
            let data = serde_json::json!({ "messageId": message_id });
            self.event_frame("message-deleted", user_id, &data, now, Origin::Sender)
        } else {
            self.event_frame("message-edited", user_id, &updated, now, Origin::Sender)
        };
        self.send_out(logged, Outgoing::event(frame));
        Ok(updated)
    }

    /// The revision an edit (`body: Some`) or delete makes, if `user_id`
    /// may make it now.
    pub(super) fn plan_revision(
        &self,
        user_id: &str,
        message_id: &str,
        body: Option<String>,
        now: i64,
    ) -> Result<Revision, ChatError> {
        self.meta()?;
        let deleting = body.is_none();
        let complete = self.tail.is_complete();
        let Some(entry) = self.tail.get(message_id) else {
            return Err(if complete {
                ChatError::NotFound("Message not found")
            } else {
                ChatError::Forbidden("Edit time limit exceeded".into())
            });
        };
        let seq = entry.seq;
        let message = &entry.message;
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
        Ok(match body {
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
        })
    }

    /// Adds or removes a reaction on a known message and broadcasts it.
    pub(super) fn react(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        user_id: &str,
        message_id: &str,
        emoji: &str,
        added: bool,
        now: i64,
    ) -> Result<(), ChatError> {
        if !self.reaction_changes(user_id, message_id, emoji, added)? {
            return Ok(());
        }
        let logged = self.log_change(&Change::<&Message>::Reaction {
            message_id: message_id.to_owned(),
            user_id: user_id.to_owned(),
            emoji: emoji.to_owned(),
            added,
        })?;
        let need = logged.as_ref().map_or(NONE, |l| l.need);
        self.keep_reaction(message_id, user_id, emoji, added, need);
        let delay = self.args.settings.flush_interval;
        self.schedule_save(myself, DocumentKind::Reactions, delay);
        let (kind, data) = reaction_event(user_id, message_id, emoji, added);
        let frame = self.event_frame(kind, user_id, &data, now, Origin::Sender);
        self.send_out(logged, Outgoing::event(frame));
        Ok(())
    }

    /// Whether a reaction change is allowed and changes anything.
    pub(super) fn reaction_changes(
        &self,
        user_id: &str,
        message_id: &str,
        emoji: &str,
        added: bool,
    ) -> Result<bool, ChatError> {
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
        Ok(reactions::changes(
            &self.reactions,
            message_id,
            user_id,
            emoji,
            added,
        ))
    }

    /// The data of a read receipt's event.
    pub(super) fn read_data(user_id: &str, message_id: &str, now: i64) -> serde_json::Value {
        serde_json::json!({ "messageId": message_id, "userId": user_id, "readAt": iso_from_ms(now) })
    }

    /// Moves the user's read mark forward to a known message (logged,
    /// saved behind in `reads.json`) and broadcasts `message-read`, to the
    /// user's own streams too except the one it came from; a message at
    /// or before the mark changes nothing.
    pub(super) fn mark_read(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        user_id: &str,
        message_id: &str,
        origin: Origin,
        now: i64,
    ) -> Result<(), ChatError> {
        let Some(seq) = self.read_advance(user_id, message_id)? else {
            return Ok(());
        };
        let logged = self.log_change(&Change::<&Message>::ReadMark {
            user_id: user_id.to_owned(),
            message_id: message_id.to_owned(),
            seq,
        })?;
        let need = logged.as_ref().map_or(NONE, |l| l.need);
        let mark = ReadMark {
            message_id: message_id.to_owned(),
            seq,
        };
        self.keep_read_mark(user_id, mark, need);
        let delay = self.args.settings.flush_interval;
        self.schedule_save(myself, DocumentKind::ReadMarks, delay);
        let data = Self::read_data(user_id, message_id, now);
        let frame = self.event_frame("message-read", user_id, &data, now, origin);
        self.send_out(logged, Outgoing::event(frame));
        Ok(())
    }

    /// The sequence a read mark on `message_id` moves the user's mark to;
    /// `None` when the mark is there or beyond already.
    pub(super) fn read_advance(
        &self,
        user_id: &str,
        message_id: &str,
    ) -> Result<Option<u64>, ChatError> {
        self.meta()?;
        let seq = self
            .known_id(message_id)
            .ok_or(ChatError::NotFound("Message not found"))?
            .seq;
        Ok(read_marks::advances(&self.read_marks, user_id, seq).then_some(seq))
    }

    /// The user's unread count: messages of others after their mark.
    pub(super) fn unread(&self, user_id: &str) -> Result<Unread, ChatError> {
        self.meta()?;
        let last_read = self.read_marks.get(user_id).cloned();
        let after = last_read.as_ref().map_or(0, |mark| mark.seq);
        let (count, complete) = self.tail.count_after(after, |m| {
            let m = &m.message;
            m.sender_user_id != user_id && m.sender_role != Role::System && m.deleted != Some(true)
        });
        Ok(Unread {
            count,
            capped: !complete,
            last_read,
        })
    }
}

/// The type and data of a reaction's event.
pub(super) fn reaction_event(
    user_id: &str,
    message_id: &str,
    emoji: &str,
    added: bool,
) -> (&'static str, serde_json::Value) {
    let kind = if added {
        "reaction-added"
    } else {
        "reaction-removed"
    };
    let data = serde_json::json!({ "messageId": message_id, "emoji": emoji, "userId": user_id });
    (kind, data)
}
