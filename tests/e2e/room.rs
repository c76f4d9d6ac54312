//! The room as people read it: a room closed while two are in it, grouped
//! messages with day dividers from stored history, links and code rendered
//! from text, the image lightbox by keyboard, the 360 px layout's tap
//! targets, and axe-core on every page in light, dark and 360 px.

use crate::browser::{Browser, driver};
use crate::chat::join_through_the_page;
use crate::helpers::*;
use serde_json::json;

const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";

/// A room with a title, made through the API: (id, join link).
async fn titled_room(app: &TestApp, title: &str) -> (String, String) {
    let body = json!({ "adminPassword": ADMIN_PASSWORD, "title": title });
    let details =
        envelope(app.post_json("/api/v1/admin/conversations", &body).await).await["details"]
            .clone();
    let id = details["conversationId"].as_str().unwrap().to_owned();
    let code = details["joinCode"].as_str().unwrap();
    let link = app.url(&format!("/join?conversationId={id}&joinCode={code}"));
    (id, link)
}

/// True when the element is rendered and visible (not `display: none`,
/// `hidden` or `visibility: hidden`).
async fn shown(browser: &Browser, css: &str) -> bool {
    let script = format!(
        "const e = document.querySelector({css:?}); return !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';"
    );
    browser.client.execute(&script, vec![]).await.unwrap() == json!(true)
}

async fn assert_read_only(browser: &Browser) {
    let banner = browser
        .wait_text("#closed-banner", "the closed banner", |t| {
            t.contains("was closed")
        })
        .await;
    assert!(banner.contains("no new messages can be sent"), "{banner}");
    assert!(!shown(browser, "#composer").await, "the composer is gone");
}

#[tokio::test]
async fn a_room_closed_while_two_are_in_it_turns_read_only_for_both() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app().await;
    let (id, link) = titled_room(&app, "Friday planning").await;
    let ann = driver.browser(1100, 760).await;
    let bob = driver.browser(420, 760).await;
    join_through_the_page(&ann, &link, "Ann").await;
    join_through_the_page(&bob, &link, "Bob").await;
    assert_eq!(ann.text("#room-title").await, "Friday planning");
    assert!(shown(&ann, "#invite").await, "the invite button is there");

    // Someone opening the room's own address without a session is sent to
    // the join form for that room.
    let carol = driver.browser(420, 760).await;
    carol.goto(&app.url(&format!("/room/{id}"))).await;
    carol
        .wait_for(
            "the join form",
            "return location.pathname === '/join' ? location.search : null;",
        )
        .await;
    let prefilled = carol.find("#conversationId").await.prop("value").await;
    assert_eq!(prefilled.unwrap().unwrap_or_default(), id);
    carol.close().await;

    // The admin closes it from the admin page, after confirming.
    let admin = driver.browser(1100, 760).await;
    admin.goto(&app.url("/admin")).await;
    admin.fill("#admin-password", ADMIN_PASSWORD).await;
    admin.fill("#lookup-id", &id).await;
    admin.click("#close").await;
    admin.find("#confirm-dialog[open]").await;
    admin.click("#confirm-dialog .confirm").await;
    admin
        .wait_text("#admin-result", "the closed status", |t| {
            t.contains("closed")
        })
        .await;
    admin.close().await;

    for browser in [&ann, &bob] {
        assert_read_only(browser).await;
    }
    bob.screenshot("room-closed.png").await;
    let sent = ann
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             import('/static/js/room/composer.js').then(m => done(m.enqueue({ body: 'late' })));",
            vec![],
        )
        .await;
    assert_eq!(sent.unwrap(), json!(false), "a closed room sends nothing");
    ann.wait_text("#room-notice", "the refusal", |t| {
        t.contains("this conversation is closed")
    })
    .await;

    ann.client.refresh().await.unwrap();
    assert_read_only(&ann).await;
    ann.close().await;
    bob.close().await;
}

