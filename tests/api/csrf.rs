//! Cross-site request forgery: JSON routes take only JSON content types,
//! and state-changing requests from a foreign `Origin` are refused.

use crate::helpers::*;
use serde_json::json;

const FOREIGN: &str = "https://attacker.test";

#[tokio::test]
async fn a_json_route_refuses_a_body_sent_as_text_plain() {
    let app = spawn_app_with(|c| c.server.production = true).await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    let message = json!({ "body": "forged", "clientTimestamp": "2025-01-01T00:00:00.000Z" });
    for (path, body) in [
        ("/api/v1/messages", message.to_string()),
        ("/api/v1/presence", json!({ "status": "away" }).to_string()),
    ] {
        let response = app
            .client
            .post(app.url(path))
            .header("cookie", format!("sessionId={session}"))
            .header("content-type", "text/plain")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, text, _) = failure(response).await;
        assert_eq!((status, text.as_str()), (400, "Validation error"), "{path}");
    }
    assert!(
        app.history(session)
            .await
            .iter()
            .all(|m| m["body"] != "forged")
    );
    let response = app
        .client
        .post(app.url("/api/v1/presence"))
        .header("x-session-id", session)
        .header(
            "content-type",
            "application/merge-patch+json; charset=utf-8",
        )
        .body(json!({ "status": "away" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "+json types are JSON");
    let leave = app
        .client
        .post(app.url("/api/v1/leave?keepSession=true"))
        .header("x-session-id", session)
        .header("content-type", "text/plain")
        .body("ignored")
        .send()
        .await
        .unwrap();
    assert_eq!(
        leave.status(),
        200,
        "leave takes no body, so ignores its type"
    );
}

#[tokio::test]
async fn a_state_changing_request_from_a_foreign_origin_is_refused() {
    let app = spawn_app_with(|c| c.server.production = true).await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    let message = json!({ "body": "forged", "clientTimestamp": "2025-01-01T00:00:00.000Z" });
    for (path, body) in [
        ("/api/v1/messages", message.clone()),
        ("/api/v1/presence", json!({ "status": "away" })),
        ("/api/v1/leave", json!({})),
    ] {
        let response = app
            .client
            .post(app.url(path))
            .header("cookie", format!("sessionId={session}"))
            .header("origin", FOREIGN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, text, _) = failure(response).await;
        assert_eq!(
            (status, text.as_str()),
            (403, "Origin not allowed"),
            "{path}"
        );
    }
    let response = app
        .client
        .get(app.url("/api/v1/session"))
        .header("x-session-id", session)
        .header("origin", FOREIGN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "reads are not state-changing; the session survived"
    );
}

#[tokio::test]
async fn its_own_host_public_url_and_integrator_origins_may_change_state() {
    let app = spawn_app_with(|c| c.server.public_url = "https://chat.example.org".into()).await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    for origin in [
        app.address.as_str(),
        "https://chat.example.org",
        INTEGRATOR_ORIGIN,
        "https://shop.example.com",
    ] {
        let response = app
            .client
            .post(app.url("/api/v1/messages"))
            .header("x-session-id", session)
            .header("origin", origin)
            .json(&json!({ "body": origin, "clientTimestamp": "2025-01-01T00:00:00.000Z" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{origin}");
    }
    for origin in [
        "http://127.0.0.1:1",
        "https://evil.net/.example.com",
        "null",
    ] {
        let response = app
            .client
            .post(app.url("/api/v1/presence"))
            .header("x-session-id", session)
            .header("origin", origin)
            .json(&json!({ "status": "away" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{origin}");
    }
}
