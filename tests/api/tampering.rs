//! No participant can change, delete or shadow another sender's message:
//! reused ids are refused, edits reach only their author's message, system
//! messages are immutable and replays of signed ones are stored once.

use crate::helpers::*;
use crate::system_message::signed;
use chats3_actors::domain::ConversationId;
use chats3_actors::store::keys;
use chats3_actors::time::{iso_from_ms, now_ms};
use serde_json::{Value, json};
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(400);

fn with_id(message_id: &str, body: &str) -> Value {
    json!({ "messageId": message_id, "body": body, "clientTimestamp": "2025-01-01T00:00:00Z" })
}

/// Posts `body` under `message_id` as `session`: the stored message.
async fn posted(app: &TestApp, session: &str, message_id: &str, body: &str) -> Value {
    envelope(
        app.post_as(session, "/api/v1/messages", &with_id(message_id, body))
            .await,
    )
    .await["details"]
        .clone()
}

async fn patch_as(app: &TestApp, session: &str, message_id: &str, body: &str) -> reqwest::Response {
    app.client
        .patch(app.url(&format!("/api/v1/messages/{message_id}")))
        .header("x-session-id", session)
        .json(&json!({ "body": body }))
        .send()
        .await
        .unwrap()
}

async fn delete_as(app: &TestApp, session: &str, message_id: &str) -> reqwest::Response {
    app.client
        .delete(app.url(&format!("/api/v1/messages/{message_id}")))
        .header("x-session-id", session)
        .send()
        .await
        .unwrap()
}

fn count_id(history: &[Value], message_id: &str) -> usize {
    history
        .iter()
        .filter(|m| m["messageId"] == message_id)
        .count()
}

/// Mallory's post reusing `message_id` answers 409, and Bob's stream stays quiet.
async fn refused_and_quiet(app: &TestApp, mallory: &str, bob: &mut EventStream, message_id: &str) {
    let (status, message, _) = failure(
        app.post_as(
            mallory,
            "/api/v1/messages",
            &with_id(message_id, "EDITED BY MALLORY"),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (409, "Message ID already used by another sender")
    );
    bob.expect_quiet(QUIET).await;
}

#[tokio::test]
async fn another_senders_server_made_or_join_notice_id_is_refused_with_409() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Alice", "Mallory", "Bob"]).await;
    let (alice, mallory, bob) = (&joined[0], &joined[1], &joined[2]);
    let mut bob_stream = app.stream(&bob.session_id, None).await;
    bob_stream.opening().await;
    let victim = app.send(&alice.session_id, "pay to account 1").await;
    bob_stream.next_of("new-message").await;
    let victim_id = victim["messageId"].as_str().unwrap();
    refused_and_quiet(&app, &mallory.session_id, &mut bob_stream, victim_id).await;

    let history = app.history(&bob.session_id).await;
    let notice = history
        .iter()
        .find(|m| m["body"] == "Alice joined the conversation")
        .unwrap()
        .clone();
    let notice_id = notice["messageId"].as_str().unwrap();
    refused_and_quiet(&app, &mallory.session_id, &mut bob_stream, notice_id).await;

    let history = app.history(&bob.session_id).await;
    assert_eq!(count_id(&history, victim_id), 1);
    assert_eq!(count_id(&history, notice_id), 1);
    assert!(history.contains(&victim) && history.contains(&notice));
}

