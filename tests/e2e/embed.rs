//! An integrator page on another origin (another loopback port) embeds a
//! room with `static/embed.js`, which asks the page's own ticket endpoint
//! for a signed ticket on every load.

use crate::browser::{Browser, Driver, driver};
use crate::helpers::*;
use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use chats3_actors::time::{iso_from_ms, now_ms};
use fantoccini::Locator;
use fantoccini::elements::Element;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// The example integrator page's button that asks the room to leave.
const PARENT_LEAVE: &str = "#leave-chat";
/// The element embed.js puts its shadow tree on.
const WIDGET: &str = "[data-chats3-embed]";

/// What the test site's ticket endpoint answers next.
enum Answer {
    /// This ticket and signature, as they are (e.g. one already used).
    Given(String, String),
}

/// The integrator site: its origin, and the tickets its endpoint signed.
struct Site {
    origin: String,
    tickets: Arc<Mutex<Vec<Value>>>,
    planned: Arc<Mutex<VecDeque<Answer>>>,
}

#[derive(Clone)]
struct SiteState {
    chat_url: String,
    conversation: String,
    origin: String,
    tickets: Arc<Mutex<Vec<Value>>>,
    planned: Arc<Mutex<VecDeque<Answer>>>,
    foreign: String,
}

/// A signed ticket for `conversation`, opened from `origin`.
fn signed_ticket(conversation: &str, origin: &str) -> (String, String) {
    let ticket = serde_json::to_string(&json!({
        "integratorId": INTEGRATOR_ID,
        "conversationId": conversation,
        "userId": "customer-17",
        "displayName": "Embedded Ada",
        "role": "user",
        "origin": origin,
        "issuedAt": iso_from_ms(now_ms()),
        "expiresAt": iso_from_ms(now_ms() + 300_000),
        "nonce": uuid::Uuid::new_v4().to_string(),
    }))
    .unwrap();
    let signature = hmac(INTEGRATOR_SECRET, &ticket);
    (ticket, signature)
}

/// The ticket endpoint, as `static/examples/ticket-server.mjs` answers:
/// a fresh ticket each call, unless the test planned another answer.
async fn ticket_endpoint(State(site): State<SiteState>) -> impl IntoResponse {
    let planned = site.planned.lock().unwrap().pop_front();
    let (ticket, signature) = match planned {
        Some(Answer::Given(ticket, signature)) => (ticket, signature),
        None => signed_ticket(&site.conversation, &site.origin),
    };
    site.tickets
        .lock()
        .unwrap()
        .push(serde_json::from_str(&ticket).unwrap());
    axum::Json(json!({ "ticket": ticket, "signature": signature }))
}

/// `static/examples/integrator.html` with the service's URL filled in, as
/// the example server serves it.
async fn example_page(State(site): State<SiteState>) -> Html<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/examples");
    let page = std::fs::read_to_string(dir.join("integrator.html")).unwrap();
    Html(page.replace("{{CHATS3_URL}}", &site.chat_url))
}

/// A host page with the one tag, a room in a plain iframe (an integrator
/// that signs the embed URL itself) that records what that room tells it,
/// and a frame of a foreign origin.
async fn page_with_foreign_frame(State(site): State<SiteState>) -> Html<String> {
    let (ticket, signature) = signed_ticket(&site.conversation, &site.origin);
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!(
        "{}/embed?ticket={}&amp;signature={}",
        site.chat_url,
        enc(&ticket),
        enc(&signature)
    );
    Html(format!(
        "<!doctype html><title>host</title>\
         <script src=\"{}/static/embed.js\" data-ticket-url=\"/ticket\" async></script>\
         <iframe id=\"raw\" src=\"{raw}\" width=\"600\" height=\"400\"></iframe>\
         <iframe id=\"foreign\" src=\"{}/spoof.html\"></iframe>\
         <script>window.fromRaw = []; addEventListener('message', (e) => {{\
           if (e.source === document.getElementById('raw').contentWindow) fromRaw.push(e.data.type);\
         }});</script>",
        site.chat_url, site.foreign
    ))
}

