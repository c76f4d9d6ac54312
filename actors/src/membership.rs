//! Operations that span a conversation and the session and nonce
//! registries, each one call for a handler: joining with a code, entering
//! with a verified embed ticket, and leaving. A session is registered
//! first and forgotten again when the conversation refuses, so no one is
//! left joined without a session.

use crate::domain::{ConversationId, Role, Sender, Session};
use crate::error::ChatError;
use crate::handle::System;
use crate::time::{now_iso, now_ms};

/// A new session of `user` in a conversation.
fn new_session(conversation_id: ConversationId, user: Sender) -> Session {
    Session {
        session_id: uuid::Uuid::new_v4().to_string(),
        user_id: user.user_id,
        display_name: user.display_name,
        avatar_url: user.avatar_url,
        role: user.role,
        conversation_id,
        created_at: now_iso(),
        last_active_at: now_ms(),
    }
}

impl System {
    /// Joins a conversation with its code under a fresh user id and opens
    /// the user's session.
    pub async fn join(
        &self,
        conversation_id: ConversationId,
        join_code: &str,
        display_name: &str,
        avatar_url: Option<String>,
    ) -> Result<Session, ChatError> {
        let user = Sender {
            user_id: uuid::Uuid::new_v4().to_string(),
            display_name: display_name.to_owned(),
            avatar_url,
            role: Role::User,
        };
        let session = new_session(conversation_id.clone(), user);
        self.sessions().create(session.clone()).await?;
        let joined = self
            .conversation(conversation_id)
            .join(&session.user_id, join_code, display_name)
            .await;
        self.keep_if(session, joined).await
    }

    /// Enters a conversation with a verified embed ticket: its nonce is
    /// used up, the conversation created if it does not exist and
    /// `create_missing` (an integrator's `auto_create`), the user admitted
    /// and the session opened.
    pub async fn enter_embedded(
        &self,
        conversation_id: ConversationId,
        user: Sender,
        nonce: &str,
        create_missing: bool,
    ) -> Result<Session, ChatError> {
        if !self.nonces().check_and_store(nonce).await? {
            return Err(ChatError::Forbidden(
                "Nonce already used (replay attack)".into(),
            ));
        }
        if create_missing {
            self.conversation(conversation_id.clone())
                .create_if_absent()
                .await?;
        }
        let session = new_session(conversation_id.clone(), user);
        self.sessions().create(session.clone()).await?;
        let admitted = self
            .existing_conversation(conversation_id)
            .admit(&session.sender())
            .await;
        self.keep_if(session, admitted).await
    }

    /// Leaves the session's conversation; unless `keep_session`, the
    /// session ends too (its streams and the session itself).
    pub async fn leave(&self, session: &Session, keep_session: bool) -> Result<(), ChatError> {
        self.conversation(session.conversation_id.clone())
            .leave(&session.sender(), &session.session_id, !keep_session)
            .await?;
        if !keep_session {
            self.sessions().delete(&session.session_id).await?;
        }
        Ok(())
    }

    /// The session when the conversation took the user, else the
    /// conversation's answer, the session forgotten again.
    async fn keep_if(
        &self,
        session: Session,
        entered: Result<(), ChatError>,
    ) -> Result<Session, ChatError> {
        match entered {
            Ok(()) => Ok(session),
            Err(e) => {
                let _ = self.sessions().delete(&session.session_id).await;
                Err(e)
            }
        }
    }
}