/// A conversation written as Chats3 stores it, with messages on two past
/// days: two from one sender a minute apart, then one the next day.
fn stored_history(root: &std::path::Path, id: &str) {
    let base = root.join(format!("conversations/{id}"));
    let meta = json!({
        "conversationId": id, "joinCode": "ABC234", "status": "active",
        "createdAt": "2025-01-01T00:00:00.000Z", "closedAt": null,
        "lastAccessedAt": 1735689600000u64,
    });
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(base.join("meta.json"), meta.to_string()).unwrap();
    let messages = [
        ("2025-01-01", 1_735_725_600_000i64, "m-0", "morning"),
        (
            "2025-01-01",
            1_735_725_660_000,
            "m-1",
            "see https://example.com/a_(b). and `<div>` **now**",
        ),
        ("2025-01-02", 1_735_812_000_000, "m-2", "next day"),
    ];
    for (day, ms, message_id, body) in messages {
        let dir = base.join(format!("messages/{day}"));
        std::fs::create_dir_all(&dir).unwrap();
        let at = chats3_actors::time::iso_from_ms(ms);
        let message = json!({
            "messageId": message_id, "conversationId": id, "senderUserId": "u-old",
            "senderDisplayName": "Old Timer", "senderAvatarUrl": null, "senderRole": "user",
            "type": "text", "body": body, "clientTimestamp": at, "serverReceivedAt": at,
        });
        std::fs::write(
            dir.join(format!("{ms}-{message_id}.ndjson")),
            message.to_string(),
        )
        .unwrap();
    }
}

