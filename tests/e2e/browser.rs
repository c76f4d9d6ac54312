//! A headless Chromium per test user, through a chromedriver this module
//! starts on a free loopback port and stops when dropped.

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Chromium keeps a window at least about this wide, even headless.
const MIN_WINDOW_WIDTH: u32 = 500;

/// A running chromedriver.
pub struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver, or `None` (after saying why) when the browser is
/// not installed and `CHATS3_REQUIRE_BROWSER` is not set.
pub async fn driver() -> Option<Driver> {
    if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var("CHATS3_REQUIRE_BROWSER").is_err(),
            "chromium and chromium-driver are required (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipping browser test: install chromium and chromium-driver to run it");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(Driver { child, url });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("chromedriver did not start");
}

impl Driver {
    /// A fresh browser (its own profile, so its own cookies and storage).
    pub async fn browser(&self, width: u32, height: u32) -> Browser {
        self.browser_with(width, height, &[]).await
    }

    /// A fresh browser that prefers a dark colour scheme.
    pub async fn dark_browser(&self, width: u32, height: u32) -> Browser {
        self.browser_with(width, height, &["--blink-settings=preferredColorScheme=0"])
            .await
    }

    async fn browser_with(&self, width: u32, height: u32, extra: &[&str]) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--no-first-run".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--use-fake-ui-for-media-stream".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let mut caps = serde_json::Map::new();
        let mut options = json!({ "binary": CHROMIUM, "args": args });
        if width < MIN_WINDOW_WIDTH {
            // A window this narrow is widened by Chromium: emulate the phone's viewport instead.
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0, "touch": true },
            });
        }
        caps.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::rustls()
            .expect("tls")
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("browser session");
        Browser {
            client,
            _profile: profile,
        }
    }
}

/// One browser window.
pub struct Browser {
    pub client: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The element, waiting up to 10 s for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Waits up to 20 s (a loaded CI host runs many browsers at once) until
    /// `check` holds for the text of `css`; the panic shows the last text seen.
    pub async fn wait_text(&self, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let mut last = None;
        for _ in 0..400 {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
            {
                if check(&text) {
                    return text;
                }
                last = Some(text);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what} in {css}; last text: {last:?}");
    }

    /// The bodies of the messages shown, in order.
    pub async fn message_bodies(&self) -> Vec<String> {
        let mut bodies = Vec::new();
        for element in self
            .client
            .find_all(Locator::Css("#messages .message .body"))
            .await
            .unwrap()
        {
            bodies.push(element.text().await.unwrap_or_default());
        }
        bodies
    }

    /// Waits until a message with this body is shown.
    pub async fn wait_message(&self, body: &str) {
        for _ in 0..200 {
            if self.message_bodies().await.iter().any(|b| b == body) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "message {body:?} never appeared; shown: {:?}",
            self.message_bodies().await
        );
    }

    /// A CSS selector for the message showing `body` (waits for it).
    pub async fn message_with_body(&self, body: &str) -> String {
        self.wait_message(body).await;
        for element in self
            .client
            .find_all(Locator::Css("#messages .message"))
            .await
            .unwrap()
        {
            let Ok(text) = element.find(Locator::Css(".body")).await else {
                continue;
            };
            if text.text().await.unwrap_or_default() == body {
                let id = element
                    .attr("data-message-id")
                    .await
                    .unwrap()
                    .unwrap_or_default();
                return format!("#messages .message[data-message-id=\"{id}\"]");
            }
        }
        panic!("no message {body:?}");
    }

    /// Waits until an image attachment preview has loaded.
    pub async fn wait_image(&self) {
        for _ in 0..300 {
            let loaded = self
                .client
                .execute(
                    "return [...document.querySelectorAll('#messages .message img')].some(i => i.complete && i.naturalWidth > 0);",
                    vec![],
                )
                .await
                .unwrap();
            if loaded == serde_json::Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no image preview appeared");
    }

    /// Runs `script` (a function body) until it returns something other
    /// than null, for up to 10 s; panics with `what` otherwise.
    pub async fn wait_for(&self, what: &str, script: &str) -> serde_json::Value {
        for _ in 0..200 {
            let value = self.client.execute(script, vec![]).await.unwrap();
            if !value.is_null() {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// Presses a key (a WebDriver key code such as `"\u{E007}"` for Enter)
    /// in the element that has the focus.
    pub async fn press(&self, key: &str) {
        let focused = self.client.active_element().await.unwrap();
        focused.send_keys(key).await.unwrap();
    }

    /// The WCAG A/AA violations axe-core finds on the page, as
    /// "rule: target" lines (axe-core is vendored under tests/e2e/vendor).
    pub async fn axe_violations(&self) -> Vec<String> {
        const AXE: &str = include_str!("vendor/axe-core/axe.min.js");
        self.client.execute(AXE, vec![]).await.unwrap();
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1]; \
                 axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }) \
                   .then(r => done(r.violations.flatMap(v => v.nodes.map(n => \
                     v.id + ': ' + n.target.join(' ') + ' ' + (n.failureSummary || '').replace(/\\s+/g, ' '))))) \
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .unwrap();
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Saves a PNG screenshot under `docs/screenshots/`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
