//! HTML a user types never runs where it is shown: message bodies lose
//! their markup when sent, edited or posted by an integrator; every other
//! user-supplied string (names, file names, emoji, ids) reaches browsers
//! only inside JSON answers (`nosniff`), and the one page that echoes
//! input, `/room/:id`, escapes it.

use crate::helpers::*;
use crate::system_message::signed;
use chats3_actors::time::{iso_from_ms, now_ms};
use serde_json::json;

const MARKUP: &str = "<img src=x onerror=alert(1)><script>alert(2)</script>";

fn is_json(response: &reqwest::Response) -> bool {
    response.headers()["content-type"]
        .to_str()
        .is_ok_and(|t| t.starts_with("application/json"))
        && response.headers()["x-content-type-options"] == "nosniff"
}

#[tokio::test]
async fn edited_and_integrator_bodies_lose_their_markup_too() {
    let app = spawn_app().await;
    let (id, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    let sent = app.send(session, &format!("hi {MARKUP}")).await;
    assert_eq!(sent["body"], "hi ");
    let message_id = sent["messageId"].as_str().unwrap();
    let edited = app
        .client
        .patch(app.url(&format!("/api/v1/messages/{message_id}")))
        .header("x-session-id", session)
        .json(&json!({ "body": format!("<b>bold</b>{MARKUP} edit") }))
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), 200);
    let notice = app
        .post_json(
            "/api/v1/system-message",
            &signed(
                &id,
                &format!("notice {MARKUP}"),
                &iso_from_ms(now_ms()),
                INTEGRATOR_SECRET,
            ),
        )
        .await;
    assert_eq!(envelope(notice).await["details"]["body"], "notice ");
    let history = app.history(session).await;
    let stored = history
        .iter()
        .find(|m| m["messageId"] == message_id)
        .unwrap();
    assert_eq!(stored["body"], "bold edit");
    for message in &history {
        let body = message["body"].as_str().unwrap();
        assert!(!body.contains('<'), "{body}");
    }
}

#[tokio::test]
async fn names_file_names_and_emoji_with_markup_come_back_only_as_json() {
    let app = spawn_app().await;
    let (id, code) = app.create_conversation(None).await;
    let name = "<svg onload=alert(1)>";
    let joined = app.try_join(&id, &code, name).await;
    assert!(is_json(&joined));
    let session = envelope(joined).await["details"]["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let sent = app
        .post_as(
            &session,
            "/api/v1/messages",
            &json!({
                "body": "file",
                "clientTimestamp": "2025-01-01T00:00:00Z",
                "type": "file",
                "filename": "<img src=x onerror=alert(1)>.png",
                "attachmentId": "a1",
                "mimetype": "image/png",
            }),
        )
        .await;
    assert!(is_json(&sent));
    let message_id = envelope(sent).await["details"]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();
    let reacted = app
        .post_as(
            &session,
            "/api/v1/reactions",
            &json!({ "messageId": message_id, "emoji": "<b>x</b>", "added": true }),
        )
        .await;
    assert_ne!(reacted.status(), 500);
    for path in [
        "/api/v1/session",
        "/api/v1/messages",
        "/api/v1/reactions",
        "/api/v1/presence",
        "/api/v1/conversation",
    ] {
        let response = app.get_as(&session, path).await;
        assert!(is_json(&response), "{path}");
    }
    for page in [format!("/room/{id}"), "/join".into(), "/admin".into()] {
        let html = app
            .client
            .get(app.url(&page))
            .header("x-session-id", &session)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !html.contains(name) && !html.contains("onerror=alert"),
            "{page} echoes input"
        );
    }
}

#[tokio::test]
async fn a_room_id_with_quotes_and_tags_is_escaped_in_its_page() {
    let app = spawn_app().await;
    for attack in [
        "%27onmouseover%3Dalert(1)%27",
        "%3C%2Fscript%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    ] {
        let html = app
            .client
            .get(app.url(&format!("/room/{attack}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!html.contains("'onmouseover"), "{html}");
        assert!(!html.contains("</script><script>alert"), "{html}");
    }
}
