//! Reloads and network drops: the session, the history and every message
//! survive, once each.

use crate::browser::{Browser, driver};
use crate::helpers::*;
use crate::proxy::Proxy;
use std::time::Duration;

async fn live(browser: &Browser) {
    browser
        .wait_text("#connection-state", "a live connection", |t| {
            t.trim() == "live"
        })
        .await;
}

async fn send(browser: &Browser, text: &str) {
    browser.fill("#message-input", text).await;
    browser.click("#send").await;
}

fn count(bodies: &[String], body: &str) -> usize {
    bodies.iter().filter(|b| *b == body).count()
}

#[tokio::test]
async fn a_reload_keeps_the_session_and_the_history() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app().await;
    let (id, code) = app.create_conversation(None).await;
    let ann = driver.browser(900, 700).await;
    ann.goto(&app.url(&format!("/join?conversationId={id}&joinCode={code}")))
        .await;
    ann.fill("#displayName", "Ann").await;
    ann.click("#join-form button[type=submit]").await;
    live(&ann).await;
    send(&ann, "before reload").await;
    ann.wait_message("before reload").await;
    ann.client.refresh().await.unwrap();
    live(&ann).await;
    ann.wait_message("before reload").await;
    let bodies = ann.message_bodies().await;
    assert_eq!(count(&bodies, "before reload"), 1, "{bodies:?}");
    assert!(ann.text("#participants").await.contains("Ann"));
    ann.close().await;
}

#[tokio::test]
async fn a_dropped_connection_comes_back_without_losing_or_doubling_messages() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app().await;
    let proxy = Proxy::start(app.address.trim_start_matches("http://")).await;
    let (id, code) = app.create_conversation(None).await;
    let bob = app.join(&id, &code, "Bob").await;

    let ann = driver.browser(900, 700).await;
    ann.goto(&proxy.url(&format!("/join?conversationId={id}&joinCode={code}")))
        .await;
    ann.fill("#displayName", "Ann").await;
    ann.click("#join-form button[type=submit]").await;
    live(&ann).await;
    app.send(&bob.session_id, "one").await;
    ann.wait_message("one").await;

    proxy.cut().await;
    ann.wait_text("#connection-state", "the drop noticed", |t| {
        t.trim() != "live"
    })
    .await;
    app.send(&bob.session_id, "two, while Ann is offline").await;
    send(&ann, "typed while offline").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.restore();

    live(&ann).await;
    ann.wait_message("two, while Ann is offline").await;
    ann.wait_message("typed while offline").await;
    app.send(&bob.session_id, "three").await;
    ann.wait_message("three").await;
    let bodies = ann.message_bodies().await;
    for body in [
        "one",
        "two, while Ann is offline",
        "typed while offline",
        "three",
    ] {
        assert_eq!(count(&bodies, body), 1, "{body:?} in {bodies:?}");
    }
    let stored = app.history(&bob.session_id).await;
    let sent: Vec<&serde_json::Value> = stored
        .iter()
        .filter(|m| m["body"] == "typed while offline")
        .collect();
    assert_eq!(sent.len(), 1, "the queued message was stored once");
    ann.close().await;
}
