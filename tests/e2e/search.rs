//! The room's search finds a message the page has not loaded, loads it
//! with what came after, and shows it marked.

use crate::browser::driver;
use crate::helpers::*;

#[tokio::test]
async fn search_finds_and_shows_a_message_that_is_not_loaded() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app_with(|c| c.actors.history_tail = 3).await;
    let (id, code) = app.create_conversation(None).await;
    let bob = app.join(&id, &code, "Bob").await;
    app.send(&bob.session_id, "The Needle is in the oldest message")
        .await;
    for i in 0..150 {
        app.send(&bob.session_id, &format!("filler {i}")).await;
    }
    eventually("batches flushed", || async {
        app.metric("chats3_messages_pending").await == 0
    })
    .await;

    let ann = driver.browser(1000, 760).await;
    ann.goto(&app.url(&format!("/join?conversationId={id}&joinCode={code}")))
        .await;
    ann.fill("#displayName", "Ann").await;
    ann.click("#join-form button[type=submit]").await;
    ann.wait_text("#connection-state", "a live connection", |t| {
        t.trim() == "live"
    })
    .await;
    ann.wait_message("filler 149").await;
    let needle = "The Needle is in the oldest message";
    assert!(
        !ann.message_bodies().await.iter().any(|b| b == needle),
        "the page starts without the oldest message"
    );

    ann.fill("#search-input", "needle").await;
    ann.wait_text("#search-status", "the one result", |t| t == "1 of 1")
        .await;
    let shown = ann.message_with_body(needle).await;
    let class = ann.find(&shown).await.attr("class").await.unwrap();
    assert!(
        class.unwrap_or_default().contains("search-current"),
        "the result is the current one"
    );
    let mark = ann.text(&format!("{shown} .body mark")).await;
    assert_eq!(mark, "Needle");
    ann.screenshot("room-search-older.png").await;

    ann.fill("#search-input", "no such words").await;
    ann.wait_text("#search-status", "no result", |t| t == "No matches")
        .await;
    ann.close().await;
}
