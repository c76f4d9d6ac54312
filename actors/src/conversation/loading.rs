//! Loading a conversation from storage: metadata, reactions, revisions,
//! the upload quota's usage and the tail of history (with what the
//! flusher still holds from before a restart); a failed load is retried.

use super::documents::DocumentKind;
use super::protocol::Internal;
use super::tail::Tail;
use super::{ConversationMsg, ConversationState, revisions};
use crate::domain::Conversation;
use crate::error::{ChatError, Report};
use crate::flusher::FlusherMsg;
use crate::store::{StoreError, keys};
use ractor::ActorRef;
use std::sync::Arc;
use std::time::Duration;

impl ConversationState {
    /// Loads from storage; on failure answers 503 meanwhile and retries
    /// with backoff (250 ms doubling to 5 s).
    pub(super) async fn try_load(&mut self, myself: &ActorRef<ConversationMsg>) {
        match self.load().await {
            Ok(()) => {
                self.load_error = None;
                self.load_failures = 0;
                self.note_memory();
                let delay = self.args.settings.flush_interval;
                self.schedule_save(myself, DocumentKind::Revisions, delay);
            }
            Err(e) => {
                tracing::warn!(conversation = %self.args.id, error = %Report(&e), "loading conversation failed; retrying");
                self.load_error = Some(e);
                let delay = Duration::from_millis(250 << self.load_failures.min(5))
                    .min(Duration::from_secs(5));
                self.load_failures += 1;
                myself.send_after(delay, || Internal::Reload.into());
            }
        }
    }

    async fn load(&mut self) -> Result<(), ChatError> {
        let store = self.args.store.as_ref();
        let id = &self.args.id;
        if let Some(body) = store.get(&keys::meta(id)).await? {
            let meta: Conversation = serde_json::from_slice(&body)
                .map_err(|e| StoreError::unreadable("meta.json", e))?;
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
}
