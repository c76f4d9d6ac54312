//! Which carrier the room's live stream takes: a WebSocket where the
//! upgrade goes through, Server-Sent Events behind a proxy that refuses
//! it, with the same room either way.

use crate::browser::{Browser, driver};
use crate::helpers::*;
use crate::proxy::Proxy;

async fn join_live(browser: &Browser, base: &str, id: &str, code: &str, name: &str) {
    browser
        .goto(&format!("{base}/join?conversationId={id}&joinCode={code}"))
        .await;
    browser.fill("#displayName", name).await;
    browser.click("#join-form button[type=submit]").await;
    browser
        .wait_text("#connection-state", "a live connection", |t| {
            t.trim() == "live"
        })
        .await;
}

/// The carrier the page's stream uses (`data-transport`).
async fn transport(browser: &Browser) -> String {
    browser
        .find("#connection-state")
        .await
        .attr("data-transport")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// A message from Bob over HTTP reaches the page, and one typed in the
/// page reaches Bob's history.
async fn the_room_works(app: &TestApp, browser: &Browser, bob: &Joined, tag: &str) {
    app.send(&bob.session_id, &format!("to the page over {tag}"))
        .await;
    browser
        .wait_message(&format!("to the page over {tag}"))
        .await;
    browser
        .fill("#message-input", &format!("from the page over {tag}"))
        .await;
    browser.click("#send").await;
    browser
        .wait_message(&format!("from the page over {tag}"))
        .await;
    eventually("the typed message stored", || async {
        app.history(&bob.session_id)
            .await
            .iter()
            .any(|m| m["body"] == format!("from the page over {tag}"))
    })
    .await;
}

#[tokio::test]
async fn the_room_streams_over_a_websocket() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app().await;
    let (id, code) = app.create_conversation(None).await;
    let bob = app.join(&id, &code, "Bob").await;
    let ann = driver.browser(900, 700).await;
    join_live(&ann, &app.address, &id, &code, "Ann").await;
    assert_eq!(transport(&ann).await, "websocket");
    the_room_works(&app, &ann, &bob, "a socket").await;
    // The page's stream counts like any: Ann is an active participant.
    assert_eq!(app.try_join(&id, &code, "ann").await.status(), 409);
    ann.close().await;
}

#[tokio::test]
async fn the_room_falls_back_to_sse_when_the_upgrade_is_refused() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app().await;
    let proxy = Proxy::refusing_upgrades(app.address.trim_start_matches("http://")).await;
    let (id, code) = app.create_conversation(None).await;
    let bob = app.join(&id, &code, "Bob").await;
    let ann = driver.browser(900, 700).await;
    join_live(&ann, &proxy.address, &id, &code, "Ann").await;
    assert_eq!(transport(&ann).await, "sse");
    the_room_works(&app, &ann, &bob, "SSE").await;
    let bodies = ann.message_bodies().await;
    let once = |body: &str| bodies.iter().filter(|b| *b == body).count() == 1;
    assert!(once("to the page over SSE"), "{bodies:?}");
    ann.close().await;
}
