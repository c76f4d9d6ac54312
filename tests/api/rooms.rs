//! Loaded rooms: joins naming ids that do not exist load nothing (a
//! bounded negative cache answers them), so they cannot fill the loaded
//! rooms' cap and lock real rooms out; a create makes a cached id real.
//! Loaded rooms are bounded by estimated memory as well as by count.

use crate::helpers::*;
use futures::StreamExt;
use serde_json::json;

#[tokio::test]
async fn joins_to_unknown_rooms_load_nothing_and_real_rooms_stay_joinable() {
    let app = spawn_app_with(|c| c.actors.max_conversations = 3).await;
    let (real, code) = app.create_conversation(Some("real")).await;
    assert_eq!(app.metric("chats3_conversations_live").await, 1);
    let statuses: Vec<u16> = futures::stream::iter(0..200)
        .map(|n| {
            let app = &app;
            async move {
                let response = app
                    .try_join(&format!("random-{n}"), "ABCDEF", "Mallory")
                    .await;
                let (status, message, _) = failure(response).await;
                assert_eq!(message, "Invalid conversation or join code");
                status
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 403), "{statuses:?}");
    assert_eq!(
        app.metric("chats3_conversations_live").await,
        1,
        "no room was loaded for an unknown id"
    );
    assert_eq!(app.metric("chats3_conversations_known_absent").await, 200);
    let gets = app.metric("chats3_storage_gets_total").await;
    for n in 0..20 {
        let response = app
            .try_join(&format!("random-{n}"), "ABCDEF", "Mallory")
            .await;
        assert_eq!(response.status(), 403);
    }
    assert_eq!(
        app.metric("chats3_storage_gets_total").await,
        gets,
        "known unknown ids cost no storage call"
    );
    let admin_get = app
        .post_json(
            "/api/v1/admin/conversations/random-1",
            &json!({ "adminPassword": ADMIN_PASSWORD }),
        )
        .await;
    assert_eq!(failure(admin_get).await.0, 404);

    app.join(&real, &code, "Ann").await;
    let (created, created_code) = app.create_conversation(Some("random-7")).await;
    app.join(&created, &created_code, "Bob").await;
    let (other, other_code) = app.create_conversation(None).await;
    app.join(&other, &other_code, "Cy").await;
    assert_eq!(app.metric("chats3_conversations_live").await, 3);
}

#[tokio::test]
async fn past_max_loaded_memory_a_new_conversation_answers_503_and_loaded_ones_still_work() {
    // An idle loaded conversation is estimated at about 10 KiB: two reach
    // this bound.
    let app = spawn_app_with(|c| c.actors.max_loaded_memory = 15 << 10).await;
    let (first, code) = app.create_conversation(None).await;
    app.create_conversation(None).await;
    let response = app
        .post_json(
            "/api/v1/admin/conversations",
            &json!({ "adminPassword": ADMIN_PASSWORD }),
        )
        .await;
    let retry_after = response.headers().get("retry-after").cloned();
    let (status, message, _) = failure(response).await;
    assert_eq!(
        (status, message.as_str()),
        (
            503,
            "Loaded conversations hold too much memory; retry shortly"
        )
    );
    assert_eq!(retry_after.unwrap(), "5");
    let ann = app.join(&first, &code, "Ann").await;
    app.send(&ann.session_id, "the loaded room still works")
        .await;
    app.stop().await;
}

#[tokio::test]
async fn at_the_bound_the_idlest_room_is_unloaded_to_make_room_and_a_room_in_use_is_not() {
    let app = spawn_app_with(|c| {
        c.actors.max_conversations = 2;
        c.actors.flush_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    let (quiet, quiet_code) = app.create_conversation(Some("quiet")).await;
    let ann = app.join(&quiet, &quiet_code, "Ann").await;
    let kept = app.send(&ann.session_id, "kept across the unload").await;
    let (busy, busy_code) = app.create_conversation(Some("busy")).await;
    let bob = app.join(&busy, &busy_code, "Bob").await;
    let mut watching = app.stream(&bob.session_id, None).await;
    watching.opening().await;
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;

    // "quiet" has been idle for over a second and has no stream: it makes
    // room; "busy" has a stream and stays.
    app.create_conversation(Some("third")).await;
    eventually("the idlest room to be unloaded", || async {
        app.metric("chats3_conversations_live").await == 2
    })
    .await;
    let refused = app
        .post_json(
            "/api/v1/admin/conversations",
            &json!({ "adminPassword": ADMIN_PASSWORD, "conversationId": "fourth" }),
        )
        .await;
    let (status, message, _) = failure(refused).await;
    assert_eq!(
        (status, message.as_str()),
        (503, "Too many conversations are loaded; retry shortly"),
        "a room in use and a room used a moment ago stay loaded"
    );

    // The unloaded room stored its message on the way out and loads
    // again (in place of "third", now idle) with it and its session.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let history = app.history(&ann.session_id).await;
    assert!(
        history.iter().any(|m| m["messageId"] == kept["messageId"]),
        "{history:?}"
    );
    let cy = app.join(&busy, &busy_code, "Cy").await;
    let sent = app
        .send(&cy.session_id, "the busy room never stopped")
        .await;
    // Cy's join notice comes first.
    for _ in 0..2 {
        let event = watching.next_of("new-message").await;
        if event.data["data"]["messageId"] == sent["messageId"] {
            app.stop().await;
            return;
        }
    }
    panic!("the stream of the busy room did not get the message");
}
