//! An integrator page on another origin (another loopback port) embeds a
//! room through a signed ticket.

use crate::browser::driver;
use crate::helpers::*;
use chats3_actors::time::{iso_from_ms, now_ms};
use serde_json::json;
use tokio::net::TcpListener;

/// The example integrator page's button that asks the room to leave.
const PARENT_LEAVE: &str = "#leave-chat";

/// Serves `static/examples` on a loopback port of its own: another origin.
async fn integrator_site() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/examples");
    let app = axum::Router::new().fallback_service(tower_http::services::ServeDir::new(dir));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

#[tokio::test]
async fn an_integrator_page_on_another_origin_embeds_a_room() {
    let Some(driver) = driver().await else { return };
    let site = integrator_site().await;
    let origin = site.clone();
    let app = spawn_app_with(move |c| c.integrators[0].allowed_origins = vec![origin]).await;
    let (id, joined) = app.room_with(&["Host"]).await;
    let mut host_stream = app.stream(&joined[0].session_id, None).await;
    host_stream.opening().await;

    let ticket = serde_json::to_string(&json!({
        "integratorId": INTEGRATOR_ID,
        "conversationId": id,
        "userId": "customer-17",
        "displayName": "Embedded Ada",
        "role": "user",
        "origin": site,
        "issuedAt": iso_from_ms(now_ms()),
        "expiresAt": iso_from_ms(now_ms() + 300_000),
        "nonce": uuid::Uuid::new_v4().to_string(),
    }))
    .unwrap();
    let signature = hmac(INTEGRATOR_SECRET, &ticket);
    let embed_url = format!(
        "{}?ticket={}&signature={signature}",
        app.url("/embed"),
        url::form_urlencoded::byte_serialize(ticket.as_bytes()).collect::<String>()
    );
    let page = format!(
        "{site}/integrator.html?src={}",
        url::form_urlencoded::byte_serialize(embed_url.as_bytes()).collect::<String>()
    );

    let browser = driver.browser(1000, 760).await;
    browser.goto(&page).await;
    let frame = browser.find("iframe").await;
    frame.enter_frame().await.unwrap();
    browser
        .wait_text("#connection-state", "a live connection", |t| {
            t.trim() == "live"
        })
        .await;
    let violations = browser.axe_violations().await;
    assert!(violations.is_empty(), "embed: {violations:#?}");
    browser.fill("#message-input", "hello from the embed").await;
    browser.click("#send").await;
    let event = host_stream.next_of("new-message").await;
    assert_eq!(event.data["data"]["body"], "hello from the embed");
    assert_eq!(event.data["data"]["senderDisplayName"], "Embedded Ada");
    assert_eq!(event.data["data"]["senderUserId"], "customer-17");
    browser.client.enter_parent_frame().await.unwrap();
    browser
        .client
        .execute("window.scrollTo(0, 0)", vec![])
        .await
        .unwrap();
    browser.screenshot("embed.png").await;

    browser.click(PARENT_LEAVE).await;
    let left = host_stream.next_of("new-message").await;
    assert_eq!(
        left.data["data"]["body"],
        "Embedded Ada left the conversation"
    );
    browser.close().await;
}
