//! Signed tickets: POST /api/v1/embed, GET /embed, and every failure mode.

use crate::helpers::*;
use chats3_actors::time::iso_from_ms;
use serde_json::{Value, json};

/// A signed ticket for `conversation` with a fresh nonce, `adjust`ed
/// before signing: its text and signature.
pub fn ticket(conversation: &str, adjust: impl FnOnce(&mut Value)) -> (String, String) {
    let now = chats3_actors::time::now_ms();
    let mut t = json!({
        "integratorId": INTEGRATOR_ID,
        "conversationId": conversation,
        "userId": "ext-user-1",
        "displayName": "Integrator User",
        "avatarUrl": "https://cdn.example.com/a.png",
        "role": "admin",
        "origin": INTEGRATOR_ORIGIN,
        "issuedAt": iso_from_ms(now),
        "expiresAt": iso_from_ms(now + 300_000),
        "nonce": uuid::Uuid::new_v4().to_string(),
    });
    adjust(&mut t);
    let text = serde_json::to_string(&t).unwrap();
    let signature = hmac(INTEGRATOR_SECRET, &text);
    (text, signature)
}

#[tokio::test]
async fn a_valid_ticket_opens_a_session_with_its_identity() {
    let app = spawn_app().await;
    let (id, _) = app.create_conversation(None).await;
    let (text, signature) = ticket(&id, |_| {});
    let response = app
        .post_json(
            "/api/v1/embed",
            &json!({ "ticket": text, "signature": signature }),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("sessionId=")
    );
    let body = envelope(response).await;
    assert_eq!(body["message"], "Session created");
    let session_id = body["details"]["sessionId"].as_str().unwrap();
    assert_eq!(body["details"]["conversationId"], id.as_str());
    let session =
        envelope(app.get_as(session_id, "/api/v1/session").await).await["details"].clone();
    assert_eq!(session["userId"], "ext-user-1");
    assert_eq!(session["displayName"], "Integrator User");
    assert_eq!(session["avatarUrl"], "https://cdn.example.com/a.png");
    assert_eq!(session["role"], "admin");
}

