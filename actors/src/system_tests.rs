//! Tests of the actor system as a whole: write-behind batching, flush on
//! shutdown, restart after a panic without losing unstored messages, and
//! idle unloading, the cache of loaded conversations' addresses, no older
//! document write landing over a newer one. Storage here is the in-memory
//! map of [`crate::test_support`]; the real stores are tested against real
//! servers in the service.

use crate::System;
use crate::domain::ConversationId;
use crate::history;
use crate::settings::Settings;
use crate::store::Store;
use crate::test_support::*;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A system whose flusher writes only full batches of `max_batch` messages
/// (the interval is an hour) and whatever is left at shutdown.
async fn batching_system(store: &Arc<MemoryStore>, max_batch: usize) -> System {
    let settings = Settings {
        flush_interval: Duration::from_secs(3600),
        flush_max_batch: max_batch,
        ..Settings::default()
    };
    System::start(store.clone(), settings, None).await.unwrap()
}

#[tokio::test]
async fn messages_are_batched_and_flushed_at_shutdown() {
    let store = Arc::new(MemoryStore::default());
    let system = batching_system(&store, 10).await;
    let (id, conversation) = created(&system, "batched").await;
    let puts_after_create = store.puts.load(Ordering::SeqCst);
    post_numbered(&conversation, 25).await;
    eventually("two full batches", async || {
        stored_bodies(&store, &id).await.len() == 20
    })
    .await;
    assert_eq!(
        store.puts.load(Ordering::SeqCst) - puts_after_create,
        2,
        "one object per batch"
    );
    assert_eq!(system.shutdown(Duration::from_secs(10)).await, Ok(()));
    let bodies = stored_bodies(&store, &id).await;
    assert_eq!(bodies, numbered(25));
}

#[tokio::test]
async fn a_panicking_conversation_restarts_without_losing_unstored_messages() {
    let store = Arc::new(MemoryStore::default());
    let settings = Settings {
        flush_interval: Duration::from_millis(20),
        ..Settings::default()
    };
    let system = System::start(store.clone(), settings, None).await.unwrap();
    let (id, conversation) = created(&system, "crashy").await;
    store.down.store(true, Ordering::SeqCst);
    conversation
        .post(&ann(), text("before the crash"))
        .await
        .unwrap();
    conversation.crash().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.down.store(false, Ordering::SeqCst);
    let query = crate::conversation::PageQuery {
        limit: 10,
        cursor: None,
        newer: false,
    };
    eventually(
        "the restarted actor sees the unstored message",
        async || {
            conversation.history(query).await.is_ok_and(|page| {
                page.messages
                    .iter()
                    .map(|m| m.body.as_str())
                    .collect::<Vec<_>>()
                    == ["before the crash"]
            })
        },
    )
    .await;
    conversation
        .post(&ann(), text("after the crash"))
        .await
        .unwrap();
    eventually("both stored in order", async || {
        stored_bodies(&store, &id).await == ["before the crash", "after the crash"]
    })
    .await;
}

#[tokio::test]
async fn idle_conversations_unload_after_flushing_and_reload_on_demand() {
    let store = Arc::new(MemoryStore::default());
    let settings = Settings {
        flush_interval: Duration::from_secs(3600),
        idle_timeout: Duration::from_millis(100),
        ..Settings::default()
    };
    let system = System::start(store.clone(), settings, None).await.unwrap();
    let (id, conversation) = created(&system, "sleepy").await;
    conversation.post(&ann(), text("kept")).await.unwrap();
    eventually("unloaded", async || {
        system.stats().await.unwrap().conversations == 0
    })
    .await;
    assert_eq!(
        stored_bodies(&store, &id).await,
        ["kept"],
        "flushed before stopping"
    );
    let reloaded = conversation.get().await.unwrap();
    assert_eq!(reloaded.conversation_id, id);
}

