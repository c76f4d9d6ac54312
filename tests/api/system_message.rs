//! Integrator system messages signed with HMAC.

use crate::helpers::*;
use chats3_actors::time::{iso_from_ms, now_ms};
use serde_json::{Value, json};

pub fn signed(conversation: &str, body: &str, timestamp: &str, secret: &str) -> Value {
    let text = serde_json::to_string(&json!({
        "integratorId": INTEGRATOR_ID,
        "conversationId": conversation,
        "body": body,
        "timestamp": timestamp,
    }))
    .unwrap();
    json!({
        "integratorId": INTEGRATOR_ID,
        "conversationId": conversation,
        "body": body,
        "timestamp": timestamp,
        "signature": hmac(secret, &text),
    })
}

#[tokio::test]
async fn signed_system_messages_are_stored_and_broadcast() {
    let app = spawn_app().await;
    let (id, joined) = app.room_with(&["Ann"]).await;
    let mut stream = app.stream(&joined[0].session_id, None).await;
    stream.opening().await;
    let body = "Order <b>#42</b> shipped — ✓ \"now\"";
    let response = app
        .post_json(
            "/api/v1/system-message",
            &signed(&id, body, &iso_from_ms(now_ms()), INTEGRATOR_SECRET),
        )
        .await;
    assert_eq!(response.status(), 200);
    let answer = envelope(response).await;
    assert_eq!(answer["message"], "System message sent");
    let message = answer["details"].clone();
    assert_eq!(message["body"], "Order #42 shipped — ✓ \"now\"");
    assert_eq!(message["senderUserId"], "system");
    assert_eq!(message["senderRole"], "system");
    assert_eq!(message["type"], "system");
    let event = stream.next_of("new-message").await;
    assert_eq!(event.data["fromUserId"], "system");
    assert_eq!(event.data["data"], message);
    assert_eq!(
        app.history(&joined[0].session_id).await.last().unwrap(),
        &message
    );
}

#[tokio::test]
async fn system_message_failures_are_403_after_body_validation() {
    let app = spawn_app().await;
    let (id, _) = app.create_conversation(None).await;
    let now = iso_from_ms(now_ms());
    let mut unknown = signed(&id, "x", &now, INTEGRATOR_SECRET);
    unknown["integratorId"] = json!("nobody");
    let cases = [
        (unknown, "Unknown integrator"),
        (signed(&id, "x", &now, "wrong"), "Invalid signature"),
        (
            signed(
                &id,
                "x",
                &iso_from_ms(now_ms() - 120_000),
                INTEGRATOR_SECRET,
            ),
            "Request timestamp too old or in future",
        ),
        (
            signed(
                &id,
                "x",
                &iso_from_ms(now_ms() + 120_000),
                INTEGRATOR_SECRET,
            ),
            "Request timestamp too old or in future",
        ),
    ];
    for (body, expected) in cases {
        let (status, message, _) =
            failure(app.post_json("/api/v1/system-message", &body).await).await;
        assert_eq!((status, message.as_str()), (403, expected));
    }
    let mut unsigned = signed(&id, "x", &now, INTEGRATOR_SECRET);
    unsigned.as_object_mut().unwrap().remove("signature");
    let (status, _, body) = failure(app.post_json("/api/v1/system-message", &unsigned).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["details"][0]["path"][0], "signature");
    let missing = signed("no-such-room", "x", &now, INTEGRATOR_SECRET);
    assert_eq!(
        failure(app.post_json("/api/v1/system-message", &missing).await)
            .await
            .0,
        404
    );
}