#[tokio::test]
async fn history_is_grouped_by_sender_and_day_and_text_is_rendered_safely() {
    let Some(driver) = driver().await else { return };
    let data_dir = tempfile::tempdir().unwrap();
    stored_history(data_dir.path(), "history");
    let app = spawn_app_in(data_dir, |_| {}).await;
    let ann = driver.browser(1100, 760).await;
    let link = app.url("/join?conversationId=history&joinCode=ABC234");
    join_through_the_page(&ann, &link, "Ann").await;
    ann.wait_message("next day").await;

    let layout = ann
        .client
        .execute(
            "return [...document.querySelectorAll('#messages > li')].map(li => \
               li.classList.contains('day-divider') ? 'day:' + li.textContent \
               : (li.classList.contains('continued') ? '+' : '') + li.dataset.messageId);",
            vec![],
        )
        .await
        .unwrap();
    let layout: Vec<String> = serde_json::from_value(layout).unwrap();
    assert!(
        layout[0].starts_with("day:") && layout[0].contains("January"),
        "{layout:?}"
    );
    assert_eq!(
        &layout[1..3],
        ["m-0", "+m-1"],
        "a run of one sender: {layout:?}"
    );
    assert!(
        layout[3].starts_with("day:") && layout[3].contains('2'),
        "{layout:?}"
    );
    assert_eq!(layout[4], "m-2", "a new day starts a new group: {layout:?}");
    assert!(layout.iter().any(|l| l == "day:Today"), "{layout:?}");

    let first = "#messages .message[data-message-id=m-0]";
    let second = "#messages .message[data-message-id=m-1]";
    assert_eq!(ann.text(&format!("{first} .initials")).await, "OT");
    assert!(
        !shown(&ann, &format!("{second} .avatar .initials")).await,
        "one avatar per run"
    );
    let link = ann.find(&format!("{second} .body a")).await;
    assert_eq!(
        link.attr("href").await.unwrap().unwrap(),
        "https://example.com/a_(b)"
    );
    assert_eq!(
        link.attr("rel").await.unwrap().unwrap(),
        "noopener noreferrer"
    );
    assert_eq!(link.attr("target").await.unwrap().unwrap(), "_blank");
    assert_eq!(ann.text(&format!("{second} .body code")).await, "<div>");
    assert_eq!(ann.text(&format!("{second} .body strong")).await, "now");
    let markup = ann
        .client
        .execute(
            &format!(
                "return document.querySelectorAll({:?}).length;",
                format!("{second} .body div, {second} .body img")
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(markup, json!(0), "no element is ever made from a body");
    ann.screenshot("room-history.png").await;
    ann.close().await;
}

#[tokio::test]
async fn an_image_opens_in_a_lightbox_and_closes_by_keyboard() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app().await;
    let (_, link) = titled_room(&app, "Pictures").await;
    let ann = driver.browser(1100, 760).await;
    join_through_the_page(&ann, &link, "Ann").await;
    let picture = ann.client.screenshot().await.unwrap();
    let path = crate::chat::padded_png(&picture);
    ann.fill("#message-input", "the view from here").await;
    ann.find("#file-input")
        .await
        .send_keys(&path.to_string_lossy())
        .await
        .unwrap();
    ann.wait_image().await;
    let _ = std::fs::remove_file(path);
    let caption = ann
        .wait_text(
            "#messages .message.mine:last-child .body",
            "the caption",
            |t| t == "the view from here",
        )
        .await;
    assert_eq!(caption, "the view from here");

    ann.client
        .execute(
            "document.querySelector('#messages figure.attachment a.preview').focus();",
            vec![],
        )
        .await
        .unwrap();
    ann.press(ENTER).await;
    ann.find("#lightbox[open]").await;
    ann.wait_for(
        "the original in the lightbox",
        "const i = document.getElementById('lightbox-image'); \
         return i.complete && i.naturalWidth > 0 ? i.naturalWidth : null;",
    )
    .await;
    ann.screenshot("lightbox.png").await;
    ann.press(ESCAPE).await;
    let back = ann
        .wait_for(
            "the lightbox to close with focus back on the preview",
            "return !document.getElementById('lightbox').open && \
               document.activeElement.matches('figure.attachment a.preview') ? true : null;",
        )
        .await;
    assert_eq!(back, json!(true));
    ann.close().await;
}

#[tokio::test]
async fn at_360_px_every_control_is_a_44_px_target() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app().await;
    let (id, link) = titled_room(&app, "Phone").await;
    let code = link.rsplit('=').next().unwrap();
    let bob = app.join(&id, code, "Bob").await;
    app.send(&bob.session_id, "hello from a laptop").await;
    let ann = driver.browser(360, 740).await;
    join_through_the_page(&ann, &link, "Ann").await;
    ann.wait_message("hello from a laptop").await;
    let focused = ann
        .client
        .execute("return document.activeElement.id;", vec![])
        .await
        .unwrap();
    assert_eq!(
        focused,
        json!("message-input"),
        "the composer has the focus"
    );
    assert!(!shown(&ann, "#people").await, "participants fold away");
    assert!(!shown(&ann, "#search").await, "search folds away");
    ann.click("#toggle-people").await;
    assert!(
        shown(&ann, "#people").await,
        "the button shows the participants"
    );
    // Hover a message so its actions are measured too.
    ann.click(&ann.message_with_body("hello from a laptop").await)
        .await;
    let small = ann
        .client
        .execute(
            "return [...document.querySelectorAll('main.room button, main.room input, main.room textarea, main.room a[href]')] \
               .filter(e => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden') \
               .filter(e => !e.closest('.body') && !e.closest('.visually-hidden') && !e.matches('.visually-hidden')) \
               .map(e => [e.id || e.className || e.tagName, e.getBoundingClientRect()]) \
               .filter(([, r]) => r.width > 0 && (r.height < 44 || r.width < 44)) \
               .map(([n, r]) => n + ' ' + Math.round(r.width) + 'x' + Math.round(r.height));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(small, json!([]), "controls under 44 px at 360 px");
    let wide = ann
        .client
        .execute("return document.documentElement.scrollWidth;", vec![])
        .await
        .unwrap();
    assert!(
        wide.as_u64().unwrap() <= 360,
        "no sideways scrolling: {wide}"
    );
    ann.screenshot("room-360.png").await;
    ann.close().await;
}

/// Zero axe-core violations on `url`'s page as it stands.
async fn assert_accessible(browser: &Browser, page: &str) {
    let violations = browser.axe_violations().await;
    assert!(violations.is_empty(), "{page}: {violations:#?}");
}

#[tokio::test]
async fn axe_finds_nothing_on_join_admin_and_room_in_light_dark_and_360_px() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app().await;
    let (id, link) = titled_room(&app, "Checked").await;
    let code = link.rsplit('=').next().unwrap();
    let bob = app.join(&id, code, "Bob").await;
    app.send(
        &bob.session_id,
        "a message with https://example.com and `code`",
    )
    .await;
    for (name, browser) in [
        ("light", driver.browser(1100, 760).await),
        ("dark", driver.dark_browser(1100, 760).await),
        ("360 px", driver.browser(360, 740).await),
    ] {
        browser.goto(&link).await;
        browser.find("#displayName").await;
        assert_accessible(&browser, &format!("join ({name})")).await;
        browser.goto(&app.url("/admin")).await;
        browser.find("#admin-password").await;
        assert_accessible(&browser, &format!("admin ({name})")).await;
        join_through_the_page(&browser, &link, &format!("Ann {}", name.len())).await;
        browser.wait_message("Bob joined the conversation").await;
        assert_accessible(&browser, &format!("room ({name})")).await;
        if name == "dark" {
            browser.screenshot("room-dark.png").await;
        }
        browser.close().await;
    }
}