#[tokio::test]
async fn a_loaded_conversations_address_is_cached_until_it_fails_or_idles_out() {
    let store = Arc::new(MemoryStore::default());
    let settings = Settings {
        idle_timeout: Duration::from_millis(300),
        ..Settings::default()
    };
    let system = System::start(store.clone(), settings, None).await.unwrap();
    let addresses = system.addresses();
    let (id, conversation) = created(&system, "cached").await;
    let first = addresses.get(&id).expect("cached once loaded").get_id();
    conversation.crash().await.unwrap();
    eventually("the restarted actor cached instead", async || {
        addresses.get(&id).is_some_and(|a| a.get_id() != first)
    })
    .await;
    conversation.post(&ann(), text("after")).await.unwrap();
    eventually("the address dropped when idle", async || {
        addresses.is_empty()
    })
    .await;
    let must_exist = system.existing_conversation(id.clone());
    assert_eq!(must_exist.get().await.unwrap().conversation_id, id);
    assert_eq!(addresses.len(), 1, "reloaded and cached again");
    let unknown = system.existing_conversation(ConversationId::parse("nobody").unwrap());
    assert!(matches!(
        unknown.get().await.unwrap_err(),
        crate::ChatError::NotFound("Conversation not found")
    ));
    assert_eq!(addresses.len(), 1, "an unknown id caches nothing");
}