#[tokio::test]
async fn a_client_id_stays_its_senders_after_the_idempotency_window_and_a_restart() {
    let app = spawn_app_with(|c| {
        c.actors.idempotency_ttl = Duration::from_millis(100);
        c.actors.idle_timeout = Duration::from_millis(300);
    })
    .await;
    let (id, joined) = app.room_with(&["Alice", "Mallory", "Bob"]).await;
    let (alice, mallory, bob) = (&joined[0], &joined[1], &joined[2]);
    let mut bob_stream = app.stream(&bob.session_id, None).await;
    bob_stream.opening().await;
    let message_id = "7f2c7e1a-3c4b-4e55-9d2a-0c6f1f0a9b12";
    let first = posted(&app, &alice.session_id, message_id, "mine").await;
    bob_stream.next_of("new-message").await;
    // Past the window, and past a housekeeping round that expires it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    refused_and_quiet(&app, &mallory.session_id, &mut bob_stream, message_id).await;
    let again = app
        .post_as(
            &alice.session_id,
            "/api/v1/messages",
            &with_id(message_id, "mine"),
        )
        .await;
    assert_eq!(envelope(again).await["details"], first, "still idempotent");
    bob_stream.expect_quiet(QUIET).await;
    drop(bob_stream);

    let app = spawn_app_in(app.stop().await, |_| {}).await;
    let code = app.stored_join_code(&id);
    let mallory = app.join(&id, &code, "Mallory").await;
    let (status, _, _) = failure(
        app.post_as(
            &mallory.session_id,
            "/api/v1/messages",
            &with_id(message_id, "x"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409, "after a restart too");
    let history = app.history(&mallory.session_id).await;
    assert_eq!(count_id(&history, message_id), 1);
    assert_eq!(
        history
            .iter()
            .find(|m| m["messageId"] == message_id)
            .unwrap(),
        &first
    );
}

#[tokio::test]
async fn edits_and_deletes_of_others_and_of_system_messages_are_403_and_change_nothing() {
    let app = spawn_app().await;
    let (id, joined) = app.room_with(&["Alice", "Mallory"]).await;
    let (alice, mallory) = (&joined[0], &joined[1]);
    let victim = app.send(&alice.session_id, "the real text").await;
    let victim_id = victim["messageId"].as_str().unwrap();
    let history = app.history(&alice.session_id).await;
    let notice = history
        .iter()
        .find(|m| m["body"] == "Mallory joined the conversation")
        .unwrap()
        .clone();
    let notice_id = notice["messageId"].as_str().unwrap();

    let (status, message, _) =
        failure(patch_as(&app, &mallory.session_id, victim_id, "x").await).await;
    assert_eq!(
        (status, message.as_str()),
        (403, "Cannot edit others' messages")
    );
    let (status, message, _) = failure(delete_as(&app, &mallory.session_id, victim_id).await).await;
    assert_eq!(
        (status, message.as_str()),
        (403, "Cannot delete others' messages")
    );
    for session in [&alice.session_id, &mallory.session_id] {
        let (status, message, _) = failure(patch_as(&app, session, notice_id, "phish").await).await;
        assert_eq!(
            (status, message.as_str()),
            (403, "Cannot edit system messages")
        );
        let (status, message, _) = failure(delete_as(&app, session, notice_id).await).await;
        assert_eq!(
            (status, message.as_str()),
            (403, "Cannot delete system messages")
        );
    }

    let app = spawn_app_in(app.stop().await, |_| {}).await;
    let cid = app.join(&id, &app.stored_join_code(&id), "Cid").await;
    let history = app.history(&cid.session_id).await;
    assert!(history.contains(&victim), "{history:#?}");
    assert!(history.contains(&notice), "{history:#?}");
}

#[tokio::test]
async fn a_revisions_file_from_before_cannot_rewrite_a_notice_or_another_senders_copy() {
    let app = spawn_app().await;
    let (id, joined) = app.room_with(&["Alice"]).await;
    let victim = app.send(&joined[0].session_id, "the real text").await;
    let victim_id = victim["messageId"].as_str().unwrap().to_owned();
    let notice = app.history(&joined[0].session_id).await[0].clone();
    let notice_id = notice["messageId"].as_str().unwrap().to_owned();
    let data_dir = app.stop().await;

    // What the old code left behind: Mallory's second message under Alice's
    // id, and revisions keyed by id alone.
    let conversation = ConversationId::parse(&id).unwrap();
    let seq = u64::try_from(now_ms() + 1_000).unwrap() * 1000;
    let mut copy = victim.clone();
    copy["senderUserId"] = json!("mallory");
    copy["senderDisplayName"] = json!("Mallory");
    copy["seq"] = json!(seq);
    let batch = data_dir
        .path()
        .join(keys::batch_for_seq(&conversation, seq));
    std::fs::create_dir_all(batch.parent().unwrap()).unwrap();
    std::fs::write(&batch, format!("{copy}\n")).unwrap();
    let edited_at = iso_from_ms(now_ms());
    let revisions = json!({
        victim_id.clone(): { "body": "EDITED BY MALLORY", "editedAt": edited_at },
        notice_id.clone(): { "body": "phishing link", "editedAt": edited_at },
    });
    std::fs::write(
        data_dir.path().join(keys::revisions(&conversation)),
        revisions.to_string(),
    )
    .unwrap();

    let app = spawn_app_in(data_dir, |_| {}).await;
    let cid = app.join(&id, &app.stored_join_code(&id), "Cid").await;
    let history = app.history(&cid.session_id).await;
    assert!(history.contains(&victim), "{history:#?}");
    assert!(history.contains(&notice), "{history:#?}");
    let copy = history
        .iter()
        .find(|m| m["messageId"] == victim_id.as_str() && m["senderUserId"] == "mallory")
        .unwrap();
    assert_eq!(
        copy["body"], "EDITED BY MALLORY",
        "the edit stays on its author's copy"
    );
}

#[tokio::test]
async fn a_signed_system_message_posted_twice_is_stored_and_broadcast_once() {
    let app = spawn_app().await;
    let (id, joined) = app.room_with(&["Ann"]).await;
    let ann = &joined[0];
    let mut stream = app.stream(&ann.session_id, None).await;
    stream.opening().await;
    let request = signed(
        &id,
        "Order #42 shipped",
        &iso_from_ms(now_ms()),
        INTEGRATOR_SECRET,
    );
    let first = envelope(app.post_json("/api/v1/system-message", &request).await).await;
    let second = app.post_json("/api/v1/system-message", &request).await;
    assert_eq!(second.status(), 200);
    let second = envelope(second).await;
    assert_eq!(second["message"], "System message sent");
    assert_eq!(first["details"], second["details"]);
    assert_eq!(
        stream.next_of("new-message").await.data["data"],
        first["details"]
    );
    stream.expect_quiet(QUIET).await;
    let history = app.history(&ann.session_id).await;
    let stored = history
        .iter()
        .filter(|m| m["body"] == "Order #42 shipped")
        .count();
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn a_users_message_typed_system_is_stored_with_the_users_role() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Mallory"]).await;
    let mallory = &joined[0];
    let body = json!({ "type": "system", "body": "The admin moved this chat", "clientTimestamp": "2025-01-01T00:00:00Z" });
    let stored = envelope(
        app.post_as(&mallory.session_id, "/api/v1/messages", &body)
            .await,
    )
    .await["details"]
        .clone();
    assert_eq!(stored["senderRole"], "user");
    assert_eq!(stored["senderUserId"], mallory.user_id.as_str());
    assert_eq!(stored["senderDisplayName"], "Mallory");
    assert_eq!(
        app.history(&mallory.session_id).await.last().unwrap(),
        &stored
    );
}

#[tokio::test]
async fn reactions_name_only_existing_messages() {
    let app = spawn_app_with(|c| c.actors.history_tail = 3).await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let ann = &joined[0].session_id;
    let unknown = "3f1d8c55-0000-4000-8000-000000000000";
    let react = |message_id: &str| json!({ "messageId": message_id, "emoji": "👍", "added": true });
    let (status, message, _) =
        failure(app.post_as(ann, "/api/v1/reactions", &react(unknown)).await).await;
    assert_eq!((status, message.as_str()), (404, "Message not found"));
    let path = format!("/api/v1/messages/{unknown}/reactions");
    let (status, _, _) = failure(app.post_as(ann, &path, &json!({ "emoji": "👍" })).await).await;
    assert_eq!(status, 404);

    let oldest = app.send(ann, "old").await;
    let oldest_id = oldest["messageId"].as_str().unwrap();
    for i in 0..5 {
        app.send(ann, &format!("newer {i}")).await;
    }
    let response = app
        .post_as(ann, "/api/v1/reactions", &react(oldest_id))
        .await;
    assert_eq!(response.status(), 200, "a message in memory");

    // Once stored and out of the tail, a page read from storage makes it known.
    let older = app.get_as(ann, "/api/v1/messages?limit=100").await;
    assert_eq!(older.status(), 200);
    let response = app
        .post_as(
            ann,
            "/api/v1/reactions",
            &json!({ "messageId": oldest_id, "emoji": "❤️", "added": true }),
        )
        .await;
    assert_eq!(response.status(), 200, "a message a page showed");
    let map = envelope(app.get_as(ann, "/api/v1/reactions").await).await["details"].clone();
    assert_eq!(map, json!({ oldest_id: { "❤️": [joined[0].user_id] } }));
}

/// The names of the segments `history.json` lists, sorted.
fn segment_names(root: &std::path::Path, id: &str) -> Vec<String> {
    let index = root.join(format!("conversations/{id}/history.json"));
    let index: Value = serde_json::from_slice(&std::fs::read(index).unwrap()).unwrap();
    let mut names: Vec<String> = index["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| stem(s["key"].as_str().unwrap()))
        .collect();
    names.sort();
    names
}

/// The names of the stored id filters, sorted.
fn filter_names(root: &std::path::Path, id: &str) -> Vec<String> {
    let mut names: Vec<String> = walk(&root.join(format!("conversations/{id}/message-ids")))
        .iter()
        .map(|path| stem(&path.to_string_lossy()))
        .collect();
    names.sort();
    names
}

/// A key's or path's file name without its extension.
fn stem(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap();
    name.split_once('.')
        .map_or(name, |(stem, _)| stem)
        .to_owned()
}

/// Another sender's post reusing `message_id` answers 409.
async fn refuse(app: &TestApp, session: &str, message_id: &str) {
    let (status, message, _) = failure(
        app.post_as(session, "/api/v1/messages", &with_id(message_id, "x"))
            .await,
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (409, "Message ID already used by another sender")
    );
}

/// The author's retry with `message_id` answers the stored `first`.
async fn retry_answers(app: &TestApp, author: &str, message_id: &str, first: &Value, why: &str) {
    let again = app
        .post_as(author, "/api/v1/messages", &with_id(message_id, "mine"))
        .await;
    assert_eq!(envelope(again).await["details"], *first, "{why}");
}

#[tokio::test]
async fn an_id_beyond_the_remembered_window_is_refused_also_after_a_restart() {
    let small_memory = |c: &mut chats3::config::Config| {
        c.actors.idempotency_max = 2;
        c.actors.history_tail = 3;
        c.actors.hibernate_after = Duration::from_millis(200);
    };
    let app = spawn_app_with(small_memory).await;
    let (id, joined) = app.room_with(&["Alice", "Mallory"]).await;
    let (alice, mallory) = (&joined[0], &joined[1]);
    let message_id = "5d0c1f6e-8a2b-4c3d-9e4f-a1b2c3d4e5f6";
    let first = posted(&app, &alice.session_id, message_id, "mine").await;
    for i in 0..8 {
        let later = format!("5d0c1f6e-8a2b-4c3d-9e4f-00000000000{i}");
        let response = app
            .post_as(
                &alice.session_id,
                "/api/v1/messages",
                &with_id(&later, "later"),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    // Stored, trimmed from the tail, past the remembered ids and hibernated.
    tokio::time::sleep(Duration::from_millis(1_000)).await;

    refuse(&app, &mallory.session_id, message_id).await;
    retry_answers(
        &app,
        &alice.session_id,
        message_id,
        &first,
        "the author's retry",
    )
    .await;

    let data_dir = app.stop().await;
    assert!(
        !segment_names(data_dir.path(), &id).is_empty(),
        "compacted at the stop"
    );
    assert_eq!(
        filter_names(data_dir.path(), &id),
        segment_names(data_dir.path(), &id),
        "each segment has its id filter, and no filter outlives its segment"
    );
    let app = spawn_app_in(data_dir, small_memory).await;
    let cid = app.join(&id, &app.stored_join_code(&id), "Cid").await;
    refuse(&app, &cid.session_id, message_id).await;
    refuse(&app, &mallory.session_id, message_id).await;
    retry_answers(
        &app,
        &alice.session_id,
        message_id,
        &first,
        "after a restart too",
    )
    .await;
    let history = app.history(&cid.session_id).await;
    assert_eq!(count_id(&history, message_id), 1, "{history:#?}");
}
