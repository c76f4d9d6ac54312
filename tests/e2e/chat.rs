//! Admin creates a room, two people join it in two browsers and talk.

use crate::browser::{Browser, driver};
use crate::helpers::*;

async fn join_through_the_page(browser: &Browser, join_link: &str, name: &str) {
    browser.goto(join_link).await;
    browser.fill("#displayName", name).await;
    browser.click("#join-form button[type=submit]").await;
    browser
        .wait_text("#connection-state", "a live connection", |t| {
            t.trim() == "live"
        })
        .await;
}

#[tokio::test]
async fn two_people_chat_live_in_two_browsers() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app().await;

    let ann = driver.browser(1100, 760).await;
    ann.goto(&app.url("/admin")).await;
    ann.fill("#admin-password", ADMIN_PASSWORD).await;
    ann.click("#create").await;
    let join_link = ann
        .wait_text("#join-link", "the join link", |t| t.contains("joinCode="))
        .await;
    let code = ann.text("#created-code").await;
    assert_eq!(code.trim().len(), 6);
    ann.screenshot("admin.png").await;

    join_through_the_page(&ann, join_link.trim(), "Ann").await;
    let bob = driver.browser(420, 760).await;
    bob.goto(join_link.trim()).await;
    bob.screenshot("join.png").await;
    bob.fill("#displayName", "Bob").await;
    bob.click("#join-form button[type=submit]").await;
    bob.wait_text("#connection-state", "a live connection", |t| {
        t.trim() == "live"
    })
    .await;

    ann.fill("#message-input", "Hello Bob").await;
    ann.click("#send").await;
    bob.wait_message("Hello Bob").await;

    bob.fill("#message-input", "x < y <img src=x onerror=alert(1)> & z")
        .await;
    bob.click("#send").await;
    ann.wait_message("x < y  & z").await;
    assert!(ann.client.get_alert_text().await.is_err(), "no script ran");
    let images = ann
        .client
        .find_all(fantoccini::Locator::Css("#messages .message .body img"))
        .await
        .unwrap();
    assert!(images.is_empty(), "bodies are text, never HTML");
    ann.screenshot("room.png").await;

    ann.close().await;
    bob.close().await;
}
