//! Messages, idempotency, validation, body limits, pagination and reactions.

use crate::helpers::*;
use serde_json::{Value, json};

#[tokio::test]
async fn messages_are_stored_with_html_removed_and_text_kept() {
    let app = spawn_app().await;
    let (id, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    let stored = app
        .post_as(
            session,
            "/api/v1/messages",
            &json!({
                "body": "a < b & c <b>bold</b><script>alert(1)</script><img src=x onerror=alert(1)>",
                "clientTimestamp": "2025-03-04T05:06:07.089Z",
                "type": "file",
                "attachmentId": "att-1",
                "filename": "f.png",
                "mimetype": "image/png",
                "url": "/api/v1/attachments/att-1?download=true",
            }),
        )
        .await;
    let body = envelope(stored).await;
    assert_eq!(body["message"], "Message saved");
    let message = body["details"].clone();
    assert_eq!(message["body"], "a < b & c bold");
    assert_eq!(message["conversationId"], id.as_str());
    assert_eq!(message["senderDisplayName"], "Ann");
    assert_eq!(message["senderRole"], "user");
    assert_eq!(message["type"], "file");
    assert_eq!(message["clientTimestamp"], "2025-03-04T05:06:07.089Z");
    assert_eq!(message["url"], "/api/v1/attachments/att-1?download=true");
    let received = message["serverReceivedAt"].as_str().unwrap();
    assert!(
        received.ends_with('Z') && received.len() == 24,
        "{received}"
    );
    let history = app.history(session).await;
    assert_eq!(history.last().unwrap(), &message);
}

#[tokio::test]
async fn message_ids_make_sends_idempotent() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let mut bob = app.stream(&joined[1].session_id, None).await;
    bob.opening().await;
    let id = "7f2c7e1a-3c4b-4e55-9d2a-0c6f1f0a9b11";
    let body =
        json!({ "messageId": id, "body": "once", "clientTimestamp": "2025-01-01T00:00:00Z" });
    let first = envelope(
        app.post_as(&joined[0].session_id, "/api/v1/messages", &body)
            .await,
    )
    .await["details"]
        .clone();
    let second = envelope(
        app.post_as(&joined[0].session_id, "/api/v1/messages", &body)
            .await,
    )
    .await["details"]
        .clone();
    assert_eq!(first, second);
    assert_eq!(first["messageId"], id);
    let history = app.history(&joined[0].session_id).await;
    assert_eq!(history.iter().filter(|m| m["messageId"] == id).count(), 1);
    assert_eq!(
        bob.next_of("new-message").await.data["data"]["body"],
        "once"
    );
    bob.expect_quiet(std::time::Duration::from_millis(500))
        .await;
}

#[tokio::test]
async fn bad_message_bodies_are_400_with_fields() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "body": "x" }), "clientTimestamp"),
        (
            json!({ "body": "x", "clientTimestamp": "yesterday" }),
            "clientTimestamp",
        ),
        (
            json!({ "body": 5, "clientTimestamp": "2025-01-01T00:00:00Z" }),
            "body",
        ),
        (
            json!({ "body": "x".repeat(10_001), "clientTimestamp": "2025-01-01T00:00:00Z" }),
            "body",
        ),
        (
            json!({ "body": "x", "type": "video", "clientTimestamp": "2025-01-01T00:00:00Z" }),
            "type",
        ),
        (
            json!({ "body": "x", "messageId": "nope", "clientTimestamp": "2025-01-01T00:00:00Z" }),
            "messageId",
        ),
        (
            json!({ "body": "x", "filename": "f".repeat(256), "clientTimestamp": "2025-01-01T00:00:00Z" }),
            "filename",
        ),
        (
            json!({ "body": "x", "url": "u".repeat(2049), "clientTimestamp": "2025-01-01T00:00:00Z" }),
            "url",
        ),
    ];
    for (body, field) in cases {
        let (status, message, answer) =
            failure(app.post_as(session, "/api/v1/messages", &body).await).await;
        assert_eq!(
            (status, message.as_str()),
            (400, "Validation error"),
            "{field}"
        );
        assert_eq!(answer["details"][0]["path"][0], field);
    }
    let max = json!({ "body": "é".repeat(10_000), "clientTimestamp": "2025-01-01T00:00:00Z" });
    assert_eq!(
        app.post_as(session, "/api/v1/messages", &max)
            .await
            .status(),
        200
    );
    let malformed = app
        .client
        .post(app.url("/api/v1/messages"))
        .header("x-session-id", session)
        .header("content-type", "application/json")
        .body("{\"body\":")
        .send()
        .await
        .unwrap();
    assert_eq!(failure(malformed).await.1, "Validation error");
}

