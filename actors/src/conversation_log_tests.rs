//! Conversations on the write-ahead log. A crash is simulated by copying
//! the log directory and the store as they are once changes were
//! acknowledged, and starting a second system on the copies (the first
//! keeps running, untouched): every acknowledged change comes back, each
//! message is stored exactly once with its original sequence, and the log
//! shrinks once storage holds what it covers. The real binary is killed
//! with SIGKILL in the service's tests.

use crate::System;
use crate::domain::ConversationId;
use crate::history;
use crate::settings::Settings;
use crate::test_support::*;
use crate::wal::{SyncMode, Wal, WalConfig};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The newest page of history.
const NEWEST: crate::PageQuery = crate::PageQuery {
    limit: 100,
    cursor: None,
    newer: false,
};

fn wal_config(dir: &Path) -> WalConfig {
    WalConfig {
        dir: dir.to_path_buf(),
        commit_interval: Duration::from_millis(1),
        sync: SyncMode::Write,
        segment_bytes: 4096,
        max_bytes: 64 << 20,
    }
}

async fn system_on(store: Arc<MemoryStore>, dir: &Path, settings: Settings) -> (System, Wal) {
    let (wal, recovered) = Wal::open(wal_config(dir)).unwrap();
    let system = System::start(store, settings, Some((wal.clone(), recovered)))
        .await
        .unwrap();
    (system, wal)
}

/// The log directory and the store as they are now, as a crash would
/// leave them.
fn crash_copy(log: &Path, store: &MemoryStore) -> (tempfile::TempDir, Arc<MemoryStore>) {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(log).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
    }
    let stored = MemoryStore::default();
    *stored.objects.lock().unwrap() = store.objects.lock().unwrap().clone();
    (copy, Arc::new(stored))
}

/// How many stored objects hold each message body.
fn stored_copies(store: &MemoryStore, id: &ConversationId) -> HashMap<String, usize> {
    let prefix = crate::store::keys::messages_prefix(id);
    let mut copies = HashMap::new();
    for (key, body) in store.objects.lock().unwrap().iter() {
        if !key.starts_with(&prefix) {
            continue;
        }
        let ms = crate::store::keys::batch_epoch_ms(key).unwrap_or(0);
        for m in crate::ndjson::parse_batch(ms, key, body) {
            *copies.entry(m.message.body).or_default() += 1;
        }
    }
    copies
}

