//! Joining, sessions, leaving, the participant limit and closed rooms.

use crate::helpers::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn join_creates_a_session_cookie_and_a_system_message() {
    let app = spawn_app().await;
    let (id, code) = app.create_conversation(None).await;
    let response = app.try_join(&id, &code, "  Ann  ").await;
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("sessionId="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Max-Age=86400")
    );
    assert!(!cookie.contains("Secure"));
    let body = envelope(response).await;
    assert_eq!(body["message"], "Joined conversation");
    let session_id = body["details"]["sessionId"].as_str().unwrap().to_owned();
    assert_eq!(body["details"]["conversationId"], id.as_str());

    let session =
        envelope(app.get_as(&session_id, "/api/v1/session").await).await["details"].clone();
    assert_eq!(session["displayName"], "Ann");
    assert_eq!(session["role"], "user");
    assert_eq!(session["avatarUrl"], serde_json::Value::Null);
    assert!(session["lastActiveAt"].is_i64());
    for field in ["sessionId", "userId", "conversationId", "createdAt"] {
        assert!(session[field].is_string(), "{field}");
    }

    let by_query = app
        .client
        .get(app.url(&format!("/api/v1/session?sessionId={session_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status(), 200);
    let by_cookie = app
        .client
        .get(app.url("/api/v1/session"))
        .header("cookie", format!("other=1; sessionId={session_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);

    let conversation = envelope(app.get_as(&session_id, "/api/v1/conversation").await).await;
    assert_eq!(conversation["details"]["conversationId"], id.as_str());

    let history = app.history(&session_id).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["body"], "Ann joined the conversation");
    assert_eq!(history[0]["type"], "system");
    assert_eq!(history[0]["senderUserId"], "system");
    assert_eq!(history[0]["senderDisplayName"], "System");
    assert_eq!(history[0]["senderRole"], "system");
}

#[tokio::test]
async fn missing_and_unknown_sessions_are_401_envelopes() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/session",
        "/api/v1/messages",
        "/api/v1/signaling",
        "/api/v1/conversation",
    ] {
        let (status, message, _) =
            failure(app.client.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!(
            (status, message.as_str()),
            (401, "No session found"),
            "{path}"
        );
        let (status, message, _) = failure(app.get_as("not-a-session", path).await).await;
        assert_eq!(
            (status, message.as_str()),
            (401, "Invalid session"),
            "{path}"
        );
    }
    let unread_body = app
        .client
        .post(app.url("/api/v1/messages"))
        .body("{broken")
        .send()
        .await
        .unwrap();
    assert_eq!(
        unread_body.status(),
        401,
        "401 comes before the body is read"
    );
}

#[tokio::test]
async fn wrong_codes_unknown_and_closed_rooms_are_403() {
    let app = spawn_app().await;
    let (id, code) = app.create_conversation(None).await;
    let wrong = if code == "AAAAAA" { "BBBBBB" } else { "AAAAAA" };
    let (status, message, _) = failure(app.try_join(&id, wrong, "Ann").await).await;
    assert_eq!(
        (status, message.as_str()),
        (403, "Invalid conversation or join code")
    );
    let (status, message, _) = failure(app.try_join("nobody-here", &code, "Ann").await).await;
    assert_eq!(
        (status, message.as_str()),
        (403, "Invalid conversation or join code")
    );
    let joined = app.join(&id, &code, "Early").await;
    app.post_json(
        &format!("/api/v1/admin/conversations/{id}/close"),
        &json!({ "adminPassword": ADMIN_PASSWORD }),
    )
    .await;
    let (status, _, _) = failure(app.try_join(&id, &code, "Late").await).await;
    assert_eq!(status, 403);
    let conversation = envelope(app.get_as(&joined.session_id, "/api/v1/conversation").await).await;
    assert_eq!(
        conversation["details"]["status"], "closed",
        "existing sessions keep working"
    );
    app.send(&joined.session_id, "still here").await;
}

#[tokio::test]
async fn join_validation_lists_the_offending_fields() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/v1/join",
            &json!({ "conversationId": "bad id", "joinCode": "abc", "displayName": "   ", "avatarUrl": "nope" }),
        )
        .await;
    let (status, message, body) = failure(response).await;
    assert_eq!((status, message.as_str()), (400, "Validation error"));
    let fields: Vec<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"][0].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["conversationId", "joinCode", "displayName", "avatarUrl"]
    );
    let long_name = app
        .post_json(
            "/api/v1/join",
            &json!({ "conversationId": "x", "joinCode": "ABCDEF", "displayName": "é".repeat(51) }),
        )
        .await;
    assert_eq!(failure(long_name).await.0, 400);
    let fifty = app
        .post_json(
            "/api/v1/join",
            &json!({ "conversationId": "x", "joinCode": "ABCDEF", "displayName": "é".repeat(50) }),
        )
        .await;
    assert_eq!(failure(fifty).await.0, 403, "50 characters is a valid name");
}

