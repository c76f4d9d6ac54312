//! Compaction against another writer of the history index: a compactor
//! whose copy of the index is older than the stored one replaces nothing.

use crate::domain::{ConversationId, Role, SequencedMessage};
use crate::history;
use crate::ndjson::encode_lines;
use crate::segments::{CompactionIntent, Compactor, HistoryIndex, repair_interrupted};
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

/// Whether every message object stored is a segment the index names (and
/// every segment it names is stored).
async fn only_indexed_segments(store: &dyn Store, id: &ConversationId) -> bool {
    let index = HistoryIndex::load(store, id).await.unwrap().unwrap();
    let stored = store.list(&keys::messages_prefix(id)).await.unwrap();
    let named: Vec<String> = index.segments.iter().map(|s| s.key.clone()).collect();
    stored == named
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
    assert!(
        only_indexed_segments(&store, &id).await,
        "every batch was merged into the indexed segments"
    );
}

/// What [`Scripted`] does with the next write of a history index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnIndexWrite {
    /// Writes it.
    Store,
    /// Stores it, then answers [`StoreError::Changed`], as a request
    /// retried after its first try was stored does.
    Echo,
    /// Fails without storing it, as a crash just before it would.
    Fail,
    /// Another instance, the next lease holder, repairs the compaction
    /// first (the writer was paused past its lease), then it is written.
    RepairFirst,
}

/// A store that does what its script says with history index writes, and
/// records compaction intents as the write-ahead log or Redis would.
struct Scripted {
    inner: MemoryStore,
    id: ConversationId,
    on_index_write: std::sync::Mutex<OnIndexWrite>,
    intent: std::sync::Mutex<(Vec<String>, Vec<String>)>,
}

impl Scripted {
    fn new(id: &ConversationId) -> Scripted {
        Scripted {
            inner: MemoryStore::default(),
            id: id.clone(),
            on_index_write: std::sync::Mutex::new(OnIndexWrite::Store),
            intent: std::sync::Mutex::default(),
        }
    }

    fn script(&self, next: OnIndexWrite) {
        *self.on_index_write.lock().unwrap() = next;
    }