#[tokio::test]
async fn the_embed_page_sets_the_cookie_and_redirects_into_the_room() {
    let app = spawn_app().await;
    let (id, _) = app.create_conversation(Some("embed-room")).await;
    let (text, signature) = ticket(&id, |_| {});
    let response = app
        .client
        .get(app.url("/embed"))
        .query(&[("ticket", &text), ("signature", &signature)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/room/embed-room?sessionId="),
        "{location}"
    );
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("sessionId=")
    );

    let replay = app
        .client
        .get(app.url("/embed"))
        .query(&[("ticket", &text), ("signature", &signature)])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 403);
    assert!(
        replay.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(
        replay.text().await.unwrap(),
        "Nonce already used (replay attack)"
    );

    let missing = app
        .client
        .get(app.url("/embed?ticket=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(missing.text().await.unwrap(), "Missing ticket or signature");
}

#[tokio::test]
async fn every_ticket_failure_says_which_check_failed() {
    let app = spawn_app().await;
    let (id, _) = app.create_conversation(None).await;
    let now = chats3_actors::time::now_ms();
    type Adjust = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(Adjust, &str)> = vec![
        (
            Box::new(|t| t["nonce"] = json!("")),
            "Missing required fields",
        ),
        (
            Box::new(|t| {
                t.as_object_mut().unwrap().remove("userId");
            }),
            "Missing required fields",
        ),
        (
            Box::new(|t| t["integratorId"] = json!("someone-else")),
            "Unknown integrator",
        ),
        (
            Box::new(move |t| t["expiresAt"] = json!(iso_from_ms(now - 1000))),
            "Ticket expired",
        ),
        (
            Box::new(move |t| t["issuedAt"] = json!(iso_from_ms(now - 61_000))),
            "Ticket too old",
        ),
        (
            Box::new(move |t| t["issuedAt"] = json!(iso_from_ms(now + 600_000))),
            "Ticket issued in the future",
        ),
        (
            Box::new(|t| t["origin"] = json!("https://evil.test")),
            "Origin not allowed",
        ),
        (
            Box::new(|t| t["origin"] = json!("https://evil.net/.example.com")),
            "Origin not allowed",
        ),
        (
            Box::new(|t| t["avatarUrl"] = json!("javascript:alert(1)")),
            "Invalid user in ticket",
        ),
        (
            Box::new(|t| t["origin"] = json!("https://shop.example.com")),
            "",
        ),
    ];
    for (adjust, expected) in cases {
        let (text, signature) = ticket(&id, adjust);
        let response = app
            .post_json(
                "/api/v1/embed",
                &json!({ "ticket": text, "signature": signature }),
            )
            .await;
        if expected.is_empty() {
            assert_eq!(response.status(), 200, "wildcard origins are allowed");
            continue;
        }
        let (status, message, _) = failure(response).await;
        assert_eq!((status, message.as_str()), (403, expected));
    }
    let (text, _) = ticket(&id, |_| {});
    let forged = hmac("wrong-secret", &text);
    let (status, message, _) = failure(
        app.post_json(
            "/api/v1/embed",
            &json!({ "ticket": text, "signature": forged }),
        )
        .await,
    )
    .await;
    assert_eq!((status, message.as_str()), (403, "Invalid signature"));

    let (text, signature) = ticket(&id, |_| {});
    let body = json!({ "ticket": text, "signature": signature });
    assert_eq!(app.post_json("/api/v1/embed", &body).await.status(), 200);
    let (status, message, _) = failure(app.post_json("/api/v1/embed", &body).await).await;
    assert_eq!(
        (status, message.as_str()),
        (403, "Nonce already used (replay attack)")
    );

    let (status, message, _) = failure(
        app.post_json("/api/v1/embed", &json!({ "ticket": "{}" }))
            .await,
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (400, "Validation error"),
        "a missing signature is 400"
    );
}

#[tokio::test]
async fn tickets_for_closed_or_missing_conversations_are_refused() {
    let app = spawn_app().await;
    let (id, _) = app.create_conversation(None).await;
    app.post_json(
        &format!("/api/v1/admin/conversations/{id}/close"),
        &json!({ "adminPassword": ADMIN_PASSWORD }),
    )
    .await;
    let (text, signature) = ticket(&id, |_| {});
    let (status, _, _) = failure(
        app.post_json(
            "/api/v1/embed",
            &json!({ "ticket": text, "signature": signature }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 403);
    let (text, signature) = ticket("does-not-exist", |_| {});
    let (status, _, _) = failure(
        app.post_json(
            "/api/v1/embed",
            &json!({ "ticket": text, "signature": signature }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_ticket_issued_in_the_future_is_refused_on_the_embed_page_too() {
    let app = spawn_app().await;
    let (id, _) = app.create_conversation(None).await;
    let now = chats3_actors::time::now_ms();
    let (text, signature) = ticket(&id, |t| t["issuedAt"] = json!(iso_from_ms(now + 600_000)));
    let response = app
        .client
        .get(app.url("/embed"))
        .query(&[("ticket", &text), ("signature", &signature)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.text().await.unwrap(),
        "Ticket issued in the future"
    );
    let (text, signature) = ticket(&id, |t| t["issuedAt"] = json!(iso_from_ms(now + 30_000)));
    let body = json!({ "ticket": text, "signature": signature });
    assert_eq!(
        app.post_json("/api/v1/embed", &body).await.status(),
        200,
        "a clock 30 s ahead is within the allowed skew"
    );
}

#[tokio::test]
async fn a_browser_gets_a_friendly_embed_page_that_tells_only_an_allowed_host() {
    let app = spawn_app().await;
    let (id, _) = app.create_conversation(None).await;
    let (text, signature) = ticket(&id, |_| {});
    let browser_get = |referer: &'static str| {
        app.client
            .get(app.url("/embed"))
            .query(&[("ticket", &text), ("signature", &signature)])
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .header("referer", referer)
    };
    let first = browser_get("http://localhost:4000/shop")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 302);

    let replay = browser_get("http://localhost:4000/shop")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 403);
    assert!(
        replay.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(replay.headers()["cache-control"], "no-store");
    let page = replay.text().await.unwrap();
    assert!(
        page.contains("<h1>This chat link has expired</h1>"),
        "{page}"
    );
    assert!(page.contains("data-reason=\"ticket-expired\""));
    assert!(page.contains("data-host-origin=\"http://localhost:4000\""));
    assert!(!page.contains("Nonce"), "no server text: {page}");

    // A page on an origin no integrator allows is not told; the ticket's
    // (allowed) origin is, as the Referer may be absent or foreign.
    let foreign = browser_get("https://evil.test/").send().await.unwrap();
    let page = foreign.text().await.unwrap();
    assert!(
        page.contains("data-host-origin=\"http://localhost:4000\""),
        "{page}"
    );
    let garbage = app
        .client
        .get(app.url("/embed?ticket=nope&signature=x"))
        .header("accept", "text/html")
        .header("referer", "https://evil.test/")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 403);
    let page = garbage.text().await.unwrap();
    assert!(page.contains("data-host-origin=\"\""), "{page}");
    assert!(page.contains("The chat could not be opened"));
}

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_example_ticket_server_signs_a_fresh_accepted_ticket_each_call() {
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: node is not installed to run static/examples/ticket-server.mjs");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let site = format!("http://127.0.0.1:{port}");
    let origin = site.clone();
    let app = spawn_app_with(move |c| c.integrators[0].allowed_origins = vec![origin]).await;
    let (id, _) = app.create_conversation(None).await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/examples/ticket-server.mjs");
    let _server = Child(
        std::process::Command::new("node")
            .arg(script)
            .env("CHATS3_URL", app.url(""))
            .env("PORT", port.to_string())
            .env("SITE_ORIGIN", &site)
            .env("INTEGRATOR_ID", INTEGRATOR_ID)
            .env("INTEGRATOR_SECRET", INTEGRATOR_SECRET)
            .env("CONVERSATION_ID", &id)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let mut page = None;
    for _ in 0..100 {
        if let Ok(response) = client.get(format!("{site}/")).send().await {
            page = Some(response.text().await.unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let page = page.expect("the example server answers");
    let tag = format!(
        "<script src=\"{}/static/embed.js\" data-ticket-url=\"/ticket\"",
        app.url("")
    );
    assert!(page.contains(&tag), "{page}");

    let mut nonces = Vec::new();
    for _ in 0..2 {
        let signed: Value = client
            .post(format!("{site}/ticket"))
            .header("origin", &site)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ticket: Value = serde_json::from_str(signed["ticket"].as_str().unwrap()).unwrap();
        nonces.push(ticket["nonce"].clone());
        let entered = app.post_json("/api/v1/embed", &signed).await;
        assert_eq!(entered.status(), 200, "{}", entered.text().await.unwrap());
    }
    assert_ne!(nonces[0], nonces[1]);
    let foreign = client
        .post(format!("{site}/ticket"))
        .header("origin", "https://evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403, "a ticket for another site's page");
}