#[tokio::test]
async fn active_names_are_unique_case_insensitively() {
    let app = spawn_app().await;
    let (id, code) = app.create_conversation(None).await;
    let ann = app.join(&id, &code, "Ann").await;
    app.join(&id, &code, "ann").await;
    let mut stream = app.stream(&ann.session_id, None).await;
    stream.opening().await;
    let (status, message, _) = failure(app.try_join(&id, &code, " ANN ").await).await;
    assert_eq!(
        (status, message.as_str()),
        (409, "Display name is already taken in this conversation")
    );
}

#[tokio::test]
async fn the_participant_limit_counts_streams_and_recent_joins() {
    let app = spawn_app_with(|c| c.limits.max_participants = 2).await;
    let (id, code) = app.create_conversation(None).await;
    let a = app.join(&id, &code, "A").await;
    app.join(&id, &code, "B").await;
    let (status, message, _) = failure(app.try_join(&id, &code, "C").await).await;
    assert_eq!((status, message.as_str()), (403, "Conversation is full"));
    let mut stream = app.stream(&a.session_id, None).await;
    stream.opening().await;
    assert_eq!(failure(app.try_join(&id, &code, "D").await).await.0, 403);
}

#[tokio::test]
async fn leave_posts_a_message_ends_streams_and_the_session() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&joined[0], &joined[1]);
    let mut bob_stream = app.stream(&bob.session_id, None).await;
    bob_stream.opening().await;
    let mut ann_stream = app.stream(&ann.session_id, None).await;
    ann_stream.opening().await;

    let response = app
        .client
        .post(app.url("/api/v1/leave"))
        .header("x-session-id", &ann.session_id)
        .header("content-type", "text/plain")
        .body("ignored")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(envelope(response).await["message"], "Left conversation");

    let message = bob_stream.next_of("new-message").await;
    assert_eq!(message.data["data"]["body"], "Ann left the conversation");
    let leave = bob_stream.next_of("peer-leave").await;
    assert_eq!(leave.data["fromUserId"], ann.user_id.as_str());
    assert_eq!(leave.data["toUserId"], serde_json::Value::Null);
    assert!(
        ann_stream
            .next_within(Duration::from_secs(3))
            .await
            .is_none(),
        "Ann's stream ended"
    );
    assert_eq!(
        app.get_as(&ann.session_id, "/api/v1/session")
            .await
            .status(),
        401
    );
    bob_stream.expect_quiet(Duration::from_secs(4)).await;
}

#[tokio::test]
async fn leave_with_keep_session_keeps_it() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let response = app
        .client
        .post(app.url("/api/v1/leave?keepSession=true"))
        .header("x-session-id", &joined[0].session_id)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.get_as(&joined[0].session_id, "/api/v1/session")
            .await
            .status(),
        200
    );
}
