//! What this service adds to Chats3: edits, soft deletes, read receipts,
//! reaction routes and presence.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn authors_edit_and_soft_delete_their_messages_and_it_persists() {
    let app = spawn_app().await;
    let (id, joined) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&joined[0], &joined[1]);
    let mut bob_stream = app.stream(&bob.session_id, None).await;
    bob_stream.opening().await;
    let first = app.send(&ann.session_id, "typo hre").await;
    let second = app.send(&ann.session_id, "regret").await;
    let path =
        |m: &serde_json::Value| format!("/api/v1/messages/{}", m["messageId"].as_str().unwrap());

    let edited = app
        .client
        .patch(app.url(&path(&first)))
        .header("x-session-id", &ann.session_id)
        .json(&json!({ "body": "typo <i>here</i>" }))
        .send()
        .await
        .unwrap();
    let edited = envelope(edited).await;
    assert_eq!(edited["message"], "Message edited");
    assert_eq!(edited["details"]["body"], "typo here");
    assert!(edited["details"]["editedAt"].is_string());
    let event = bob_stream.next_of("message-edited").await;
    assert_eq!(event.data["data"], edited["details"]);

    let others = app
        .client
        .patch(app.url(&path(&first)))
        .header("x-session-id", &bob.session_id)
        .json(&json!({ "body": "hijack" }))
        .send()
        .await
        .unwrap();
    assert_eq!(failure(others).await.0, 403);

    let deleted = app
        .client
        .delete(app.url(&path(&second)))
        .header("x-session-id", &ann.session_id)
        .send()
        .await
        .unwrap();
    let deleted = envelope(deleted).await["details"].clone();
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["body"], "");
    let event = bob_stream.next_of("message-deleted").await;
    assert_eq!(event.data["data"]["messageId"], second["messageId"]);

    let missing = app
        .client
        .delete(app.url("/api/v1/messages/3f1d8c55-0000-4000-8000-000000000000"))
        .header("x-session-id", &ann.session_id)
        .send()
        .await
        .unwrap();
    assert_eq!(failure(missing).await.0, 404);

    let data_dir = app.stop().await;
    let app = spawn_app_in(data_dir, |_| {}).await;
    let cid = app.join(&id, &app.stored_join_code(&id), "Cid").await;
    let history = app.history(&cid.session_id).await;
    let find = |m: &serde_json::Value| {
        history
            .iter()
            .find(|h| h["messageId"] == m["messageId"])
            .unwrap()
            .clone()
    };
    assert_eq!(find(&first)["body"], "typo here");
    assert_eq!(find(&second)["deleted"], true);
}

#[tokio::test]
async fn read_receipts_reactions_and_presence_are_broadcast() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&joined[0], &joined[1]);
    let mut ann_stream = app.stream(&ann.session_id, None).await;
    ann_stream.opening().await;
    let message = app.send(&ann.session_id, "read me").await;
    let id = message["messageId"].as_str().unwrap();

    let read = app
        .post_as(
            &bob.session_id,
            &format!("/api/v1/messages/{id}/read"),
            &json!({}),
        )
        .await;
    assert_eq!(read.status(), 200);
    let event = ann_stream.next_of("message-read").await;
    assert_eq!(event.data["data"]["messageId"], id);
    assert_eq!(event.data["fromUserId"], bob.user_id.as_str());

    let added = app
        .post_as(
            &bob.session_id,
            &format!("/api/v1/messages/{id}/reactions"),
            &json!({ "emoji": "🎉" }),
        )
        .await;
    assert_eq!(added.status(), 200);
    assert_eq!(
        ann_stream.next_of("reaction-added").await.data["data"]["emoji"],
        "🎉"
    );
    let removed = app
        .client
        .delete(app.url(&format!("/api/v1/messages/{id}/reactions/%F0%9F%8E%89")))
        .header("x-session-id", &bob.session_id)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 200);
    assert_eq!(
        ann_stream.next_of("reaction-removed").await.data["data"]["emoji"],
        "🎉"
    );
    let map = envelope(app.get_as(&ann.session_id, "/api/v1/reactions").await).await;
    assert_eq!(map["details"], json!({}));

    let away = app
        .post_as(
            &bob.session_id,
            "/api/v1/presence",
            &json!({ "status": "away" }),
        )
        .await;
    assert_eq!(away.status(), 200);
    assert_eq!(
        ann_stream.next_of("presence-update").await.data["data"]["status"],
        "away"
    );
    let presence = envelope(app.get_as(&ann.session_id, "/api/v1/presence").await).await;
    assert_eq!(presence["details"][&bob.user_id]["status"], "away");
    let bad = app
        .post_as(
            &bob.session_id,
            "/api/v1/presence",
            &json!({ "status": "asleep" }),
        )
        .await;
    assert_eq!(failure(bad).await.0, 400);
}