#[tokio::test]
async fn a_server_restart_mid_chat_logs_no_one_out_and_sends_what_was_typed_once() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app().await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let (id, link) = titled_room(&app, "Restarted").await;
    let ann = driver.browser(1100, 760).await;
    join_through_the_page(&ann, &link, "Ann").await;
    ann.fill("#message-input", "before the restart").await;
    ann.click("#send").await;
    ann.wait_message("before the restart").await;

    let data_dir = app.stop().await;
    ann.wait_text("#connection-state", "the outage noticed", |t| {
        t.trim() != "live"
    })
    .await;
    ann.fill("#message-input", "typed while it was down").await;
    ann.click("#send").await;
    ann.wait_message("typed while it was down").await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;

    // The same address again, as a restarted server would have.
    let app = spawn_app_in(data_dir, move |config| config.server.port = port).await;
    ann.wait_text("#connection-state", "the connection back", |t| {
        t.trim() == "live"
    })
    .await;
    ann.wait_for(
        "the queued message stored",
        "const li = [...document.querySelectorAll('#messages .message.mine')] \
           .find(l => l.querySelector('.body')?.textContent === 'typed while it was down'); \
         return li && !li.classList.contains('queued') && !li.classList.contains('pending') ? true : null;",
    )
    .await;
    let notice = ann.text("#room-notice").await;
    assert!(
        !notice.contains("expired"),
        "no one is logged out: {notice}"
    );
    let code = link.rsplit('=').next().unwrap();
    let bob = app.join(&id, code, "Bob").await;
    let stored = app.history(&bob.session_id).await;
    for body in ["before the restart", "typed while it was down"] {
        let times = stored.iter().filter(|m| m["body"] == body).count();
        assert_eq!(times, 1, "{body:?} stored once: {stored:?}");
    }
    let shown = ann.message_bodies().await;
    let times = shown
        .iter()
        .filter(|b| *b == "typed while it was down")
        .count();
    assert_eq!(times, 1, "shown once: {shown:?}");
    ann.close().await;
}

#[tokio::test]
async fn each_message_is_announced_once_and_the_list_is_one_tab_stop() {
    let Some(driver) = driver().await else { return };
    let app = spawn_app().await;
    let (id, link) = titled_room(&app, "Announced").await;
    let code = link.rsplit('=').next().unwrap();
    let bob = app.join(&id, code, "Bob").await;
    for i in 0..6 {
        app.send(&bob.session_id, &format!("earlier {i}")).await;
    }
    let ann = driver.browser(1100, 760).await;
    join_through_the_page(&ann, &link, "Ann").await;
    ann.wait_message("earlier 5").await;
    ann.client
        .execute(
            "window.__said = []; new MutationObserver(() => { \
               const t = document.getElementById('announcer').textContent; if (t) window.__said.push(t); \
             }).observe(document.getElementById('announcer'), { childList: true, characterData: true, subtree: true });",
            vec![],
        )
        .await
        .unwrap();
    app.send(&bob.session_id, "hello Ann").await;
    ann.wait_message("hello Ann").await;
    ann.fill("#message-input", "hello Bob").await;
    ann.press(ENTER).await;
    ann.wait_message("hello Bob").await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let said = ann
        .client
        .execute("return window.__said;", vec![])
        .await
        .unwrap();
    assert_eq!(
        said,
        json!(["Bob: hello Ann"]),
        "one announcement, none for our own"
    );
    let live = ann
        .client
        .execute(
            "return document.querySelectorAll('#messages[aria-live], .log[aria-live], .log[role=log]').length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(live, json!(0), "the list itself is not a live region");

    let stops = ann
        .client
        .execute(
            "return [...document.querySelectorAll('#messages li.message')].filter(li => li.tabIndex === 0).length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(stops, json!(1), "one message in the tab order");
    ann.client
        .execute(
            "document.querySelector('#messages li.message[tabindex=\"0\"]').focus();",
            vec![],
        )
        .await
        .unwrap();
    let hello = ann.message_with_body("hello Ann").await;
    ann.press("\u{E013}").await; // ↑: from our own message to Bob's
    let on = ann
        .wait_for(
            "↑ to reach Bob's message",
            &format!("return document.activeElement.matches({hello:?}) ? true : null;"),
        )
        .await;
    assert_eq!(on, json!(true));
    ann.press("\u{E004}").await; // Tab: into that message's controls
    let control = ann
        .client
        .execute(
            "return document.activeElement.dataset.action || '';",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        control,
        json!("react"),
        "Tab reaches the message's reactions"
    );
    ann.press(ENTER).await;
    ann.find(&format!("{hello} .reaction-picker")).await;
    ann.close().await;
}
