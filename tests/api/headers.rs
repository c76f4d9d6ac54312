//! Health, envelope 404/405, security headers, CORS and rate limits.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn health_answers_ok_with_security_headers() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'self' http://localhost:4000 https://*.example.com"),
        "{csp}"
    );
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, json!({"status": "ok", "service": "chats3"}));
}

#[tokio::test]
async fn production_mode_sends_hsts_and_secure_cookies() {
    let app = spawn_app_with(|c| c.server.production = true).await;
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert!(
        response.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let (id, code) = app.create_conversation(None).await;
    let response = app.try_join(&id, &code, "Ann").await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("Secure")
            && cookie.contains("SameSite=None")
            && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_in_the_envelope() {
    let app = spawn_app().await;
    let (status, message, _) = failure(
        app.client
            .get(app.url("/api/v1/nothing"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, message.as_str()), (404, "Route not found"));
    let (status, _, _) = failure(
        app.client
            .delete(app.url("/api/v1/join"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 405);
    let response = app
        .client
        .get(app.url("/api/v1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn cors_echoes_integrator_origins_only() {
    let app = spawn_app().await;
    for origin in [INTEGRATOR_ORIGIN, "https://shop.example.com"] {
        let response = app
            .client
            .get(app.url("/health"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["access-control-allow-origin"], origin);
        assert_eq!(
            response.headers()["access-control-allow-credentials"],
            "true"
        );
    }
    let response = app
        .client
        .get(app.url("/health"))
        .header("origin", "https://evil.test")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/messages"))
        .header("origin", INTEGRATOR_ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "x-session-id,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status() == 200 || preflight.status() == 204);
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("x-session-id"), "{allowed}");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.rate_limit.per_ip_per_minute = 5;
        c.rate_limit.admin_per_minute = 2;
    })
    .await;
    let body = json!({ "adminPassword": ADMIN_PASSWORD, "conversationId": "nope" });
    for _ in 0..2 {
        let status = app
            .post_json("/api/v1/admin/conversations/nope", &body)
            .await
            .status();
        assert_eq!(status, 404);
    }
    let response = app
        .post_json("/api/v1/admin/conversations/nope", &body)
        .await;
    assert_eq!(response.status(), 429);
    assert!(
        response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    for _ in 0..2 {
        app.client
            .get(app.url("/api/v1/session"))
            .send()
            .await
            .unwrap();
    }
    let (status, message, _) = failure(
        app.client
            .get(app.url("/api/v1/session"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 429);
    assert!(message.starts_with("Rate limit exceeded"), "{message}");
    assert_eq!(
        app.client
            .get(app.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "health is exempt"
    );
}

#[tokio::test]
async fn metrics_and_readiness_are_exposed() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    app.send(&joined[0].session_id, "hello").await;
    let text = app.metrics().await;
    assert!(text.contains("chats3_messages_accepted_total 1"), "{text}");
    assert!(text.contains("chats3_storage_puts_total"), "{text}");
    assert_eq!(
        app.client
            .get(app.url("/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn pages_are_served_with_the_room_id_escaped() {
    let app = spawn_app().await;
    for path in ["/join", "/admin"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    let root = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(root.status(), 302);
    assert_eq!(root.headers()["location"], "/join");
    let room = app
        .client
        .get(app.url("/room/%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E"))
        .send()
        .await
        .unwrap();
    assert_eq!(room.status(), 200);
    let html = room.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)"), "the id is escaped");
    assert!(html.contains("&quot;&gt;&lt;script&gt;"), "{html}");
}
