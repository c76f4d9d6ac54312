//! The storage seam: a flat key/value object store (S3 or a directory) and
//! the key layout shared with Chats3.

use crate::domain::{AttachmentVariant, ConversationId};
use crate::error::Report;
pub use crate::error::StoreError;
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Which object a read saw, for a conditional write
/// ([`Store::put_if`]) that replaces only that object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// There was no object under the key.
    Absent,
    /// The object's tag: its ETag on S3, a hash of its content in a
    /// directory. Opaque to callers.
    Tag(String),
}

/// What the actors need from storage. Implemented in the service crate for
/// S3 and for a local directory with identical keys.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The object's bytes, or `None` when there is no such key.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;
    /// The object's bytes (`None` when there is no such key) and the
    /// version they are, for a later [`Store::put_if`].
    async fn get_versioned(&self, key: &str) -> Result<(Option<Bytes>, Version), StoreError>;
    /// Writes the whole object, replacing any previous one atomically.
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError>;
    /// Writes the whole object only if what is stored under the key is
    /// still `expected` (no object for [`Version::Absent`]); answers the
    /// version written. Fails with [`StoreError::Changed`], writing
    /// nothing, when another write came first, so a writer that lost its
    /// turn cannot replace what a newer one wrote.
    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        expected: &Version,
    ) -> Result<Version, StoreError>;
    /// Every key that starts with `prefix`, in any order.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// The keys that start with `prefix` and sort after `start_after`, in
    /// ascending order. S3 answers this without listing the earlier keys.
    async fn list_after(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let mut keys: Vec<String> = self
            .list(prefix)
            .await?
            .into_iter()
            .filter(|k| start_after.is_none_or(|after| k.as_str() > after))
            .collect();
        keys.sort_unstable();
        Ok(keys)
    }

    /// Removes the objects; keys that do not exist are not an error.
    async fn delete(&self, keys: &[String]) -> Result<(), StoreError>;

    /// A link that downloads one form of an attachment without a session
    /// and works for `ttl`: a presigned GET on S3, the service's own
    /// signed download route on a directory.
    async fn attachment_link(
        &self,
        conversation: &ConversationId,
        attachment_id: &str,
        variant: AttachmentVariant,
        ttl: Duration,
    ) -> Result<String, StoreError>;

    /// Bytes of every object whose key starts with `prefix`. The real
    /// stores answer from a listing; this default reads each object.
    async fn usage(&self, prefix: &str) -> Result<u64, StoreError> {
        let mut total = 0;
        for key in self.list(prefix).await? {
            total += self.get(&key).await?.map_or(0, |b| b.len() as u64);
        }
        Ok(total)
    }
}