#[tokio::test]
async fn oversize_json_bodies_are_413_in_the_envelope() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let huge = format!(
        "{{\"body\":\"{}\",\"clientTimestamp\":\"2025-01-01T00:00:00Z\"}}",
        "x".repeat(1_100_000)
    );
    let response = app
        .client
        .post(app.url("/api/v1/messages"))
        .header("x-session-id", &joined[0].session_id)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    let (status, _, _) = failure(response).await;
    assert_eq!(status, 413);
    let admin = app
        .client
        .post(app.url("/api/v1/admin/conversations"))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"adminPassword\":\"{}\"}}",
            "p".repeat(1_100_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        failure(admin).await.0,
        413,
        "413 comes before any other check"
    );
}

async fn page(app: &TestApp, session: &str, query: &str) -> Value {
    let response = app
        .get_as(session, &format!("/api/v1/messages?{query}"))
        .await;
    assert_eq!(response.status(), 200);
    envelope(response).await["details"].clone()
}

fn bodies(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn pages_cover_history_exactly_once_in_both_directions() {
    let app = spawn_app_with(|c| c.actors.history_tail = 3).await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    for i in 0..7 {
        app.send(session, &format!("m{i}")).await;
    }
    // The tail holds 3: older pages come from storage once flushed.
    eventually("batches flushed", || async {
        app.metric("chats3_messages_pending").await == 0
    })
    .await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let query = if cursor.is_empty() {
            "limit=3".to_owned()
        } else {
            format!("limit=3&cursor={cursor}")
        };
        let p = page(&app, session, &query).await;
        let mut b = bodies(&p);
        assert!(!b.is_empty(), "no empty trailing page");
        b.extend(seen);
        seen = b;
        if !p["hasMore"].as_bool().unwrap() {
            assert_eq!(p["nextCursor"], Value::Null);
            break;
        }
        cursor = p["nextCursor"].as_str().unwrap().to_owned();
    }
    let expected: Vec<String> = std::iter::once("Ann joined the conversation".to_owned())
        .chain((0..7).map(|i| format!("m{i}")))
        .collect();
    assert_eq!(seen, expected);

    let mut forward = Vec::new();
    let mut cursor = "0".to_owned();
    loop {
        let p = page(
            &app,
            session,
            &format!("limit=3&direction=newer&cursor={cursor}"),
        )
        .await;
        forward.extend(bodies(&p));
        cursor = p["nextCursor"].as_str().unwrap().to_owned();
        if !p["hasMore"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(forward, expected);
    let none_newer = page(&app, session, &format!("direction=newer&cursor={cursor}")).await;
    assert_eq!(none_newer["messages"], json!([]));
    assert_eq!(none_newer["hasMore"], false);

    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "direction=up",
        "cursor=abc",
    ] {
        let (status, _, _) = failure(
            app.get_as(session, &format!("/api/v1/messages?{bad}"))
                .await,
        )
        .await;
        assert_eq!(status, 400, "{bad}");
    }
}

#[tokio::test]
async fn the_compatible_history_returns_the_last_100_oldest_first() {
    let app = spawn_app_with(|c| c.actors.history_tail = 20).await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    for i in 0..105 {
        app.send(session, &format!("m{i}")).await;
    }
    let history = app.history(session).await;
    assert_eq!(history.len(), 100);
    assert_eq!(history[0]["body"], "m5");
    assert_eq!(history[99]["body"], "m104");
    let times: Vec<&str> = history
        .iter()
        .map(|m| m["serverReceivedAt"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[tokio::test]
async fn reactions_allow_one_emoji_per_user_per_message() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&joined[0], &joined[1]);
    let message = app.send(&ann.session_id, "react to me").await;
    let id = message["messageId"].as_str().unwrap();
    let mut ann_stream = app.stream(&ann.session_id, None).await;
    ann_stream.opening().await;
    let react = async |session: &str, emoji: &str, added: bool| {
        let body = json!({ "messageId": id, "emoji": emoji, "added": added });
        app.post_as(session, "/api/v1/reactions", &body).await
    };
    for (session, emoji, added) in [
        (&bob.session_id, "👍", true),
        (&bob.session_id, "👍", true),
        (&ann.session_id, "👍", true),
        (&bob.session_id, "❤️", true),
    ] {
        let response = react(session, emoji, added).await;
        assert_eq!(envelope(response).await["message"], "Reaction saved");
    }
    let map =
        envelope(app.get_as(&ann.session_id, "/api/v1/reactions").await).await["details"].clone();
    assert_eq!(
        map,
        json!({ id: { "❤️": [bob.user_id], "👍": [ann.user_id] } })
    );
    let event = ann_stream.next_of("reaction-added").await;
    assert_eq!(event.data["data"]["emoji"], "👍");
    react(&ann.session_id, "❤️", false).await;
    react(&ann.session_id, "👍", false).await;
    react(&bob.session_id, "❤️", false).await;
    let map =
        envelope(app.get_as(&ann.session_id, "/api/v1/reactions").await).await["details"].clone();
    assert_eq!(map, json!({}));
    let bad = react(&ann.session_id, "this is far too long", true).await;
    assert_eq!(failure(bad).await.0, 400);
}