    fn recorded_intent(&self) -> (Vec<String>, Vec<String>) {
        self.intent.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl CompactionIntent for Scripted {
    async fn intend(&self, segments: &[String], replaced: &[String]) -> Result<(), StoreError> {
        *self.intent.lock().unwrap() = (segments.to_vec(), replaced.to_vec());
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for Scripted {
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
        let scripted = *self.on_index_write.lock().unwrap();
        if key != keys::history_index(&self.id) {
            return self.inner.put_if(key, body, content_type, expected).await;
        }
        match scripted {
            OnIndexWrite::Store => {}
            OnIndexWrite::Echo => {
                self.inner.put_if(key, body, content_type, expected).await?;
                return Err(StoreError::Changed);
            }
            OnIndexWrite::Fail => return Err(StoreError::Unusable("crashed".into())),
            OnIndexWrite::RepairFirst => {
                self.script(OnIndexWrite::Store);
                let (segments, replaced) = self.recorded_intent();
                repair_interrupted(&self.inner, &self.id, &segments, &replaced)
                    .await
                    .unwrap();
            }
        }
        self.inner.put_if(key, body, content_type, expected).await
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

/// How many objects under `messages/` hold each message id.
fn copies(store: &MemoryStore, id: &ConversationId) -> BTreeMap<String, usize> {
    let prefix = keys::messages_prefix(id);
    let mut copies = BTreeMap::new();
    for (key, body) in store.objects.lock().unwrap().iter() {
        if let Some(name) = key.strip_prefix(&prefix) {
            let ms = keys::batch_epoch_ms(name).unwrap_or(0);
            for m in crate::ndjson::parse_batch(ms, key, body) {
                *copies.entry(m.message.message_id).or_default() += 1;
            }
        }
    }
    copies
}

/// Every message of `ids` is stored in exactly one object.
fn stored_once(store: &MemoryStore, id: &ConversationId, ids: &[String]) -> bool {
    let copies = copies(store, id);
    copies.len() == ids.len() && ids.iter().all(|i| copies.get(i) == Some(&1))
}

/// Two batches compacted into a segment, then three more loose ones (so
/// the next round merges that segment, and the segment it writes sorts
/// before the index's covered key).
async fn compacted_then_loose(store: &Scripted, id: &ConversationId) -> Compactor {
    let mut compactor = Compactor::default();
    write_batch(&store.inner, id, &mut compactor, FIRST_SEQ, 2).await;
    write_batch(&store.inner, id, &mut compactor, FIRST_SEQ + 2, 2).await;
    compactor.compact(store, id, Some(store)).await.unwrap();
    for first in [FIRST_SEQ + 4, FIRST_SEQ + 6, FIRST_SEQ + 8] {
        write_batch(&store.inner, id, &mut compactor, first, 2).await;
    }
    compactor
}

#[tokio::test]
async fn a_compaction_interrupted_before_its_index_is_undone_not_half_applied() {
    let id = ConversationId::parse("interrupted").unwrap();
    let store = Scripted::new(&id);
    let mut compactor = compacted_then_loose(&store, &id).await;
    store.script(OnIndexWrite::Fail);
    assert!(compactor.compact(&store, &id, Some(&store)).await.is_err());
    let (segments, replaced) = store.recorded_intent();
    assert!(
        segments
            .iter()
            .all(|k| store.inner.objects.lock().unwrap().contains_key(k)),
        "the segment landed"
    );

    let deleted = repair_interrupted(&store.inner, &id, &segments, &replaced)
        .await
        .unwrap();

    assert_eq!(deleted, segments.len(), "the unnamed segment goes");
    assert!(stored_once(&store.inner, &id, &ids(FIRST_SEQ, 10)));
    assert_eq!(readable(&store.inner, &id).await, ids(FIRST_SEQ, 10));
}

#[tokio::test]
async fn a_compactor_paused_past_its_lease_cannot_name_a_segment_the_next_holder_deleted() {
    let id = ConversationId::parse("paused").unwrap();
    let store = Scripted::new(&id);
    let mut stale = compacted_then_loose(&store, &id).await;
    // Paused between its segment and its index write, it resumes after the
    // next holder repaired what its intent left.
    store.script(OnIndexWrite::RepairFirst);

    let compacted = stale.compact(&store, &id, Some(&store)).await;

    assert!(
        matches!(compacted, Err(StoreError::Changed)),
        "{compacted:?}"
    );
    assert!(stored_once(&store.inner, &id, &ids(FIRST_SEQ, 10)));
    assert_eq!(readable(&store.inner, &id).await, ids(FIRST_SEQ, 10));

    // The next holder compacts everything in its turn.
    let mut next = Compactor::default();
    write_batch(&store.inner, &id, &mut next, FIRST_SEQ + 10, 2).await;
    next.compact(&store, &id, Some(&store)).await.unwrap();
    assert!(stored_once(&store.inner, &id, &ids(FIRST_SEQ, 12)));
    assert_eq!(readable(&store.inner, &id).await, ids(FIRST_SEQ, 12));
}

#[tokio::test]
async fn an_index_write_stored_before_it_answered_changed_keeps_its_segments() {
    let id = ConversationId::parse("echoed").unwrap();
    let store = Scripted::new(&id);
    let mut compactor = Compactor::default();
    write_batch(&store.inner, &id, &mut compactor, FIRST_SEQ, 3).await;
    compactor.compact(&store, &id, None).await.unwrap();
    store.script(OnIndexWrite::Echo);
    write_batch(&store.inner, &id, &mut compactor, FIRST_SEQ + 3, 3).await;

    compactor.compact(&store, &id, None).await.unwrap();

    assert!(
        only_indexed_segments(&store, &id).await,
        "the indexed segment stays and what it replaced is gone"
    );
    assert_eq!(readable(&store.inner, &id).await, ids(FIRST_SEQ, 6));
}
