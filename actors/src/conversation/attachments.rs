//! Attachments: storing an upload and its metadata within the
//! conversation's quota, reading them back and making download links, all
//! in tasks.

use super::protocol::{Internal, Reply};
use super::{ConversationMsg, ConversationState};
use crate::domain::{AttachmentMeta, AttachmentUpload, AttachmentVariant, ConversationId};
use crate::error::ChatError;
use crate::store::SharedStore;
use crate::store::{StoreError, keys};
use bytes::Bytes;
use ractor::ActorRef;
use std::time::Duration;

/// How long a download link works.
const LINK_TTL: Duration = Duration::from_secs(15 * 60);

/// The answer for an attachment that is not stored.
const MISSING: ChatError = ChatError::NotFound("Attachment not found");

/// An attachment whose metadata was read, and where to read more of it.
struct Attachment {
    store: SharedStore,
    conversation: ConversationId,
    attachment_id: String,
    meta: AttachmentMeta,
}

impl ConversationState {
    /// Writes the file, its thumbnail if any, then its metadata, in a
    /// task; answers when all are stored. Within the conversation's upload
    /// quota (the file and its thumbnail), counting uploads under way; an
    /// upload answered with an error (its caller gone included) is deleted
    /// again, so nothing the client was told failed stays stored.
    pub(super) fn put_attachment(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        upload: AttachmentUpload,
        reply: Reply<AttachmentMeta>,
    ) {
        if let Err(e) = self.meta() {
            let _ = reply.send(Err(e));
            return;
        }
        let AttachmentUpload {
            meta,
            data,
            thumbnail,
        } = upload;
        let quota = self.args.settings.max_upload_bytes_per_conversation;
        let size = (data.len() + thumbnail.as_ref().map_or(0, Bytes::len)) as u64;
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
            let attachment_id = &meta.attachment_id;
            let mut objects = vec![(
                keys::attachment(&id, attachment_id),
                data,
                meta.mime_type.clone(),
            )];
            if let Some(thumbnail) = thumbnail {
                let variant = AttachmentVariant::Thumbnail;
                objects.push((
                    keys::attachment_variant(&id, attachment_id, variant),
                    thumbnail,
                    meta.mime_type_of(variant).to_owned(),
                ));
            }
            let meta_key = keys::attachment_meta(&id, attachment_id);
            let mut written: Vec<String> = objects.iter().map(|(key, ..)| key.clone()).collect();
            written.push(meta_key.clone());
            let result = async {
                for (key, body, content_type) in objects {
                    store.put(&key, body, &content_type).await?;
                }
                let body = serde_json::to_vec_pretty(&meta).map_err(|e| {
                    StoreError::Unusable(format!("attachment meta not serializable: {e}"))
                })?;
                store
                    .put(&meta_key, Bytes::from(body), "application/json")
                    .await?;
                Ok(meta)
            }
            .await;
            let failed = result.is_err();
            if reply.send(result).is_err() || failed {
                crate::store::undo_writes(store, written);
                let _ = me.cast(Internal::UploadFailed(size).into());
            }
        });
    }

    /// Reads an attachment's metadata in a task, then what `then` reads
    /// with it, and answers that.
    fn read_attachment<T, Then, Read>(&self, attachment_id: String, reply: Reply<T>, then: Then)
    where
        T: Send + 'static,
        Then: FnOnce(Attachment) -> Read + Send + 'static,
        Read: Future<Output = Result<T, ChatError>> + Send,
    {
        if let Err(e) = self.meta() {
            let _ = reply.send(Err(e));
            return;
        }
        let store = self.args.store.clone();
        let conversation = self.args.id.clone();
        tokio::spawn(async move {
            let result = async {
                let meta = store
                    .get(&keys::attachment_meta(&conversation, &attachment_id))
                    .await?
                    .ok_or(MISSING)?;
                let meta: AttachmentMeta = serde_json::from_slice(&meta)
                    .map_err(|e| StoreError::unreadable("attachment meta", e))?;
                then(Attachment {
                    store,
                    conversation,
                    attachment_id,
                    meta,
                })
                .await
            }
            .await;
            let _ = reply.send(result);
        });
    }

    /// An upload was not stored: its bytes leave the quota.
    pub(super) fn upload_failed(&mut self, bytes: u64) {
        self.upload_bytes = self.upload_bytes.saturating_sub(bytes);
    }

    /// Answers an attachment's metadata and the bytes of one of its forms.
    pub(super) fn attachment_data(
        &self,
        attachment_id: String,
        variant: AttachmentVariant,
        reply: Reply<(AttachmentMeta, Bytes)>,
    ) {
        self.read_attachment(attachment_id, reply, move |a| async move {
            if !a.meta.has(variant) {
                return Err(missing(variant));
            }
            let key = keys::attachment_variant(&a.conversation, &a.attachment_id, variant);
            let data = a.store.get(&key).await?.ok_or_else(|| missing(variant))?;
            Ok((a.meta, data))
        })
    }

    /// Answers an attachment's metadata and a download link for one of its
    /// forms.
    pub(super) fn attachment_link(
        &self,
        attachment_id: String,
        variant: AttachmentVariant,
        reply: Reply<(AttachmentMeta, String)>,
    ) {
        self.read_attachment(attachment_id, reply, move |a| async move {
            if !a.meta.has(variant) {
                return Err(missing(variant));
            }
            let link = a
                .store
                .attachment_link(&a.conversation, &a.attachment_id, variant, LINK_TTL)
                .await?;
            Ok((a.meta, link))
        })
    }
}

/// The answer for a form of an attachment that is not stored.
fn missing(variant: AttachmentVariant) -> ChatError {
    match variant {
        AttachmentVariant::Original => MISSING,
        AttachmentVariant::Thumbnail => ChatError::NotFound("Thumbnail not found"),
    }
}