#[tokio::test]
async fn acknowledged_changes_come_back_after_a_crash_and_are_stored_once() {
    let store = Arc::new(MemoryStore::default());
    let log = tempfile::tempdir().unwrap();
    let settings = Settings {
        flush_interval: Duration::from_secs(3600),
        flush_max_batch: 5,
        ..Settings::default()
    };
    let (system, _) = system_on(store.clone(), log.path(), settings.clone()).await;
    let (id, conversation) = created(&system, "room").await;
    let mut sent = Vec::new();
    for i in 0..12 {
        sent.push(
            conversation
                .post(&ann(), text(&format!("m{i}")))
                .await
                .unwrap(),
        );
    }
    conversation
        .react("u-ann", &sent[0].message_id, "👍", true)
        .await
        .unwrap();
    conversation
        .revise("u-ann", &sent[11].message_id, Some("m11 edited".into()))
        .await
        .unwrap();
    eventually("two full batches are stored", async || {
        stored_copies(&store, &id).len() == 10
    })
    .await;
    let before = conversation.history(NEWEST).await.unwrap();

    let (log_copy, store_copy) = crash_copy(log.path(), &store);
    let restarted = Settings {
        flush_interval: Duration::from_millis(50),
        ..settings
    };
    let (second, _) = system_on(store_copy.clone(), log_copy.path(), restarted).await;
    let again = second.conversation(id.clone());
    let after = again.history(NEWEST).await.unwrap();
    let bodies: Vec<&str> = after.messages.iter().map(|m| m.body.as_str()).collect();
    let mut expected = numbered(11);
    expected.push("m11 edited".into());
    assert_eq!(bodies, expected, "every message once, in order, edited");
    assert_eq!(
        after.next_cursor, before.next_cursor,
        "sequences are the original ones"
    );
    let reactions = again.reactions().await.unwrap();
    assert_eq!(
        reactions[&sent[0].message_id]["👍"],
        vec!["u-ann".to_owned()]
    );

    eventually("the replayed messages are stored", async || {
        stored_copies(&store_copy, &id).len() == 12
    })
    .await;
    assert!(
        stored_copies(&store_copy, &id).values().all(|n| *n == 1),
        "no message is in two stored objects"
    );
    second.shutdown(Duration::from_secs(10)).await.unwrap();
    system.shutdown(Duration::from_secs(10)).await.unwrap();
    let seqs = |store: Arc<MemoryStore>| {
        let id = id.clone();
        async move {
            let (stored, _) = history::read_tail(store.as_ref(), &id, 100).await.unwrap();
            stored.iter().map(|m| m.seq).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        seqs(store_copy).await,
        seqs(store).await,
        "replayed messages keep the sequences the first system gave them"
    );
}

#[tokio::test]
async fn with_the_log_full_a_post_is_refused_and_nothing_of_it_is_kept() {
    let store = Arc::new(MemoryStore::default());
    let log = tempfile::tempdir().unwrap();
    let (wal, recovered) = Wal::open(WalConfig {
        max_bytes: 8 << 10,
        ..wal_config(log.path())
    })
    .unwrap();
    let settings = Settings {
        flush_interval: Duration::from_secs(3600),
        ..Settings::default()
    };
    let system = System::start(store.clone(), settings, Some((wal, recovered)))
        .await
        .unwrap();
    let (_, conversation) = created(&system, "room").await;
    let mut accepted = 0;
    let refused = loop {
        match conversation
            .post(&ann(), text(&format!("m{accepted}")))
            .await
        {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 1000, "the bound was never reached");
    };
    assert!(
        matches!(refused, crate::ChatError::Overloaded { .. }),
        "{refused:?}"
    );
    let page = conversation.history(NEWEST).await.unwrap();
    let bodies: Vec<String> = page.messages.into_iter().map(|m| m.body).collect();
    assert_eq!(bodies, numbered(accepted));
}

/// A conversation stored in three batches of five, and the key of each.
async fn three_batches(
    store: &Arc<MemoryStore>,
) -> (
    ConversationId,
    Vec<String>,
    Vec<crate::domain::SequencedMessage>,
) {
    let first = System::start(store.clone(), Settings::default(), None)
        .await
        .unwrap();
    let (id, _) = created(&first, "room").await;
    first.shutdown(Duration::from_secs(5)).await.unwrap();
    let base = 1_735_689_600_000_000;
    let messages: Vec<_> = (0..15)
        .map(|i| {
            let mut m = crate::domain::SequencedMessage::sample(
                base + i * 1000,
                &format!("m{i}"),
                crate::domain::Role::User,
            );
            m.message.body = format!("m{i}");
            m
        })
        .collect();
    let mut keys = Vec::new();
    for batch in messages.chunks(5) {
        let key = crate::store::keys::batch_for_seq(&id, batch[0].seq);
        store
            .objects
            .lock()
            .unwrap()
            .insert(key.clone(), crate::ndjson::encode_lines(batch));
        keys.push(key);
    }
    (id, keys, messages)
}

/// Logs the intent of a compaction of `keys` into the segment `segment`.
fn log_intent(dir: &Path, id: &ConversationId, segment: &str, keys: &[String]) {
    let (wal, _) = Wal::open(wal_config(dir)).unwrap();
    let change: crate::changes::Change = crate::changes::Change::Compacting {
        segments: vec![segment.to_owned()],
        replaced: keys.to_vec(),
    };
    let bytes = crate::log_records::encode_change(id.as_str(), &change).unwrap();
    futures::executor::block_on(wal.append(bytes).unwrap()).unwrap();
}

/// Stores the history index naming `messages` as the one segment at
/// `key`, covering every batch up to `covered`.
fn store_index(
    store: &MemoryStore,
    id: &ConversationId,
    (key, covered): (&str, &str),
    messages: &[crate::domain::SequencedMessage],
) {
    let index = crate::segments::HistoryIndex {
        version: 1,
        covered_through: Some(covered.to_owned()),
        segments: vec![crate::segments::Segment {
            key: key.to_owned(),
            first_seq: messages[0].seq,
            last_seq: messages[messages.len() - 1].seq,
            count: messages.len(),
            bytes: crate::ndjson::encode_lines(messages).len(),
        }],
        fence: None,
    };
    store.objects.lock().unwrap().insert(
        crate::store::keys::history_index(id),
        serde_json::to_vec(&index).unwrap().into(),
    );
}

fn store_segment(store: &MemoryStore, key: &str, messages: &[crate::domain::SequencedMessage]) {
    store
        .objects
        .lock()
        .unwrap()
        .insert(key.to_owned(), crate::ndjson::encode_lines(messages));
}

#[tokio::test]
async fn a_crash_after_a_compaction_stored_its_index_deletes_what_it_replaced() {
    let store = Arc::new(MemoryStore::default());
    let (id, keys, messages) = three_batches(&store).await;
    let segment = crate::store::keys::batch_for_seq(&id, messages[0].seq);
    let log = tempfile::tempdir().unwrap();
    log_intent(log.path(), &id, &segment, &keys);
    // The segment and the index naming it landed; the crash came before
    // the batches were deleted.
    store_segment(&store, &segment, &messages);
    store_index(&store, &id, (&segment, &keys[2]), &messages);
    assert_eq!(stored_copies(&store, &id)["m7"], 2);

    let (system, _) = system_on(store.clone(), log.path(), Settings::default()).await;
    eventually("the replaced batches are deleted", async || {
        stored_copies(&store, &id).values().all(|n| *n == 1)
    })
    .await;
    assert_eq!(stored_copies(&store, &id).len(), 15);
    assert!(store.objects.lock().unwrap().contains_key(&segment));
    assert_eq!(stored_bodies(&store, &id).await, numbered(15));
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_crash_between_a_segment_and_its_index_deletes_the_segment_and_keeps_the_batches() {
    let store = Arc::new(MemoryStore::default());
    let (id, keys, messages) = three_batches(&store).await;
    // The first batch is the newest segment; the compaction merged it
    // and the two loose batches after it into a segment that sorts
    // before the index's covered key (as one named after the first
    // segment's first message may), and the crash came before the index.
    store_index(&store, &id, (&keys[0], &keys[0]), &messages[..5]);
    let segment = crate::store::keys::batch(&id, 1_735_689_600_000, &uuid::Uuid::nil());
    let log = tempfile::tempdir().unwrap();
    log_intent(log.path(), &id, &segment, &keys);
    store_segment(&store, &segment, &messages);
    assert_eq!(stored_copies(&store, &id)["m7"], 2);

    let (system, _) = system_on(store.clone(), log.path(), Settings::default()).await;
    eventually("the unnamed segment is deleted", async || {
        !store.objects.lock().unwrap().contains_key(&segment)
    })
    .await;
    assert!(
        keys.iter()
            .all(|k| store.objects.lock().unwrap().contains_key(k)),
        "every object the segment would have replaced stays"
    );
    assert!(stored_copies(&store, &id).values().all(|n| *n == 1));
    assert_eq!(stored_bodies(&store, &id).await, numbered(15));
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_crash_before_the_segment_landed_keeps_every_batch() {
    let store = Arc::new(MemoryStore::default());
    let (id, keys, messages) = three_batches(&store).await;
    let segment = crate::store::keys::batch_for_seq(&id, messages[0].seq);
    let log = tempfile::tempdir().unwrap();
    log_intent(log.path(), &id, &segment, &keys);

    let (system, _) = system_on(store.clone(), log.path(), Settings::default()).await;
    let conversation = system.conversation(id.clone());
    conversation.get().await.unwrap();
    assert_eq!(stored_bodies(&store, &id).await, numbered(15));
    assert!(
        keys.iter()
            .all(|k| store.objects.lock().unwrap().contains_key(k))
    );
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_panicking_conversation_keeps_its_unsaved_reactions_and_edits_through_the_log() {
    let store = Arc::new(MemoryStore::default());
    let log = tempfile::tempdir().unwrap();
    let settings = Settings {
        flush_interval: Duration::from_secs(3600),
        ..Settings::default()
    };
    let (system, _) = system_on(store.clone(), log.path(), settings).await;
    let (id, conversation) = created(&system, "crashy").await;
    let first = conversation.post(&ann(), text("m0")).await.unwrap();
    let second = conversation.post(&ann(), text("m1")).await.unwrap();
    conversation
        .react("u-ann", &first.message_id, "👍", true)
        .await
        .unwrap();
    conversation
        .revise("u-ann", &second.message_id, Some("m1 edited".into()))
        .await
        .unwrap();
    conversation.crash().await.unwrap();
    eventually(
        "the restarted actor has the reaction and the edit",
        async || {
            let reacted = conversation.reactions().await.is_ok_and(|r| {
                r.get(&first.message_id)
                    .is_some_and(|e| e.contains_key("👍"))
            });
            let page = conversation
                .history(crate::PageQuery {
                    limit: 10,
                    cursor: None,
                    newer: false,
                })
                .await;
            let edited = page.is_ok_and(|p| {
                p.messages
                    .iter()
                    .map(|m| m.body.as_str())
                    .collect::<Vec<_>>()
                    == ["m0", "m1 edited"]
            });
            reacted && edited
        },
    )
    .await;
    system.shutdown(Duration::from_secs(10)).await.unwrap();
    let saved =
        |key: String| String::from_utf8_lossy(&store.objects.lock().unwrap()[&key]).into_owned();
    assert!(saved(crate::store::keys::reactions(&id)).contains("👍"));
    assert!(saved(crate::store::keys::revisions(&id)).contains("m1 edited"));
    assert_eq!(
        stored_bodies(&store, &id).await,
        ["m0", "m1"],
        "batches stay as sent"
    );
}