/// A host page with the chat inline in a 480 px high element.
async fn inline_page(State(site): State<SiteState>) -> Html<String> {
    Html(format!(
        "<!doctype html><title>inline</title><meta name=\"viewport\" content=\"width=device-width\">\
         <div id=\"chat\" style=\"width: 90%; margin: 0 auto\"></div>\
         <script src=\"{}/static/embed.js\" data-ticket-url=\"/ticket\" data-target=\"#chat\" data-height=\"480px\" async></script>",
        site.chat_url
    ))
}

/// A foreign origin's page that keeps trying to talk to the widget and to
/// the room as if it were one of them.
const SPOOF_PAGE: &str = r#"<!doctype html><title>foreign</title><script>
setInterval(() => {
  const fake = { source: 'chats3', type: 'unread', count: 42, conversationId: 'x' };
  top.postMessage(fake, '*');
  top.postMessage({ source: 'chats3', type: 'error', reason: 'busy', title: 'Spoofed', text: 'Spoofed' }, '*');
  for (let i = 0; i < top.frames.length; i++) {
    if (top.frames[i] === window) continue;
    top.frames[i].postMessage({ type: 'visibility', visible: false }, '*');
    top.frames[i].postMessage({ type: 'leave' }, '*');
  }
  document.title = 'sent ' + top.frames.length;
}, 200);
</script>"#;

/// Serves the integrator site (on `listener`: another origin than the
/// service's) for `conversation`, and a foreign site on `localhost`.
async fn integrator_site(listener: TcpListener, app: &TestApp, conversation: &str) -> Site {
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let foreign_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let foreign = format!(
        "http://localhost:{}",
        foreign_listener.local_addr().unwrap().port()
    );
    let tickets = Arc::new(Mutex::new(Vec::new()));
    let planned = Arc::new(Mutex::new(VecDeque::new()));
    let state = SiteState {
        chat_url: app.url(""),
        conversation: conversation.to_owned(),
        origin: origin.clone(),
        tickets: tickets.clone(),
        planned: planned.clone(),
        foreign,
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/examples");
    let site = axum::Router::new()
        .route("/", get(example_page))
        .route("/integrator.html", get(example_page))
        .route("/with-foreign-frame.html", get(page_with_foreign_frame))
        .route("/inline.html", get(inline_page))
        .route("/ticket", post(ticket_endpoint))
        .fallback_service(tower_http::services::ServeDir::new(dir))
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, site).await });
    let foreign_site = axum::Router::new().route("/spoof.html", get(|| async { Html(SPOOF_PAGE) }));
    tokio::spawn(async move { axum::serve(foreign_listener, foreign_site).await });
    Site {
        origin,
        tickets,
        planned,
    }
}

/// The service with the test site's origin allowed for the integrator, a
/// room with a host user whose stream is open, and the site.
async fn setup() -> (TestApp, String, Joined, EventStream, Site) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = spawn_app_with(move |c| c.integrators[0].allowed_origins = vec![origin]).await;
    let (id, joined) = app.room_with(&["Host"]).await;
    let host = joined.into_iter().next().unwrap();
    let mut stream = app.stream(&host.session_id, None).await;
    stream.opening().await;
    let site = integrator_site(listener, &app, &id).await;
    (app, id, host, stream, site)
}

/// The text of `css` in the widget's shadow tree ("" while it is absent
/// or hidden).
async fn widget_text(browser: &Browser, css: &str) -> String {
    let script = "const root = document.querySelector(arguments[0])?.shadowRoot;\
        const el = root?.querySelector(arguments[1]);\
        if (!el || el.hidden || el.closest('[hidden]')) return '';\
        return el.textContent;";
    match browser
        .client
        .execute(script, vec![json!(WIDGET), json!(css)])
        .await
    {
        Ok(Value::String(text)) => text,
        _ => String::new(),
    }
}

/// Waits up to 20 s until `check` holds for the widget's `css` text.
async fn wait_widget(browser: &Browser, css: &str, what: &str, check: impl Fn(&str) -> bool) {
    let mut last = String::new();
    for _ in 0..400 {
        last = widget_text(browser, css).await;
        if check(&last) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what} in the widget's {css}; it shows {last:?}");
}