/// Removes what a write answered with an error may still have stored (a
/// write that timed out can land later, when a stalled server resumes):
/// deletes in a task, retried with backoff until storage accepts, then once
/// more after a pause for a write that was still under way. Bounded: it
/// gives up (and logs the keys) after about ten minutes.
pub fn undo_writes(store: SharedStore, keys: Vec<String>) -> tokio::task::JoinHandle<()> {
    const ATTEMPTS: u32 = 40;
    const CONFIRM_AFTER: std::time::Duration = std::time::Duration::from_secs(2);
    tokio::spawn(async move {
        let mut delay = std::time::Duration::from_millis(250);
        let mut confirmed = false;
        for _ in 0..ATTEMPTS {
            match store.delete(&keys).await {
                Ok(()) if confirmed => return,
                Ok(()) => {
                    confirmed = true;
                    tokio::time::sleep(CONFIRM_AFTER).await;
                }
                Err(e) => {
                    tracing::warn!(?keys, error = %Report(&e), "undoing a failed write; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(15));
                }
            }
        }
        tracing::error!(
            ?keys,
            "could not undo a failed write; the objects may remain"
        );
    })
}

/// A shared store.
pub type SharedStore = Arc<dyn Store>;

/// Storage keys, exactly as Chats3 lays them out.
pub mod keys {
    use crate::domain::ConversationId;

    /// `conversations/{id}/meta.json`
    pub fn meta(id: &ConversationId) -> String {
        format!("conversations/{id}/meta.json")
    }

    /// `conversations/{id}/reactions.json`
    pub fn reactions(id: &ConversationId) -> String {
        format!("conversations/{id}/reactions.json")
    }

    /// `conversations/{id}/revisions.json` (edits and deletes; this service only).
    pub fn revisions(id: &ConversationId) -> String {
        format!("conversations/{id}/revisions.json")
    }

    /// `conversations/{id}/reads.json`: each user's read mark (this
    /// service only).
    pub fn read_marks(id: &ConversationId) -> String {
        format!("conversations/{id}/reads.json")
    }

    /// `conversations/{id}/history.json`: the index of compacted segments
    /// (this service only; see [`crate::segments`]).
    pub fn history_index(id: &ConversationId) -> String {
        format!("conversations/{id}/history.json")
    }

    /// The prefix of every message batch of a conversation.
    pub fn messages_prefix(id: &ConversationId) -> String {
        format!("conversations/{id}/messages/")
    }

    /// `conversations/{id}/messages/{YYYY-MM-DD}/{epochMillis}-{uuid}.ndjson`
    pub fn batch(id: &ConversationId, epoch_ms: i64, batch_id: &uuid::Uuid) -> String {
        format!(
            "conversations/{id}/messages/{}/{epoch_ms}-{batch_id}.ndjson",
            crate::time::date_folder(epoch_ms)
        )
    }

    /// The key of a batch or segment whose first message has `first_seq`:
    /// named after that message's millisecond, with a UUID whose first 16
    /// bits are the sequence number within the millisecond. Keys written
    /// later therefore sort later even when they share a millisecond, which
    /// readers listing "after the last compacted key" rely on.
    pub fn batch_for_seq(id: &ConversationId, first_seq: u64) -> String {
        let mut bytes = *uuid::Uuid::new_v4().as_bytes();
        let within_ms = u16::try_from(first_seq % 1000).unwrap_or(u16::MAX);
        bytes[..2].copy_from_slice(&within_ms.to_be_bytes());
        let batch_id = uuid::Builder::from_custom_bytes(bytes).into_uuid();
        batch(
            id,
            i64::try_from(first_seq / 1000).unwrap_or(i64::MAX),
            &batch_id,
        )
    }

    /// The key of a batch holding the messages `first_seq..=last_seq`,
    /// the same whoever writes it (a cluster's flusher: a batch written
    /// again after a lease changed hands replaces the first copy). Named
    /// like [`batch_for_seq`]; the UUID's last seven bytes carry
    /// `last_seq`, so [`batch_range`] reads the range back.
    pub fn batch_for_range(id: &ConversationId, first_seq: u64, last_seq: u64) -> String {
        let mut bytes = [0u8; 16];
        let within_ms = u16::try_from(first_seq % 1000).unwrap_or(u16::MAX);
        bytes[..2].copy_from_slice(&within_ms.to_be_bytes());
        bytes[9..].copy_from_slice(&last_seq.to_be_bytes()[1..]);
        let batch_id = uuid::Builder::from_custom_bytes(bytes).into_uuid();
        batch(
            id,
            i64::try_from(first_seq / 1000).unwrap_or(i64::MAX),
            &batch_id,
        )
    }

    /// The sequence range of a key [`batch_for_range`] made.
    pub fn batch_range(key: &str) -> Option<(u64, u64)> {
        let name = key.rsplit('/').next()?;
        let (ms, uuid) = name.strip_suffix(".ndjson")?.split_once('-')?;
        let bytes = *uuid::Uuid::parse_str(uuid).ok()?.as_bytes();
        let within_ms = u64::from(u16::from_be_bytes([bytes[0], bytes[1]]));
        let mut last = [0u8; 8];
        last[1..].copy_from_slice(&bytes[9..]);
        let first = ms.parse::<u64>().ok()? * 1000 + within_ms;
        Some((first, u64::from_be_bytes(last)))
    }

    /// The greatest key below every batch key of `id` whose first message
    /// was received in or after `epoch_ms`, for listing what follows it.
    pub fn batches_from(id: &ConversationId, epoch_ms: i64) -> String {
        format!(
            "conversations/{id}/messages/{}/{epoch_ms}-",
            crate::time::date_folder(epoch_ms)
        )
    }

    /// The key of the id filter of the batch or segment at `object_key`
    /// (see [`crate::id_filter`]):
    /// `conversations/{id}/message-ids/{YYYY-MM-DD}/{name}.ids`, so Chats3,
    /// which reads only `messages/`, never sees it.
    pub fn id_filter(object_key: &str) -> Option<String> {
        let (conversation, rest) = object_key.split_once("/messages/")?;
        let name = rest.strip_suffix(".ndjson")?;
        Some(format!("{conversation}/message-ids/{name}.ids"))
    }

    /// The epoch milliseconds a batch key is named after.
    pub fn batch_epoch_ms(key: &str) -> Option<i64> {
        let name = key.rsplit('/').next()?;
        let stem = name.strip_suffix(".ndjson")?;
        stem.split('-').next()?.parse().ok()
    }

    /// The prefix of every attachment of a conversation.
    pub fn attachments_prefix(id: &ConversationId) -> String {
        format!("conversations/{id}/attachments/")
    }

    /// `conversations/{id}/attachments/{attachmentId}/original`
    pub fn attachment(id: &ConversationId, attachment_id: &str) -> String {
        format!("conversations/{id}/attachments/{attachment_id}/original")
    }

    /// `conversations/{id}/attachments/{attachmentId}/{original|thumbnail}`
    pub fn attachment_variant(
        id: &ConversationId,
        attachment_id: &str,
        variant: crate::domain::AttachmentVariant,
    ) -> String {
        format!(
            "conversations/{id}/attachments/{attachment_id}/{}",
            variant.name()
        )
    }

    /// `conversations/{id}/attachments/{attachmentId}/meta.json`
    pub fn attachment_meta(id: &ConversationId, attachment_id: &str) -> String {
        format!("conversations/{id}/attachments/{attachment_id}/meta.json")
    }
}

#[cfg(test)]
mod tests {
    use super::keys;
    use crate::domain::ConversationId;

    #[test]
    fn batch_keys_follow_the_chats3_layout() {
        let id = ConversationId::parse("c1").unwrap();
        let uuid = uuid::Uuid::nil();
        let key = keys::batch(&id, 1_735_380_000_000, &uuid);
        assert_eq!(
            key,
            "conversations/c1/messages/2024-12-28/1735380000000-00000000-0000-0000-0000-000000000000.ndjson"
        );
        assert_eq!(keys::batch_epoch_ms(&key), Some(1_735_380_000_000));
        assert_eq!(keys::batch_epoch_ms("conversations/c1/meta.json"), None);
    }

    #[test]
    fn an_id_filter_lies_beside_its_object_outside_the_messages() {
        let id = ConversationId::parse("c1").unwrap();
        let key = keys::batch(&id, 1_735_380_000_000, &uuid::Uuid::nil());
        assert_eq!(
            keys::id_filter(&key).unwrap(),
            "conversations/c1/message-ids/2024-12-28/1735380000000-00000000-0000-0000-0000-000000000000.ids"
        );
        assert!(
            !keys::id_filter(&key)
                .unwrap()
                .starts_with(&keys::messages_prefix(&id))
        );
        assert_eq!(keys::id_filter(&keys::meta(&id)), None);
    }

    #[test]
    fn range_keys_carry_their_range_and_sort_by_it() {
        let id = ConversationId::parse("c1").unwrap();
        let first = 1_735_380_000_000_123u64;
        let key = keys::batch_for_range(&id, first, first + 9_876);
        assert_eq!(keys::batch_range(&key), Some((first, first + 9_876)));
        assert_eq!(key, keys::batch_for_range(&id, first, first + 9_876));
        let later = keys::batch_for_range(&id, first + 1, first + 2);
        assert!(key < later);
        assert!(keys::batches_from(&id, 1_735_380_000_000) < key);
        assert!(keys::batches_from(&id, 1_735_380_000_001) > key);
    }

    #[test]
    fn keys_of_later_batches_sort_later_within_a_millisecond() {
        let id = ConversationId::parse("c1").unwrap();
        let ms = 1_735_380_000_000u64;
        let keys: Vec<String> = [0, 1, 9, 10, 255, 256, 999, 1000]
            .iter()
            .map(|n| keys::batch_for_seq(&id, ms * 1000 + n))
            .collect();
        assert!(keys.windows(2).all(|k| k[0] < k[1]), "{keys:#?}");
        assert_eq!(keys::batch_epoch_ms(&keys[0]), Some(ms as i64));
        assert_eq!(keys::batch_epoch_ms(&keys[7]), Some(ms as i64 + 1));
        let name = keys[2].rsplit('/').next().unwrap();
        let uuid = name
            .strip_suffix(".ndjson")
            .unwrap()
            .split_once('-')
            .unwrap()
            .1;
        assert!(uuid::Uuid::parse_str(uuid).is_ok());
    }
}
