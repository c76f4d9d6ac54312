//! Who is in a conversation: joining with a code, admitting an embedded
//! user, the participant limit, leaving, and announced presence.

use super::ConversationState;
use super::protocol::PresenceEntry;
use crate::domain::{ConversationStatus, Sender};
use crate::error::ChatError;

/// Presence entries kept per conversation at most.
const MAX_PRESENCE: usize = 1_000;

/// The answer to a join with a wrong code or an unknown conversation: the
/// same for both, so ids cannot be probed.
pub(crate) fn invalid_join() -> ChatError {
    ChatError::Forbidden("Invalid conversation or join code".into())
}

impl ConversationState {
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

    /// Joins a new user with the conversation's code; posts the join notice.
    pub(super) fn join(
        &mut self,
        user_id: &str,
        join_code: &str,
        display_name: &str,
        now: i64,
    ) -> Result<(), ChatError> {
        self.check_join(join_code, display_name, now)?;
        self.post_system(format!("{display_name} joined the conversation"), now)?;
        self.members.joined(user_id, display_name, now);
        Ok(())
    }

    /// Whether a join with this code and name may go ahead now.
    pub(super) fn check_join(
        &mut self,
        join_code: &str,
        display_name: &str,
        now: i64,
    ) -> Result<(), ChatError> {
        let meta = self.meta.as_ref().ok_or_else(invalid_join)?;
        if meta.join_code != join_code {
            return Err(invalid_join());
        }
        if meta.status == ConversationStatus::Closed {
            return Err(ChatError::Forbidden("Conversation is closed".into()));
        }
        // In a cluster the roster in Redis checks both, for every instance.
        if self.shared().is_none() {
            self.check_room(now)?;
            if self.members.name_taken(display_name) {
                return Err(ChatError::Conflict(
                    "Display name is already taken in this conversation".into(),
                ));
            }
        }
        self.check_capacity()
    }

    /// Admits a user whose ticket was verified.
    pub(super) fn admit(&mut self, user: &Sender, now: i64) -> Result<(), ChatError> {
        self.check_admit(now)?;
        self.members.joined(&user.user_id, &user.display_name, now);
        Ok(())
    }

    /// Whether an embedded user may come in now.
    pub(super) fn check_admit(&mut self, now: i64) -> Result<(), ChatError> {
        let meta = self.meta()?;
        if meta.status == ConversationStatus::Closed {
            return Err(ChatError::Forbidden("Conversation is closed".into()));
        }
        match self.shared() {
            Some(_) => Ok(()),
            None => self.check_room(now),
        }
    }

    /// Leaves: the leave notice, `peer-leave`, and optionally the end of
    /// the session's streams.
    pub(super) fn leave(
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

    /// Remembers and broadcasts a user's presence (the oldest entry goes
    /// past the bound).
    pub(super) fn set_presence(
        &mut self,
        user_id: &str,
        status: String,
        now: i64,
    ) -> Result<(), ChatError> {
        self.meta()?;
        let data = serde_json::json!({ "userId": user_id, "status": status });
        self.keep_presence(user_id, status, now);
        self.publish("presence-update", user_id, None, &data, now);
        Ok(())
    }

    /// Remembers a user's presence (the oldest entry goes past the bound).
    pub(super) fn keep_presence(&mut self, user_id: &str, status: String, now: i64) {
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
        self.presence.insert(
            user_id.to_owned(),
            PresenceEntry {
                status,
                last_seen: now,
            },
        );
    }
}