#[tokio::test]
async fn past_the_memory_bound_new_conversations_are_refused() {
    let store = Arc::new(MemoryStore::default());
    // Two idle conversations (about 10 KiB each) reach the bound.
    let settings = Settings {
        max_loaded_memory: 15 << 10,
        ..Settings::default()
    };
    let system = System::start(store, settings, None).await.unwrap();
    let (_, first) = created(&system, "first").await;
    created(&system, "second").await;
    let third = system.conversation(ConversationId::parse("third").unwrap());
    assert!(matches!(
        third.create().await,
        Err(crate::ChatError::Overloaded { .. })
    ));
    // A loaded conversation is still served past the bound.
    first.post(&ann(), text("still here")).await.unwrap();
    system.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn unknown_conversations_answer_not_found() {
    let store = Arc::new(MemoryStore::default());
    let system = System::start(store, Settings::default(), None)
        .await
        .unwrap();
    let conversation = system.conversation(ConversationId::parse("nobody").unwrap());
    assert!(matches!(
        conversation.post(&ann(), text("x")).await.unwrap_err(),
        crate::ChatError::NotFound("Conversation not found")
    ));
}

#[tokio::test]
async fn batches_compact_into_segments_that_read_back_cold_from_few_objects() {
    let store = Arc::new(MemoryStore::default());
    let system = batching_system(&store, 10).await;
    let (id, conversation) = created(&system, "long").await;
    post_numbered(&conversation, 2_405).await;
    eventually("compaction while writing", async || {
        store
            .objects
            .lock()
            .unwrap()
            .contains_key(&crate::store::keys::history_index(&id))
    })
    .await;
    assert_eq!(system.shutdown(Duration::from_secs(10)).await, Ok(()));
    let objects = store
        .list(&crate::store::keys::messages_prefix(&id))
        .await
        .unwrap();
    assert_eq!(
        objects.len(),
        2,
        "2,405 messages in two segments: {objects:?}"
    );
    assert_eq!(stored_bodies(&store, &id).await, numbered(2_405));

    let reads_before = store.reads.load(Ordering::SeqCst);
    let (page, more) = history::read_page(&*store, &id, history::Side::Before(u64::MAX), 50)
        .await
        .unwrap();
    assert!(more);
    assert_eq!(page.first().unwrap().message.body, "m2355");
    assert_eq!(page.last().unwrap().message.body, "m2404");
    assert_eq!(
        store.reads.load(Ordering::SeqCst) - reads_before,
        3,
        "index, loose listing, newest segment"
    );
    let (older, _) = history::read_page(&*store, &id, history::Side::Before(page[0].seq), 50)
        .await
        .unwrap();
    assert_eq!(older.last().unwrap().message.body, "m2354");
}

#[tokio::test]
async fn chats3_one_message_files_are_compacted_in_their_order() {
    let store = Arc::new(MemoryStore::default());
    let id = ConversationId::parse("legacy").unwrap();
    for i in 0..40i64 {
        let line = format!(
            r#"{{"messageId":"old-{i}","conversationId":"legacy","senderUserId":"u","senderDisplayName":"U","senderAvatarUrl":null,"senderRole":"user","type":"text","body":"old {i}","clientTimestamp":"2025-01-01T00:00:00.000Z","serverReceivedAt":"2025-01-01T00:00:00.000Z"}}"#
        );
        let key = crate::store::keys::batch(&id, 1_735_689_600_000 + i, &uuid::Uuid::new_v4());
        store
            .put(&key, Bytes::from(line), "application/x-ndjson")
            .await
            .unwrap();
    }
    let meta = serde_json::json!({
        "conversationId": "legacy", "joinCode": "ABCDEF", "status": "active",
        "createdAt": "2025-01-01T00:00:00.000Z", "closedAt": null
    });
    store
        .put(
            &crate::store::keys::meta(&id),
            Bytes::from(meta.to_string()),
            "application/json",
        )
        .await
        .unwrap();
    let system = batching_system(&store, 1).await;
    let conversation = system.conversation(id.clone());
    for i in 0..20 {
        conversation
            .post(&ann(), text(&format!("new {i}")))
            .await
            .unwrap();
    }
    assert_eq!(system.shutdown(Duration::from_secs(10)).await, Ok(()));
    let objects = store
        .list(&crate::store::keys::messages_prefix(&id))
        .await
        .unwrap();
    assert!(objects.len() <= 2, "{objects:?}");
    let expected: Vec<String> = (0..40)
        .map(|i| format!("old {i}"))
        .chain((0..20).map(|i| format!("new {i}")))
        .collect();
    assert_eq!(stored_bodies(&store, &id).await, expected);
}

#[tokio::test]
async fn a_slow_document_write_never_lands_over_the_state_saved_at_stop() {
    let store = Arc::new(MemoryStore::default());
    let system = batching_system(&store, 10).await;
    let (id, conversation) = created(&system, "revised").await;
    let message = conversation.post(&ann(), text("typo")).await.unwrap();
    store.put_delay_ms.store(300, Ordering::SeqCst);
    conversation
        .revise("u-ann", &message.message_id, Some("fixed".into()))
        .await
        .unwrap();
    store.put_delay_ms.store(0, Ordering::SeqCst);
    conversation
        .revise("u-ann", &message.message_id, None)
        .await
        .unwrap();
    assert_eq!(system.shutdown(Duration::from_secs(10)).await, Ok(()));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stored = store
        .get(&crate::store::keys::revisions(&id))
        .await
        .unwrap()
        .unwrap();
    let revisions: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    assert!(
        revisions[&message.message_id]["deletedAt"].is_string(),
        "the delete is what stays stored: {revisions}"
    );
}

#[tokio::test]
async fn batches_written_within_one_millisecond_all_stay_readable_after_compaction() {
    let store = Arc::new(MemoryStore::default());
    let system = batching_system(&store, 1).await;
    let (id, conversation) = created(&system, "dense").await;
    post_numbered(&conversation, 400).await;
    assert_eq!(system.shutdown(Duration::from_secs(10)).await, Ok(()));
    assert_eq!(stored_bodies(&store, &id).await, numbered(400));
}

#[tokio::test]
async fn a_segment_sorting_after_the_covered_key_is_not_read_as_loose() {
    let store = MemoryStore::default();
    let id = ConversationId::parse("indexed").unwrap();
    let covered = "conversations/indexed/messages/2025-01-01/1735689600000-0001.ndjson";
    let segment = "conversations/indexed/messages/2025-01-01/1735689600000-0002.ndjson";
    let loose = "conversations/indexed/messages/2025-01-01/1735689600001-0000.ndjson";
    let index = crate::segments::HistoryIndex {
        version: 1,
        covered_through: Some(covered.into()),
        segments: vec![crate::segments::Segment {
            key: segment.into(),
            first_seq: 1_735_689_600_000_005,
            last_seq: 1_735_689_600_000_006,
            count: 2,
            bytes: 10,
        }],
        fence: None,
    };
    let body = Bytes::from(serde_json::to_vec(&index).unwrap());
    for (key, body) in [
        (crate::store::keys::history_index(&id), body),
        (segment.to_owned(), Bytes::new()),
        (loose.to_owned(), Bytes::new()),
    ] {
        store.put(&key, body, "application/json").await.unwrap();
    }
    let objects = crate::segments::history_objects(&store, &id).await.unwrap();
    let keys: Vec<&str> = objects.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(keys, [segment, loose]);
}

/// A system whose settled rooms hibernate after 200 ms without a request.
async fn hibernating_system(store: &Arc<MemoryStore>, idle_timeout: Duration) -> System {
    let settings = Settings {
        flush_interval: Duration::from_millis(20),
        hibernate_after: Duration::from_millis(200),
        idle_timeout,
        ..Settings::default()
    };
    System::start(store.clone(), settings, None).await.unwrap()
}

#[tokio::test]
async fn a_settled_idle_room_hibernates_and_wakes_with_its_state_without_reading_storage() {
    let store = Arc::new(MemoryStore::default());
    let system = hibernating_system(&store, Duration::from_secs(3600)).await;
    let (id, conversation) = created(&system, "dozy").await;
    let chosen = crate::domain::NewMessage {
        message_id: Some("chosen-id".into()),
        ..text("with an id")
    };
    let first = conversation.post(&ann(), chosen.clone()).await.unwrap();
    conversation.post(&ann(), text("second")).await.unwrap();
    eventually("hibernating, with no actor", async || {
        let stats = system.stats().await.unwrap();
        stats.hibernating == 1 && stats.conversations == 0
    })
    .await;
    assert_eq!(
        stored_bodies(&store, &id).await,
        ["with an id", "second"],
        "stored before it hibernated"
    );
    assert!(
        system.addresses().is_empty(),
        "no address while hibernating"
    );

    let reads_before = store.reads.load(Ordering::SeqCst);
    let again = conversation.post(&ann(), chosen).await.unwrap();
    assert_eq!(
        (again.server_received_at, again.body),
        (first.server_received_at, first.body),
        "the remembered id answers the first message"
    );
    let query = crate::conversation::PageQuery {
        limit: 10,
        cursor: None,
        newer: false,
    };
    let page = conversation.history(query).await.unwrap();
    let bodies: Vec<&str> = page.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["with an id", "second"]);
    assert_eq!(
        store.reads.load(Ordering::SeqCst),
        reads_before,
        "woken from memory, not from storage"
    );
    let stats = system.stats().await.unwrap();
    assert_eq!((stats.conversations, stats.hibernating), (1, 0));
    conversation
        .post(&ann(), text("after waking"))
        .await
        .unwrap();
    assert_eq!(system.shutdown(Duration::from_secs(10)).await, Ok(()));
    assert_eq!(
        stored_bodies(&store, &id).await,
        ["with an id", "second", "after waking"],
        "each stored once"
    );
}

