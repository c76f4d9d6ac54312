//! The conversation's metadata (`meta.json`): created once with a fresh
//! join code and an optional title (undone when the caller was told it
//! failed), closed once, which every stream hears as `conversation-closed`.

use super::ConversationState;
use crate::domain::{Conversation, ConversationStatus, generate_join_code};
use crate::error::ChatError;
use crate::store::{StoreError, keys};
use crate::time::{iso_from_ms, now_ms};
use bytes::Bytes;

/// The event every stream of a conversation gets when it is closed.
pub const CLOSED_EVENT: &str = "conversation-closed";

impl ConversationState {
    async fn write_meta(&self, meta: &Conversation) -> Result<(), ChatError> {
        let body = serde_json::to_vec_pretty(meta)
            .map_err(|e| StoreError::Unusable(format!("meta.json not serializable: {e}")))?;
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

    pub(super) async fn create(
        &mut self,
        title: Option<String>,
    ) -> Result<Conversation, ChatError> {
        if self.meta.is_some() {
            return Err(ChatError::Conflict("Conversation already exists".into()));
        }
        if self
            .meta_undo
            .as_ref()
            .is_some_and(|undo| !undo.is_finished())
        {
            return Err(ChatError::Overloaded {
                message: "An earlier failed create of this conversation is still being undone; retry shortly",
                retry_after: std::time::Duration::from_secs(5),
            });
        }
        let meta = Conversation {
            conversation_id: self.args.id.clone(),
            join_code: generate_join_code(),
            status: ConversationStatus::Active,
            created_at: iso_from_ms(now_ms()),
            closed_at: None,
            title,
        };
        if let Err(e) = self.write_meta(&meta).await {
            self.undo_create();
            return Err(e);
        }
        self.meta = Some(meta.clone());
        self.share_meta();
        Ok(meta)
    }

    /// Forgets a create answered with an error, in memory and in storage
    /// (a write that timed out may still land).
    pub(super) fn undo_create(&mut self) {
        self.meta = None;
        self.meta_undo = Some(crate::store::undo_writes(
            self.args.store.clone(),
            vec![keys::meta(&self.args.id)],
        ));
    }

    /// Closes an active conversation and tells every stream
    /// (`conversation-closed`, from `system`, its metadata as `data`); a
    /// closed one stays as it is, with no second event.
    pub(super) async fn close(&mut self) -> Result<Conversation, ChatError> {
        let mut meta = self.meta()?.clone();
        if meta.status == ConversationStatus::Active {
            let now = now_ms();
            meta.status = ConversationStatus::Closed;
            meta.closed_at = Some(iso_from_ms(now));
            self.write_meta(&meta).await?;
            self.meta = Some(meta.clone());
            if self.shared().is_some() {
                self.share_closed();
            } else {
                self.publish(CLOSED_EVENT, "system", None, &meta, now);
            }
        }
        Ok(meta)
    }
}