/// An element of the widget's shadow tree.
async fn widget_element(browser: &Browser, css: &str) -> Element {
    let root = browser.find(WIDGET).await.shadow_root().await.unwrap();
    for _ in 0..200 {
        if let Ok(element) = root.find(Locator::Css(css)).await {
            return element;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {css} in the widget");
}

/// Enters the widget's frame and waits for a live room.
async fn enter_live_room(browser: &Browser) {
    widget_element(browser, "iframe")
        .await
        .enter_frame()
        .await
        .unwrap();
    browser
        .wait_text("#connection-state", "a live connection", |t| {
            t.trim() == "live"
        })
        .await;
}

/// A browser of `width` × `height` px on the site's example page, once the
/// loader says the chat is connected.
async fn on_example_page(driver: &Driver, site: &Site, width: u32, height: u32) -> Browser {
    let browser = driver.browser(width, height).await;
    browser.goto(&format!("{}/", site.origin)).await;
    wait_connected(&browser).await;
    browser
}

/// Opens the collapsed widget and enters its live room.
async fn open_widget(browser: &Browser) {
    widget_element(browser, ".bubble")
        .await
        .click()
        .await
        .unwrap();
    enter_live_room(browser).await;
}

/// Waits until the example page says the chat is connected.
async fn wait_connected(browser: &Browser) {
    browser
        .wait_text("#chat-status", "the chat's ready event", |t| {
            t == "Chat connected."
        })
        .await;
}

#[tokio::test]
async fn the_loader_fetches_a_fresh_ticket_on_every_load_of_the_host_page() {
    let Some(driver) = driver().await else { return };
    let (app, id, host, mut host_stream, site) = setup().await;
    let browser = on_example_page(&driver, &site, 1000, 760).await;
    open_widget(&browser).await;
    let violations = browser.axe_violations().await;
    assert!(violations.is_empty(), "embed: {violations:#?}");
    browser.fill("#message-input", "hello from the embed").await;
    browser.click("#send").await;
    let event = host_stream.next_of("new-message").await;
    assert_eq!(event.data["data"]["body"], "hello from the embed");
    assert_eq!(event.data["data"]["senderDisplayName"], "Embedded Ada");
    assert_eq!(event.data["data"]["senderUserId"], "customer-17");
    app.send(&host.session_id, "Hi Ada, how can we help?").await;
    browser.wait_message("Hi Ada, how can we help?").await;
    browser.client.enter_parent_frame().await.unwrap();
    browser.screenshot("embed.png").await;

    // A reload of the host page runs the loader again: a new ticket, no replay.
    browser.client.refresh().await.unwrap();
    wait_connected(&browser).await;
    open_widget(&browser).await;
    let shown = browser.client.source().await.unwrap();
    assert!(!shown.contains("Nonce"), "the room shows server text");
    browser
        .fill("#message-input", "still here after a reload")
        .await;
    browser.click("#send").await;
    let event = host_stream.next_of("new-message").await;
    assert_eq!(event.data["data"]["body"], "still here after a reload");
    browser.client.enter_parent_frame().await.unwrap();
    {
        let tickets = site.tickets.lock().unwrap();
        assert_eq!(tickets.len(), 2, "one ticket per load");
        assert_ne!(tickets[0]["nonce"], tickets[1]["nonce"]);
        assert!(tickets.iter().all(|t| t["conversationId"] == id.as_str()));
    }

    // The page's own Leave button, with the panel collapsed over it.
    widget_element(&browser, ".close")
        .await
        .click()
        .await
        .unwrap();
    browser.click(PARENT_LEAVE).await;
    let left = host_stream.next_of("new-message").await;
    assert_eq!(
        left.data["data"]["body"],
        "Embedded Ada left the conversation"
    );
    browser
        .wait_text("#chat-status", "the left event", |t| {
            t == "You left the chat."
        })
        .await;
    browser.close().await;
}

#[tokio::test]
async fn a_replayed_ticket_shows_a_friendly_message_and_retry_opens_the_room() {
    let Some(driver) = driver().await else { return };
    let (app, id, _host, _stream, site) = setup().await;
    // A ticket the endpoint wrongly hands out twice: already used once.
    let (ticket, signature) = signed_ticket(&id, &site.origin);
    let used = app
        .post_json(
            "/api/v1/embed",
            &json!({ "ticket": ticket, "signature": signature }),
        )
        .await;
    assert_eq!(used.status(), 200);
    site.planned
        .lock()
        .unwrap()
        .push_back(Answer::Given(ticket, signature));

    let browser = driver.browser(1000, 760).await;
    browser.goto(&format!("{}/", site.origin)).await;
    browser
        .wait_text("#chat-status", "the error event", |t| {
            t == "The chat did not open (ticket-expired)."
        })
        .await;
    widget_element(&browser, ".bubble")
        .await
        .click()
        .await
        .unwrap();
    wait_widget(&browser, ".status h2", "the friendly title", |t| {
        t == "This chat link has expired"
    })
    .await;
    let text = widget_text(&browser, ".status").await;
    assert!(
        !text.contains("Nonce") && !text.contains("replay"),
        "{text}"
    );
    assert!(
        widget_text(&browser, "iframe").await.is_empty(),
        "the failed frame is gone"
    );
    tokio::time::sleep(Duration::from_millis(400)).await; // the panel's fade-in
    browser.screenshot("embed-retry.png").await;

    widget_element(&browser, ".retry")
        .await
        .click()
        .await
        .unwrap();
    wait_connected(&browser).await;
    enter_live_room(&browser).await;
    assert_eq!(site.tickets.lock().unwrap().len(), 2);
    browser.close().await;
}

#[tokio::test]
async fn the_embed_page_answers_a_browser_with_a_friendly_page() {
    let Some(driver) = driver().await else { return };
    let (app, _id, _host, _stream, _site) = setup().await;
    let browser = driver.browser(800, 600).await;
    browser
        .goto(&app.url("/embed?ticket=%7B%7D&signature=x"))
        .await;
    let title = browser.text("main h1").await;
    assert_eq!(title, "The chat could not be opened");
    let page = browser.client.source().await.unwrap();
    assert!(!page.contains("Missing required fields"), "{page}");
    browser.close().await;
}

#[tokio::test]
async fn the_badge_counts_messages_from_others_while_the_launcher_is_collapsed() {
    let Some(driver) = driver().await else { return };
    let (app, _id, host, mut host_stream, site) = setup().await;
    let browser = on_example_page(&driver, &site, 1000, 760).await;
    assert_eq!(widget_text(&browser, ".badge").await, "", "no badge yet");

    app.send(&host.session_id, "are you there?").await;
    wait_widget(&browser, ".badge", "one unread", |t| t == "1").await;
    app.send(&host.session_id, "we can help with your order")
        .await;
    wait_widget(&browser, ".badge", "two unread", |t| t == "2").await;
    let label = widget_text(&browser, ".bubble .sr").await;
    assert_eq!(label, "Open Acme support, 2 unread");
    browser.screenshot("embed-launcher.png").await;
    // Collapsed, nothing is read: no receipt goes to the sender.
    while let Some(event) = host_stream.next_within(Duration::from_millis(800)).await {
        assert_ne!(event.data["type"], "message-read", "read while collapsed");
    }

    // Opening shows them: the badge goes, and later messages are not counted.
    widget_element(&browser, ".bubble")
        .await
        .click()
        .await
        .unwrap();
    wait_widget(&browser, ".badge", "no badge once open", str::is_empty).await;
    let read = host_stream.next_of("message-read").await;
    assert_eq!(read.data["fromUserId"], "customer-17");
    app.send(&host.session_id, "read right away").await;
    enter_live_room(&browser).await;
    browser.wait_message("read right away").await;
    browser.client.enter_parent_frame().await.unwrap();
    assert_eq!(widget_text(&browser, ".badge").await, "");

    // Collapsed again: counting starts over.
    widget_element(&browser, ".close")
        .await
        .click()
        .await
        .unwrap();
    app.send(&host.session_id, "one more thing").await;
    wait_widget(&browser, ".badge", "one unread again", |t| t == "1").await;
    browser.close().await;
}

#[tokio::test]
async fn messages_from_a_foreign_origin_are_ignored_both_ways() {
    let Some(driver) = driver().await else { return };
    let (app, _id, host, mut host_stream, site) = setup().await;
    let browser = driver.browser(1000, 760).await;
    browser
        .goto(&format!("{}/with-foreign-frame.html", site.origin))
        .await;
    // The foreign frame sees the chat frame and keeps posting to it and to us.
    browser.find("#foreign").await.enter_frame().await.unwrap();
    let mut title = Value::Null;
    for _ in 0..200 {
        title = browser
            .client
            .execute("return document.title", vec![])
            .await
            .unwrap();
        if title == "sent 2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(title, "sent 2", "the foreign frame reaches the chat frame");
    browser.client.enter_parent_frame().await.unwrap();
    browser.find("#raw").await.enter_frame().await.unwrap();
    browser
        .wait_text("#connection-state", "a live connection", |t| {
            t.trim() == "live"
        })
        .await;
    browser.client.enter_parent_frame().await.unwrap();
    wait_widget(&browser, ".status", "the widget's room", str::is_empty).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // The widget took no spoofed count or error.
    assert_eq!(widget_text(&browser, ".badge").await, "");
    assert_eq!(widget_text(&browser, ".status").await, "");
    // A real message: the widget (collapsed) counts it; the plain frame's
    // room, which a foreign "hidden" did not reach, does not.
    app.send(&host.session_id, "a real message").await;
    wait_widget(&browser, ".badge", "the real count", |t| t == "1").await;
    browser.find("#raw").await.enter_frame().await.unwrap();
    browser.wait_message("a real message").await;
    let leave = browser.find("#leave").await;
    assert_eq!(
        leave.prop("disabled").await.unwrap().as_deref(),
        Some("false")
    );
    browser.client.enter_parent_frame().await.unwrap();
    let told = browser
        .client
        .execute("return window.fromRaw", vec![])
        .await
        .unwrap();
    assert_eq!(
        told,
        json!(["ready"]),
        "the plain frame's room told its page"
    );
    while let Some(event) = host_stream.next_within(Duration::from_millis(500)).await {
        assert_ne!(
            event.data["data"]["body"], "Embedded Ada left the conversation",
            "a room left on a foreign page's say-so"
        );
    }
    browser.close().await;
}

/// The width and height of the widget's frame, and the window's.
async fn frame_and_window(browser: &Browser) -> Value {
    browser
        .client
        .execute(
            "const f = document.querySelector(arguments[0]).shadowRoot.querySelector('iframe');\
             const r = f.getBoundingClientRect();\
             return [Math.round(r.width), Math.round(r.height), innerWidth, innerHeight];",
            vec![json!(WIDGET)],
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn the_widget_fills_a_phone_screen_or_its_inline_element() {
    let Some(driver) = driver().await else { return };
    let (_app, _id, _host, _stream, site) = setup().await;
    let browser = on_example_page(&driver, &site, 360, 740).await;
    open_widget(&browser).await;
    browser.client.enter_parent_frame().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    browser.screenshot("embed-phone.png").await;
    let sizes = frame_and_window(&browser).await;
    let size = |i: usize| sizes[i].as_i64().unwrap();
    assert_eq!(
        size(0),
        size(2),
        "the open panel is as wide as the phone: {sizes}"
    );
    let bar = 57; // the panel's title bar
    assert!(size(1) >= size(3) - bar - 1, "{sizes}");
    // Closing gives the page back its screen.
    widget_element(&browser, ".close")
        .await
        .click()
        .await
        .unwrap();
    browser.find(PARENT_LEAVE).await;
    let hit = browser
        .client
        .execute(
            "return document.elementFromPoint(180, 300)?.tagName",
            vec![],
        )
        .await
        .unwrap();
    assert_ne!(hit, "DIV", "the collapsed panel still covers the page");

    browser.goto(&format!("{}/inline.html", site.origin)).await;
    enter_live_room(&browser).await;
    browser.client.enter_parent_frame().await.unwrap();
    let sizes = frame_and_window(&browser).await;
    let element = browser
        .client
        .execute(
            "return Math.round(document.getElementById('chat').getBoundingClientRect().width)",
            vec![],
        )
        .await
        .unwrap();
    let inside_border = |outer: &Value| outer.as_i64().unwrap() - 2;
    assert_eq!(
        sizes[0],
        inside_border(&element),
        "the element's width: {sizes}"
    );
    assert_eq!(sizes[1], inside_border(&json!(480)), "data-height: {sizes}");
    assert!(
        widget_text(&browser, ".bubble").await.is_empty(),
        "no launcher inline"
    );
    browser.close().await;
}