#[tokio::test]
async fn a_hibernating_room_unloads_at_the_idle_timeout_and_loads_again_from_storage() {
    let store = Arc::new(MemoryStore::default());
    let system = hibernating_system(&store, Duration::from_millis(800)).await;
    let (id, conversation) = created(&system, "gone").await;
    conversation.post(&ann(), text("kept")).await.unwrap();
    eventually("hibernating", async || {
        system.stats().await.unwrap().hibernating == 1
    })
    .await;
    eventually("unloaded at the idle timeout", async || {
        let stats = system.stats().await.unwrap();
        stats.hibernating == 0 && stats.conversations == 0
    })
    .await;
    let reads_before = store.reads.load(Ordering::SeqCst);
    assert_eq!(conversation.get().await.unwrap().conversation_id, id);
    assert!(
        store.reads.load(Ordering::SeqCst) > reads_before,
        "loaded from storage"
    );
}

#[tokio::test]
async fn a_post_waiting_for_the_id_filters_leaves_the_room_serving_others() {
    let store = Arc::new(MemoryStore::default());
    let settings = Settings {
        flush_interval: Duration::from_millis(20),
        history_tail: 2,
        ..Settings::default()
    };
    let system = System::start(store.clone(), settings, None).await.unwrap();
    let (id, conversation) = created(&system, "long").await;
    post_numbered(&conversation, 10).await;
    eventually("stored", async || {
        stored_bodies(&store, &id).await.len() == 10
    })
    .await;
    // Kept after the others are stored: the tail trims to its two.
    conversation.post(&ann(), text("after")).await.unwrap();

    store.get_delay_ms.store(300, Ordering::SeqCst);
    let fresh = crate::domain::NewMessage {
        message_id: Some("2b7c9e4d-0000-4000-8000-000000000001".into()),
        ..text("fresh")
    };
    let waiting = {
        let conversation = conversation.clone();
        tokio::spawn(async move { conversation.post(&ann(), fresh).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    conversation.get().await.unwrap();
    conversation.post(&ann(), text("no id")).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "served while the consult reads storage"
    );
    assert!(!waiting.is_finished(), "the post waits for its consult");
    store.get_delay_ms.store(0, Ordering::SeqCst);
    let posted = waiting.await.unwrap().unwrap();
    assert_eq!(posted.body, "fresh");
    let page = conversation
        .history(crate::PageQuery {
            limit: 2,
            cursor: None,
            newer: false,
        })
        .await
        .unwrap();
    let bodies: Vec<&str> = page.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        bodies,
        ["no id", "fresh"],
        "sequenced when its consult came back"
    );
}
