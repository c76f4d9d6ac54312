//! `spawn_app()` and one helper per endpoint.

use chats3::config::{Backend, Config, Integrator};
use chats3::startup::Application;
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use std::pin::Pin;
use std::sync::Once;
use std::time::Duration;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const ADMIN_PASSWORD: &str = "test-admin-password";
pub const INTEGRATOR_ID: &str = "test-app";
pub const INTEGRATOR_SECRET: &str = "test-secret-123";
pub const INTEGRATOR_ORIGIN: &str = "http://localhost:4000";

static TRACING: Once = Once::new();

/// The configuration tests start from: port 0, rate limits off, one integrator.
pub fn test_config(data_dir: &std::path::Path) -> Config {
    TRACING.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("debug")
                .try_init();
        }
    });
    let mut config = Config::load(None).expect("default config");
    config.server.port = 0;
    config.storage.backend = Backend::Fs;
    config.storage.fs_root = data_dir.to_string_lossy().into_owned();
    // Each test's own log, beside its data: "./data/wal" would be shared.
    config.durability.wal_dir = wal_dir(data_dir);
    config.auth.admin_password = ADMIN_PASSWORD.into();
    config.rate_limit.per_ip_per_minute = 0;
    config.rate_limit.admin_per_minute = 0;
    config.actors.flush_interval = Duration::from_millis(50);
    config.integrators = vec![Integrator {
        id: INTEGRATOR_ID.into(),
        secret: INTEGRATOR_SECRET.into(),
        allowed_origins: vec![INTEGRATOR_ORIGIN.into(), "https://*.example.com".into()],
        auto_create: false,
    }];
    config
}

/// The write-ahead log directory of a test whose data is in `data_dir`.
pub fn wal_dir(data_dir: &std::path::Path) -> String {
    data_dir.join("wal").to_string_lossy().into_owned()
}

/// A running server.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub data_dir: TempDir,
    pub shutdown: CancellationToken,
    pub server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A participant's session.
#[derive(Debug, Clone)]
pub struct Joined {
    pub session_id: String,
    pub user_id: String,
}

/// Starts the server with the test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the server after `adjust` changed the test configuration.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    spawn_app_in(data_dir, adjust).await
}

/// Starts the server on an existing data directory.
pub async fn spawn_app_in(data_dir: TempDir, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = test_config(data_dir.path());
    adjust(&mut config);
    let app = Application::build(config).await.expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        server: Some(server),
        shutdown,
        ..TestApp::of_process(address, data_dir)
    }
}

