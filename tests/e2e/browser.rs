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
        self.browser_with(width, height, serde_json::Map::new())
            .await
    }

    /// A fresh browser whose viewport is `width` x `height` CSS pixels
    /// however narrow (a window cannot be narrower than 500 px).
    pub async fn phone(&self, width: u32, height: u32) -> Browser {
        let mut options = serde_json::Map::new();
        options.insert(
            "mobileEmulation".into(),
            json!({ "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1 } }),
        );
        self.browser_with(width.max(500), height, options).await
    }

    /// A fresh browser with more `goog:chromeOptions`.
    async fn browser_with(
        &self,
        width: u32,
        height: u32,
        mut options: serde_json::Map<String, serde_json::Value>,
    ) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let args = [
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
        let mut caps = serde_json::Map::new();
        options.insert("binary".into(), json!(CHROMIUM));
        options.insert("args".into(), json!(args));
        caps.insert("goog:chromeOptions".into(), options.into());
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

    /// Waits up to 10 s until `check` holds for the text of `css`.
    pub async fn wait_text(&self, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        for _ in 0..200 {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
                && check(&text)
            {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what} in {css}");
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
