//! Compaction against another writer of the history index: a compactor
//! whose copy of the index is older than the stored one replaces nothing.

use crate::domain::{ConversationId, Role, SequencedMessage};
use crate::history;
use crate::ndjson::encode_lines;
use crate::segments::{Compactor, HistoryIndex};
use crate::store::{Store, StoreError, keys};
use crate::test_support::MemoryStore;
use bytes::Bytes;
use std::collections::BTreeMap;

/// The first sequence number the batches of these tests use.
const FIRST_SEQ: u64 = 1_735_689_600_000_000;

/// Stores one batch of `count` messages from `first` on and tells
/// `compactor` about it.
async fn write_batch(
    store: &MemoryStore,
    id: &ConversationId,
    compactor: &mut Compactor,
    first: u64,
    count: u64,
) {
    let batch: Vec<SequencedMessage> = (first..first + count)
        .map(|seq| SequencedMessage::sample(seq, &format!("m{seq}"), Role::User))
        .collect();
    let key = keys::batch_for_seq(id, first);
    let body = encode_lines(&batch);
    store
        .put(&key, body.clone(), "application/x-ndjson")
        .await
        .unwrap();
    compactor.note_batch(&key, &body, &batch);
}

/// The ids of every message a reader finds, oldest first.
async fn readable(store: &MemoryStore, id: &ConversationId) -> Vec<String> {
    let (messages, _) = history::read_tail(store, id, 10_000).await.unwrap();
    messages.into_iter().map(|m| m.message.message_id).collect()
}

/// The ids `m{first}` .. `m{first + count - 1}`.
fn ids(first: u64, count: u64) -> Vec<String> {
    (first..first + count)
        .map(|seq| format!("m{seq}"))
        .collect()
}

fn snapshot(store: &MemoryStore) -> BTreeMap<String, Bytes> {
    store.objects.lock().unwrap().clone()
}

#[tokio::test]
async fn a_compactor_behind_another_writer_replaces_and_deletes_nothing() {
    let store = MemoryStore::default();
    let id = ConversationId::parse("behind").unwrap();
    let mut stale = Compactor::default();
    write_batch(&store, &id, &mut stale, FIRST_SEQ, 3).await;
    stale.compact(&store, &id, None).await.unwrap();

    // Another writer (the next lease holder) compacts what came next.
    let mut newer = Compactor::default();
    write_batch(&store, &id, &mut newer, FIRST_SEQ + 3, 3).await;
    newer.compact(&store, &id, None).await.unwrap();
    let newer_index = store.get(&keys::history_index(&id)).await.unwrap();

    // The stale compactor, still holding the first index, compacts again.
    write_batch(&store, &id, &mut stale, FIRST_SEQ + 6, 3).await;
    let before = snapshot(&store);
    let compacted = stale.compact(&store, &id, None).await;

    assert!(
        matches!(compacted, Err(StoreError::Changed)),
        "{compacted:?}"
    );
    assert_eq!(
        store.get(&keys::history_index(&id)).await.unwrap(),
        newer_index
    );
    assert_eq!(snapshot(&store), before, "nothing replaced or deleted");
    assert_eq!(readable(&store, &id).await, ids(FIRST_SEQ, 9));

    // Having read the index again, it compacts on top of the newer one.
    stale.compact(&store, &id, None).await.unwrap();
    assert_eq!(readable(&store, &id).await, ids(FIRST_SEQ, 9));
    let index = HistoryIndex::load(&store, &id).await.unwrap().unwrap();
    let messages = store.list(&keys::messages_prefix(&id)).await.unwrap();
    assert_eq!(
        messages,
        index
            .segments
            .iter()
            .map(|s| s.key.clone())
            .collect::<Vec<_>>(),
        "every batch was merged into the indexed segments"
    );
}

/// A store whose conditional writes land and then answer
/// [`StoreError::Changed`] while `echo` is set, as a request retried
/// after its first try was stored does.
#[derive(Default)]
struct Echoing {
    inner: MemoryStore,
    echo: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Store for Echoing {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.inner.get(key).await
    }

    async fn get_versioned(
        &self,
        key: &str,
    ) -> Result<(Option<Bytes>, crate::store::Version), StoreError> {
        self.inner.get_versioned(key).await
    }

    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        self.inner.put(key, body, content_type).await
    }

    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        expected: &crate::store::Version,
    ) -> Result<crate::store::Version, StoreError> {
        let written = self.inner.put_if(key, body, content_type, expected).await?;
        if self.echo.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Changed);
        }
        Ok(written)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix).await
    }

    async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        self.inner.delete(keys).await
    }

    async fn attachment_link(
        &self,
        conversation: &ConversationId,
        attachment_id: &str,
        variant: crate::domain::AttachmentVariant,
        ttl: std::time::Duration,
    ) -> Result<String, StoreError> {
        self.inner
            .attachment_link(conversation, attachment_id, variant, ttl)
            .await
    }
}

#[tokio::test]
async fn an_index_write_stored_before_it_answered_changed_keeps_its_segments() {
    let store = Echoing::default();
    let id = ConversationId::parse("echoed").unwrap();
    let mut compactor = Compactor::default();
    write_batch(&store.inner, &id, &mut compactor, FIRST_SEQ, 3).await;
    compactor.compact(&store, &id, None).await.unwrap();
    store.echo.store(true, std::sync::atomic::Ordering::SeqCst);
    write_batch(&store.inner, &id, &mut compactor, FIRST_SEQ + 3, 3).await;

    compactor.compact(&store, &id, None).await.unwrap();

    let index = HistoryIndex::load(&store, &id).await.unwrap().unwrap();
    let messages = store.list(&keys::messages_prefix(&id)).await.unwrap();
    assert_eq!(
        messages,
        index
            .segments
            .iter()
            .map(|s| s.key.clone())
            .collect::<Vec<_>>(),
        "the indexed segment stays and what it replaced is gone"
    );
    assert_eq!(readable(&store.inner, &id).await, ids(FIRST_SEQ, 6));
}
