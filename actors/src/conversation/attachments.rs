//! Attachments: storing an upload and its metadata within the
//! conversation's quota, and reading them back, both in tasks.

use super::protocol::{Internal, Reply};
use super::{ConversationMsg, ConversationState};
use crate::domain::AttachmentMeta;
use crate::error::ChatError;
use crate::store::{StoreError, keys};
use bytes::Bytes;
use ractor::ActorRef;

impl ConversationState {
    /// Writes the file, then its metadata, in a task; answers when both are
    /// stored. Within the conversation's upload quota, counting uploads
    /// under way; an upload answered with an error (its caller gone
    /// included) is deleted again, so nothing the client was told failed
    /// stays stored.
    pub(super) fn put_attachment(
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
                let body = serde_json::to_vec_pretty(&meta).map_err(|e| {
                    StoreError::Unusable(format!("attachment meta not serializable: {e}"))
                })?;
                store
                    .put(&written[1], Bytes::from(body), "application/json")
                    .await?;
                Ok(meta)
            }
            .await;
            let failed = result.is_err();
            if reply.send(result).is_err() || failed {
                crate::store::undo_writes(store, written.to_vec());
                let _ = me.cast(Internal::UploadFailed(size).into());
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
                    .map_err(|e| StoreError::unreadable("attachment meta", e))?;
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

    /// An upload was not stored: its bytes leave the quota.
    pub(super) fn upload_failed(&mut self, bytes: u64) {
        self.upload_bytes = self.upload_bytes.saturating_sub(bytes);
    }

    /// Answers an attachment's metadata.
    pub(super) fn attachment_info(&self, attachment_id: String, reply: Reply<AttachmentMeta>) {
        self.read_attachment(attachment_id, false, move |r| {
            let _ = reply.send(r.map(|(meta, _)| meta));
        })
    }

    /// Answers an attachment's metadata and bytes.
    pub(super) fn attachment_data(
        &self,
        attachment_id: String,
        reply: Reply<(AttachmentMeta, Bytes)>,
    ) {
        self.read_attachment(attachment_id, true, move |r| {
            let _ = reply.send(r);
        })
    }
}
