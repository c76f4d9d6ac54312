//! Admin creates a room, two people join it in two browsers and talk.

use crate::browser::{Browser, driver};
use crate::helpers::*;

pub(crate) async fn join_through_the_page(browser: &Browser, join_link: &str, name: &str) {
    browser.goto(join_link).await;
    browser.fill("#displayName", name).await;
    browser.click("#join-form button[type=submit]").await;
    browser
        .wait_text("#connection-state", "a live connection", |t| {
            t.trim() == "live"
        })
        .await;
}

/// A real PNG (a screenshot) padded to 3 MiB (decoders ignore bytes after
/// IEND), so the upload lasts long enough to show progress.
pub(crate) fn padded_png(png: &[u8]) -> std::path::PathBuf {
    let mut data = png.to_vec();
    data.resize(data.len().max(3 * 1024 * 1024), 0);
    let path = std::env::temp_dir().join(format!("screenshot-{}.png", uuid::Uuid::new_v4()));
    std::fs::write(&path, data).unwrap();
    path
}

/// Attaches the image through the file input and checks the progress bar
/// moved before the upload finished.
async fn upload_image(browser: &Browser, png: &[u8]) {
    browser
        .client
        .execute(
            "window.__progress = []; window.__poll = setInterval(() => { \
               const p = document.getElementById('upload-progress'); \
               if (p && p.offsetParent !== null) window.__progress.push(Number(p.value)); }, 2);",
            vec![],
        )
        .await
        .unwrap();
    let path = padded_png(png);
    let input = browser.find("#file-input").await;
    input.send_keys(&path.to_string_lossy()).await.unwrap();
    let _ = browser.find("#send").await;
    browser.wait_image().await;
    let seen = browser
        .client
        .execute(
            "clearInterval(window.__poll); return window.__progress;",
            vec![],
        )
        .await
        .unwrap();
    let values: Vec<f64> = seen
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_f64())
        .collect();
    assert!(
        values.iter().any(|v| *v > 0.0),
        "the progress bar showed progress: {values:?}"
    );
    let _ = std::fs::remove_file(path);
}

/// The other side's preview of an uploaded image is the server's thumbnail
/// (at most 200 px), and its link opens the original.
async fn preview_is_the_thumbnail_and_opens_the_original(browser: &Browser) {
    let script = "const img = document.querySelector('#messages figure.attachment img'); \
                  if (!img || !img.complete || !img.naturalWidth) return null; \
                  const link = img.closest('a').href; \
                  if (!link.includes('/api/v1/files/')) return null; \
                  return [img.src, img.naturalWidth, img.naturalHeight, link];";
    for _ in 0..200 {
        let seen = browser.client.execute(script, vec![]).await.unwrap();
        if let Some([src, width, height, link]) = seen.as_array().map(Vec::as_slice) {
            let (src, link) = (src.as_str().unwrap(), link.as_str().unwrap());
            assert!(src.contains("variant=thumbnail"), "{src}");
            assert!(width.as_u64().unwrap() <= 200, "{width}");
            assert!(height.as_u64().unwrap() <= 200, "{height}");
            assert!(
                !link.contains("variant="),
                "the link opens the original: {link}"
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no thumbnail preview with a link to the original appeared");
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

    ann.fill("#message-input", "typing something").await;
    bob.wait_text("#typing", "Ann's typing indicator", |t| t.contains("Ann"))
        .await;
    ann.find("#message-input").await.clear().await.unwrap();

    let hello = bob.message_with_body("Hello Bob").await;
    // A message's actions show on hover or focus, as for a mouse user.
    bob.click(&hello).await;
    bob.click(&format!("{hello} [data-action=react]")).await;
    bob.click(".reaction-picker [data-action=pick-reaction]")
        .await;
    let reaction = ann
        .wait_text(&format!("{hello} .reaction"), "Bob's reaction", |t| {
            t.contains('1')
        })
        .await;
    assert!(reaction.contains('1'), "{reaction}");

    let picture = bob.client.screenshot().await.unwrap();
    upload_image(&ann, &picture).await;
    for browser in [&ann, &bob] {
        browser.wait_image().await;
    }
    preview_is_the_thumbnail_and_opens_the_original(&bob).await;
    ann.screenshot("room.png").await;

    ann.close().await;
    bob.close().await;
}

#[tokio::test]
async fn a_users_message_typed_system_shows_its_sender_not_a_notice() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app().await;
    let (id, code) = app.create_conversation(None).await;
    let mallory = app.join(&id, &code, "Mallory").await;
    let bob = driver.browser(600, 760).await;
    let join_link = app.url(&format!("/join?conversationId={id}&joinCode={code}"));
    join_through_the_page(&bob, &join_link, "Bob").await;

    let fake = "The admin moved this chat to https://evil.example";
    let response = app
        .post_as(
            &mallory.session_id,
            "/api/v1/messages",
            &serde_json::json!({ "type": "system", "body": fake, "clientTimestamp": "2025-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let shown = bob.message_with_body(fake).await;
    let element = bob.find(&shown).await;
    let class = element.attr("class").await.unwrap().unwrap_or_default();
    assert!(
        !class.split_whitespace().any(|c| c == "system"),
        "shown as a notice: {class}"
    );
    assert_eq!(bob.text(&format!("{shown} .sender")).await, "Mallory");
    let joined = bob.message_with_body("Bob joined the conversation").await;
    let class = bob.find(&joined).await.attr("class").await.unwrap();
    assert!(
        class.unwrap_or_default().contains("system"),
        "the service's notices stay notices"
    );
    bob.close().await;
}

#[tokio::test]
async fn seen_by_survives_a_reload() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app().await;
    let (id, code) = app.create_conversation(None).await;
    let bob = app.join(&id, &code, "Bob").await;
    let ann = driver.browser(600, 760).await;
    let join_link = app.url(&format!("/join?conversationId={id}&joinCode={code}"));
    join_through_the_page(&ann, &join_link, "Ann").await;
    ann.fill("#message-input", "Did you see this?").await;
    ann.click("#send").await;
    let shown = ann.message_with_body("Did you see this?").await;
    let message_id = ann
        .find(&shown)
        .await
        .attr("data-message-id")
        .await
        .unwrap()
        .unwrap();
    let read = app
        .post_as(
            &bob.session_id,
            &format!("/api/v1/messages/{message_id}/read"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(read.status(), 200);
    let receipt = format!("{shown} .receipt");
    ann.wait_text(&receipt, "the live receipt", |t| t == "Seen by 1")
        .await;

    ann.client.refresh().await.unwrap();
    ann.wait_text("#connection-state", "a live connection", |t| {
        t.trim() == "live"
    })
    .await;
    let shown = ann.message_with_body("Did you see this?").await;
    ann.wait_text(
        &format!("{shown} .receipt"),
        "the receipt after a reload",
        |t| t == "Seen by 1",
    )
    .await;
    ann.close().await;
}