impl TestApp {
    /// The helpers of a test app, for a server running as its own process
    /// (see [`spawn_binary`]); stopping it is the caller's.
    pub fn of_process(address: String, data_dir: TempDir) -> TestApp {
        TestApp {
            address,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            data_dir,
            shutdown: CancellationToken::new(),
            server: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Graceful stop; returns the data directory for a restart.
    pub async fn stop(mut self) -> TempDir {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(30), server)
                .await
                .expect("shutdown in time")
                .unwrap()
                .unwrap();
        }
        let TestApp { data_dir, .. } = self;
        data_dir
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_as(&self, session: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("x-session-id", session)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_as(&self, session: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("x-session-id", session)
            .send()
            .await
            .unwrap()
    }

    /// Creates a conversation; returns its id and join code.
    pub async fn create_conversation(&self, custom_id: Option<&str>) -> (String, String) {
        let mut body = json!({ "adminPassword": ADMIN_PASSWORD });
        if let Some(id) = custom_id {
            body["conversationId"] = json!(id);
        }
        let response = self.post_json("/api/v1/admin/conversations", &body).await;
        assert_eq!(response.status(), 200);
        let details = envelope(response).await["details"].clone();
        (
            details["conversationId"].as_str().unwrap().to_owned(),
            details["joinCode"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn try_join(&self, conversation: &str, code: &str, name: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/join",
            &json!({ "conversationId": conversation, "joinCode": code, "displayName": name }),
        )
        .await
    }

    pub async fn join(&self, conversation: &str, code: &str, name: &str) -> Joined {
        let response = self.try_join(conversation, code, name).await;
        assert_eq!(response.status(), 200, "join as {name}");
        let details = envelope(response).await["details"].clone();
        Joined {
            session_id: details["sessionId"].as_str().unwrap().to_owned(),
            user_id: details["userId"].as_str().unwrap().to_owned(),
        }
    }

    /// A room with one conversation and `names` joined.
    pub async fn room_with(&self, names: &[&str]) -> (String, Vec<Joined>) {
        let (id, code) = self.create_conversation(None).await;
        let mut joined = Vec::new();
        for name in names {
            joined.push(self.join(&id, &code, name).await);
        }
        (id, joined)
    }

    pub async fn send(&self, session: &str, body: &str) -> Value {
        let response = self
            .post_as(
                session,
                "/api/v1/messages",
                &json!({ "body": body, "clientTimestamp": "2025-01-01T00:00:00.000Z" }),
            )
            .await;
        assert_eq!(response.status(), 200);
        envelope(response).await["details"].clone()
    }

    /// The compatible history (last 100, oldest first).
    pub async fn history(&self, session: &str) -> Vec<Value> {
        let response = self.get_as(session, "/api/v1/messages").await;
        assert_eq!(response.status(), 200);
        envelope(response).await["details"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The status `/ready` answers.
    pub async fn ready_status(&self) -> u16 {
        self.client
            .get(self.url("/ready"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// One metric's value (`u64::MAX` when absent).
    pub async fn metric(&self, name: &str) -> u64 {
        self.metrics()
            .await
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(u64::MAX)
    }

    /// The join code of a conversation as stored on disk (sessions do not
    /// survive a restart, so tests rejoin with it).
    pub fn stored_join_code(&self, conversation: &str) -> String {
        let path = self
            .data_dir
            .path()
            .join(format!("conversations/{conversation}/meta.json"));
        let meta: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        meta["joinCode"].as_str().unwrap().to_owned()
    }

    /// Opens the event stream of a session.
    pub async fn stream(&self, session: &str, last_event_id: Option<&str>) -> EventStream {
        let mut request = self
            .client
            .get(self.url(&format!("/api/v1/signaling?sessionId={session}")));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        EventStream {
            events: Box::pin(response.bytes_stream().eventsource()),
        }
    }
}

/// The body of an answer, checked to be an envelope.
pub async fn envelope(response: reqwest::Response) -> Value {
    let body: Value = response.json().await.expect("JSON body");
    assert!(body["success"].is_boolean(), "{body}");
    assert!(body["meta"]["requestId"].is_string(), "{body}");
    assert!(body["meta"]["timestamp"].is_string(), "{body}");
    body
}

/// Status and envelope message of an answer.
pub async fn failure(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let body = envelope(response).await;
    assert_eq!(body["success"], false);
    (
        status,
        body["message"].as_str().unwrap_or_default().to_owned(),
        body,
    )
}

type Events = Pin<
    Box<
        dyn Stream<
                Item = Result<
                    eventsource_stream::Event,
                    eventsource_stream::EventStreamError<reqwest::Error>,
                >,
            > + Send,
    >,
>;

/// An open SSE stream read with a real client.
pub struct EventStream {
    events: Events,
}

/// One received SSE event.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub data: Value,
}

impl EventStream {
    /// The next event, failing after 5 s.
    pub async fn next(&mut self) -> Received {
        self.next_within(Duration::from_secs(5))
            .await
            .expect("an event within 5 s")
    }

    pub async fn next_within(&mut self, limit: Duration) -> Option<Received> {
        let event = tokio::time::timeout(limit, self.events.next())
            .await
            .ok()??
            .ok()?;
        Some(Received {
            id: event.id,
            data: serde_json::from_str(&event.data).expect("JSON event data"),
        })
    }

    /// The next event of a type, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Received {
        loop {
            let event = self.next().await;
            if event.data["type"] == kind {
                return event;
            }
        }
    }

    /// Reads the opening frames; returns the room-state participants.
    pub async fn opening(&mut self) -> Vec<Value> {
        let connected = self.next().await;
        assert_eq!(
            connected.data,
            json!({"type": "system", "data": "connected"})
        );
        let state = self.next().await;
        assert_eq!(state.data["type"], "room-state");
        state.data["data"]["participants"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Asserts nothing arrives for `limit`.
    pub async fn expect_quiet(&mut self, limit: Duration) {
        if let Some(event) = self.next_within(limit).await {
            panic!("unexpected event {:?}", event.data);
        }
    }
}

/// base64url HMAC-SHA256, as integrators sign.
pub fn hmac(secret: &str, text: &str) -> String {
    chats3::signing::sign(secret.as_bytes(), text.as_bytes())
}

/// Polls `check` until it holds or 10 s pass.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(what, Duration::from_secs(10), check).await
}

/// Waits up to `limit` for `check` to hold, polling every 50 ms.
pub async fn eventually_within<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A spawned server process, killed (SIGKILL) if the test ends before
/// stopping it.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends SIGTERM to a spawned server and waits for its exit, failing the
/// test unless it exits within `limit` of the signal.
pub async fn terminate(
    child: &mut std::process::Child,
    limit: Duration,
) -> std::process::ExitStatus {
    let signalled = std::time::Instant::now();
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            signalled.elapsed() < limit,
            "exits within {limit:?} of the signal"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A config file (`chats3.toml` in the returned directory) naming the
/// test integrator, who signs the tickets, for a spawned binary.
pub fn integrator_config() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[[integrators]]\nid = \"{INTEGRATOR_ID}\"\nsecret = \"{INTEGRATOR_SECRET}\"\nallowed_origins = [\"{INTEGRATOR_ORIGIN}\"]\n"
    );
    std::fs::write(dir.path().join("chats3.toml"), text).unwrap();
    dir
}

/// Starts the real `chats3` binary on port 0 with rate limits off, JSON
/// logs and `envs` on top; returns the process (stdout drained, stderr as
/// asked) and the URL it logged as listening on. Its write-ahead log is
/// in `<fs_root>/wal` when `envs` sets `CHATS3_STORAGE__FS_ROOT`, else off
/// (the default "./data/wal" would be shared by tests), unless `envs` sets
/// `CHATS3_DURABILITY__WAL_DIR`.
pub fn spawn_binary(
    envs: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> (std::process::Child, String) {
    use std::io::BufRead;
    let own_wal_dir = envs
        .iter()
        .find(|(key, _)| *key == "CHATS3_STORAGE__FS_ROOT")
        .map_or_else(String::new, |(_, root)| wal_dir(std::path::Path::new(root)));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chats3"))
        .env("CHATS3_DURABILITY__WAL_DIR", own_wal_dir)
        .env("CHATS3_SERVER__PORT", "0")
        .env("CHATS3_AUTH__ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("CHATS3_RATE_LIMIT__PER_IP_PER_MINUTE", "0")
        .env("CHATS3_RATE_LIMIT__ADMIN_PER_MINUTE", "0")
        .env("CHATS3_LOG__FORMAT", "json")
        .env("RUST_LOG", "info")
        .envs(envs.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start chats3");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("server output").unwrap();
        if line.contains("chats3 listening") {
            let log: Value = serde_json::from_str(&line).unwrap();
            break log["fields"]["url"].as_str().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, address)
}

/// Resident memory of a process, in bytes (`VmRSS` of `/proc/PID/status`).
pub fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// File descriptors a process has open (entries of `/proc/PID/fd`).
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Bytes as MiB, for test output.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Every message of the conversation `session` is in, oldest first, read
/// page by page (`direction=newer` from the start).
pub async fn full_history(app: &TestApp, session: &str) -> Vec<Value> {
    let mut messages = Vec::new();
    let mut cursor = "0".to_owned();
    loop {
        let response = app
            .get_as(
                session,
                &format!("/api/v1/messages?limit=100&direction=newer&cursor={cursor}"),
            )
            .await;
        assert_eq!(response.status(), 200);
        let page = envelope(response).await["details"].clone();
        messages.extend(page["messages"].as_array().unwrap().iter().cloned());
        if !page["hasMore"].as_bool().unwrap() {
            return messages;
        }
        cursor = page["nextCursor"].as_str().unwrap().to_owned();
    }
}

/// Every message line of every stored NDJSON object of a conversation,
/// read from the directory that holds its keys (an fs root, or an S3
/// server's bucket directory).
pub fn stored_messages(root: &std::path::Path, conversation: &str) -> Vec<Value> {
    let messages = root.join(format!("conversations/{conversation}/messages"));
    // A compaction may remove a batch between the listing and its read:
    // then the listing is taken again.
    'listing: loop {
        let mut objects: Vec<_> = walk(&messages)
            .into_iter()
            .filter(|path| path.extension().is_some_and(|e| e == "ndjson"))
            .collect();
        objects.sort();
        let mut found = Vec::new();
        for path in &objects {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue 'listing,
                Err(e) => panic!("reading {}: {e}", path.display()),
            };
            found.extend(
                text.lines()
                    .filter(|line| !line.trim().is_empty())
                    .map(|line| {
                        serde_json::from_str::<Value>(line).expect("a stored message line")
                    }),
            );
        }
        return found;
    }
}

/// Every file under `dir`, at any depth (none when it does not exist).
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                vec![e.path()]
            }
        })
        .collect()
}
