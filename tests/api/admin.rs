//! Admin routes.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn admin_creates_gets_and_closes_conversations() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/v1/admin/conversations",
            &json!({ "adminPassword": ADMIN_PASSWORD }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body = envelope(response).await;
    assert_eq!(body["message"], "Conversation created");
    let details = &body["details"];
    let id = details["conversationId"].as_str().unwrap();
    assert!(id.starts_with("conv-"));
    let code = details["joinCode"].as_str().unwrap();
    assert_eq!(code.len(), 6);
    assert!(
        code.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    );
    assert_eq!(details["status"], "active");
    assert_eq!(details["closedAt"], serde_json::Value::Null);
    assert!(details["createdAt"].as_str().unwrap().ends_with('Z'));

    let got = app
        .post_json(
            &format!("/api/v1/admin/conversations/{id}"),
            &json!({ "adminPassword": ADMIN_PASSWORD }),
        )
        .await;
    assert_eq!(envelope(got).await["details"], *details);

    let closed = app
        .post_json(
            &format!("/api/v1/admin/conversations/{id}/close"),
            &json!({ "adminPassword": ADMIN_PASSWORD }),
        )
        .await;
    let closed = envelope(closed).await["details"].clone();
    assert_eq!(closed["status"], "closed");
    assert!(closed["closedAt"].is_string());
}

#[tokio::test]
async fn custom_ids_are_validated_and_unique() {
    let app = spawn_app().await;
    app.create_conversation(Some("my_room-1")).await;
    let again = app
        .post_json(
            "/api/v1/admin/conversations",
            &json!({ "adminPassword": ADMIN_PASSWORD, "conversationId": "my_room-1" }),
        )
        .await;
    assert_eq!(failure(again).await.0, 409);
    for bad in ["../etc", "a b", "", &"x".repeat(101)] {
        let response = app
            .post_json(
                "/api/v1/admin/conversations",
                &json!({ "adminPassword": ADMIN_PASSWORD, "conversationId": bad }),
            )
            .await;
        let (status, message, body) = failure(response).await;
        assert_eq!(
            (status, message.as_str()),
            (400, "Validation error"),
            "{bad}"
        );
        assert_eq!(body["details"][0]["path"][0], "conversationId");
    }
}

#[tokio::test]
async fn admin_routes_check_the_password_after_the_body() {
    let app = spawn_app().await;
    let wrong = app
        .post_json(
            "/api/v1/admin/conversations",
            &json!({ "adminPassword": "nope" }),
        )
        .await;
    assert_eq!(failure(wrong).await.1, "Invalid admin password");
    let missing = app
        .post_json("/api/v1/admin/conversations", &json!({}))
        .await;
    let (status, message, _) = failure(missing).await;
    assert_eq!((status, message.as_str()), (400, "Validation error"));
    let not_object = app
        .post_json("/api/v1/admin/conversations", &json!("text"))
        .await;
    assert_eq!(failure(not_object).await.0, 400);
}

#[tokio::test]
async fn unknown_conversations_are_404() {
    let app = spawn_app().await;
    let body = json!({ "adminPassword": ADMIN_PASSWORD });
    for path in [
        "/api/v1/admin/conversations/missing",
        "/api/v1/admin/conversations/missing/close",
    ] {
        let (status, message, _) = failure(app.post_json(path, &body).await).await;
        assert_eq!((status, message.as_str()), (404, "Conversation not found"));
    }
}

#[tokio::test]
async fn loaded_conversations_are_bounded() {
    let app = spawn_app_with(|c| c.actors.max_conversations = 2).await;
    app.create_conversation(Some("one")).await;
    app.create_conversation(Some("two")).await;
    let response = app
        .post_json(
            "/api/v1/admin/conversations",
            &json!({ "adminPassword": ADMIN_PASSWORD, "conversationId": "three" }),
        )
        .await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_title_given_at_create_is_trimmed_kept_and_bounded() {
    let app = spawn_app().await;
    let created = app
        .post_json(
            "/api/v1/admin/conversations",
            &json!({ "adminPassword": ADMIN_PASSWORD, "title": "  Support <team> 🚀 " }),
        )
        .await;
    let details = envelope(created).await["details"].clone();
    assert_eq!(details["title"], "Support <team> 🚀");
    let id = details["conversationId"].as_str().unwrap();
    let code = details["joinCode"].as_str().unwrap();
    let member = app.join(id, code, "Ann").await;
    let seen = envelope(app.get_as(&member.session_id, "/api/v1/conversation").await).await;
    assert_eq!(seen["details"]["title"], "Support <team> 🚀");

    let untitled = app
        .post_json(
            "/api/v1/admin/conversations",
            &json!({ "adminPassword": ADMIN_PASSWORD }),
        )
        .await;
    let untitled = envelope(untitled).await["details"].clone();
    assert!(
        untitled.get("title").is_none(),
        "a room without a title answers as Chats3's did: {untitled}"
    );

    for title in [json!("   "), json!("x".repeat(101)), json!(7)] {
        let response = app
            .post_json(
                "/api/v1/admin/conversations",
                &json!({ "adminPassword": ADMIN_PASSWORD, "title": title }),
            )
            .await;
        let (status, message, body) = failure(response).await;
        assert_eq!((status, message.as_str()), (400, "Validation error"));
        assert_eq!(body["details"][0]["path"][0], "title", "{body}");
    }
    let longest = app
        .post_json(
            "/api/v1/admin/conversations",
            &json!({ "adminPassword": ADMIN_PASSWORD, "title": "é".repeat(100) }),
        )
        .await;
    assert_eq!(
        longest.status(),
        200,
        "100 characters, counted as characters"
    );
}

#[tokio::test]
async fn closing_a_room_tells_every_stream_once() {
    let app = spawn_app().await;
    let (id, joined) = app.room_with(&["Ann", "Bob"]).await;
    let mut ann = app.stream(&joined[0].session_id, None).await;
    ann.opening().await;
    let mut bob = app.stream(&joined[1].session_id, None).await;
    bob.opening().await;
    let path = format!("/api/v1/admin/conversations/{id}/close");
    let password = json!({ "adminPassword": ADMIN_PASSWORD });
    assert_eq!(app.post_json(&path, &password).await.status(), 200);
    for stream in [&mut ann, &mut bob] {
        let event = stream.next_of("conversation-closed").await;
        assert_eq!(event.data["fromUserId"], "system");
        assert_eq!(event.data["toUserId"], serde_json::Value::Null);
        assert_eq!(event.data["data"]["conversationId"], id.as_str());
        assert_eq!(event.data["data"]["status"], "closed");
        assert!(event.data["data"]["closedAt"].is_string());
    }
    assert_eq!(
        app.post_json(&path, &password).await.status(),
        200,
        "closing again is harmless"
    );
    ann.expect_quiet(std::time::Duration::from_millis(500))
        .await;
}
