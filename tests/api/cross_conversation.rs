//! A session belongs to one conversation: used on another's messages or
//! attachments it finds nothing and changes nothing, and an embed ticket's
//! session is bound to the conversation its ticket names.

use crate::attachments::{PNG, upload};
use crate::embed::ticket;
use crate::helpers::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_session_cannot_edit_delete_read_or_react_to_another_conversations_message() {
    let app = spawn_app().await;
    let (_, first) = app.room_with(&["Ann"]).await;
    let (_, second) = app.room_with(&["Eve"]).await;
    let (ann, eve) = (&first[0].session_id, &second[0].session_id);
    let message = app.send(eve, "Eve's own words").await;
    let id = message["messageId"].as_str().unwrap().to_owned();
    let before = app.history(eve).await;
    let mut eve_events = app.stream(eve, None).await;
    eve_events.opening().await;

    let edit = app
        .client
        .patch(app.url(&format!("/api/v1/messages/{id}")))
        .header("x-session-id", ann)
        .json(&json!({ "body": "rewritten" }))
        .send()
        .await
        .unwrap();
    assert_eq!(failure(edit).await.0, 404);
    let delete = app
        .client
        .delete(app.url(&format!("/api/v1/messages/{id}")))
        .header("x-session-id", ann)
        .send()
        .await
        .unwrap();
    assert_eq!(failure(delete).await.0, 404);
    let reaction = app
        .post_as(
            ann,
            &format!("/api/v1/messages/{id}/reactions"),
            &json!({ "emoji": "👍" }),
        )
        .await;
    assert_eq!(failure(reaction).await.0, 404);
    let reaction = app
        .post_as(
            ann,
            "/api/v1/reactions",
            &json!({ "messageId": id, "emoji": "👍", "added": true }),
        )
        .await;
    assert_eq!(failure(reaction).await.0, 404);
    let read = app
        .post_as(ann, &format!("/api/v1/messages/{id}/read"), &json!({}))
        .await;
    assert_ne!(read.status(), 500);

    eve_events.expect_quiet(Duration::from_millis(300)).await;
    assert_eq!(app.history(eve).await, before);
    assert!(before.contains(&message));
    let reactions = envelope(app.get_as(eve, "/api/v1/reactions").await).await["details"].clone();
    assert_eq!(reactions, json!({}));
    assert!(
        app.history(ann)
            .await
            .iter()
            .all(|m| m["messageId"] != id.as_str()),
        "another conversation's message is not in this one's history"
    );
}

#[tokio::test]
async fn an_attachment_of_another_conversation_is_not_found_nor_its_download_redirected() {
    let app = spawn_app().await;
    let (_, first) = app.room_with(&["Ann"]).await;
    let (_, second) = app.room_with(&["Eve"]).await;
    let response = upload(
        &app,
        &second[0].session_id,
        "dot.png",
        "image/png",
        PNG.to_vec(),
    )
    .await;
    let id = envelope(response).await["details"]["attachmentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let download = app
        .get_as(
            &first[0].session_id,
            &format!("/api/v1/attachments/{id}?download=true"),
        )
        .await;
    assert_eq!(failure(download).await.0, 404);
}

#[tokio::test]
async fn a_tickets_session_reaches_only_the_conversation_its_ticket_names() {
    let app = spawn_app().await;
    let (named, _) = app.create_conversation(None).await;
    let (_, others) = app.room_with(&["Eve"]).await;
    let eve = &others[0].session_id;
    app.send(eve, "elsewhere").await;
    let before = app.history(eve).await;
    let (text, signature) = ticket(&named, |_| {});
    let body = envelope(
        app.post_json(
            "/api/v1/embed",
            &json!({ "ticket": text, "signature": signature }),
        )
        .await,
    )
    .await;
    let session = body["details"]["sessionId"].as_str().unwrap().to_owned();
    let conversation = envelope(app.get_as(&session, "/api/v1/conversation").await).await;
    assert_eq!(conversation["details"]["conversationId"], named.as_str());
    // A conversationId in the body does not move a send elsewhere.
    let sent = app
        .post_as(
            &session,
            "/api/v1/messages",
            &json!({
                "body": "where does this go",
                "clientTimestamp": "2025-01-01T00:00:00Z",
                "conversationId": conversation_of(&app, eve).await,
            }),
        )
        .await;
    assert_eq!(
        envelope(sent).await["details"]["conversationId"],
        named.as_str()
    );
    assert_eq!(app.history(eve).await, before);
    let history = app.history(&session).await;
    assert!(
        history
            .iter()
            .all(|m| m["conversationId"] == named.as_str())
    );
}

/// The id of the conversation `session` belongs to.
async fn conversation_of(app: &TestApp, session: &str) -> String {
    envelope(app.get_as(session, "/api/v1/conversation").await).await["details"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned()
}
