//! Slowloris: hundreds of connections send a request head a byte at a
//! time and never finish it. The server's header read timeout (30 s,
//! `HEADER_READ_TIMEOUT` in src/serve.rs, for a connection's first head and
//! for later ones on a kept-alive connection alike) closes every one, and a
//! normal client's `/health` and message posts are served meanwhile.

use crate::helpers::{KillOnDrop, TestApp, spawn_binary, terminate};
use serde_json::json;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connections that dribble their heads.
const SLOW_CLIENTS: usize = 500;

/// The server's header read timeout (src/serve.rs).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Past the timeout, how long closing all of them may take.
const CLOSE_SLACK: Duration = Duration::from_secs(15);

/// A normal request that took longer than this fails the test: far above
/// what a loopback request takes, so only a starved server reaches it.
const NORMAL_LIMIT: Duration = Duration::from_secs(2);

/// Sends one complete `/health` on `socket` and reads its answer.
async fn health_on(socket: &mut TcpStream) {
    socket
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&answer).contains("\"status\":\"ok\"") {
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "health answered before the slow head");
        answer.extend_from_slice(&chunk[..n]);
    }
}

/// One slowloris connection: (on a kept-alive connection when `reused`)
/// the start of a head, then a byte a second, until the server closes the
/// connection. Returns how long after the slow head began that was.
async fn dribble(address: String, reused: bool) -> Duration {
    let mut socket = TcpStream::connect(&address).await.unwrap();
    if reused {
        health_on(&mut socket).await;
    }
    let started = Instant::now();
    let (mut reader, mut writer) = socket.into_split();
    let closed = async move {
        let mut sink = [0u8; 1024];
        // A 408 or nothing: either way the connection must end.
        while matches!(reader.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    let dribbling = async move {
        if writer
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .is_err()
        {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if writer.write_all(b"a").await.is_err() {
                return;
            }
        }
    };
    // The dribbling never ends on its own while the server listens; a
    // write error means the server closed as well.
    tokio::select! {
        () = closed => {}
        () = dribbling => {}
    }
    started.elapsed()
}

/// Times one `/health` on a new connection and one message post.
async fn normal_requests(
    app: &TestApp,
    fresh: &reqwest::Client,
    session: &str,
    n: usize,
) -> (Duration, Duration) {
    let started = Instant::now();
    let health = fresh.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200, "/health during the attack");
    let health_took = started.elapsed();
    let started = Instant::now();
    let posted = app
        .post_as(
            session,
            "/api/v1/messages",
            &json!({ "body": format!("normal {n}"), "clientTimestamp": "2025-01-01T00:00:00.000Z" }),
        )
        .await;
    assert_eq!(posted.status(), 200, "a message post during the attack");
    (health_took, started.elapsed())
}

/// Minimum, median, 99th percentile and maximum, in milliseconds.
fn summary(mut took: Vec<Duration>) -> String {
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
    format!(
        "n={} min={:.1}ms p50={:.1}ms p99={:.1}ms max={:.1}ms",
        took.len(),
        ms(took[0]),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(took[took.len() - 1])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes the 30 s header read timeout; run by .ci/run"]
async fn slow_heads_are_closed_by_the_header_timeout_while_normal_clients_stay_fast() {
    let data_dir = tempfile::tempdir().unwrap();
    let (child, address) = spawn_binary(
        &[(
            "CHATS3_STORAGE__FS_ROOT",
            &data_dir.path().to_string_lossy(),
        )],
        Stdio::null(),
    );
    let mut server = KillOnDrop(child);
    let app = TestApp::of_process(address, data_dir);
    let (_, joined) = app.room_with(&["Ann"]).await;
    let session = joined[0].session_id.clone();
    // A new connection for every /health: accepting must keep up too.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();

    let socket_address = app.address.trim_start_matches("http://").to_owned();
    let attack_started = Instant::now();
    let slow: Vec<_> = (0..SLOW_CLIENTS)
        .map(|n| tokio::spawn(dribble(socket_address.clone(), n % 2 == 1)))
        .collect();
    let (mut health, mut posts) = (Vec::new(), Vec::new());
    let mut n = 0;
    while slow.iter().any(|task| !task.is_finished()) {
        assert!(
            attack_started.elapsed() < HEADER_READ_TIMEOUT + CLOSE_SLACK,
            "slow heads still open {:?} after the attack began",
            attack_started.elapsed()
        );
        let (health_took, post_took) = normal_requests(&app, &fresh, &session, n).await;
        health.push(health_took);
        posts.push(post_took);
        n += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut lifetimes = Vec::new();
    for task in slow {
        lifetimes.push(task.await.unwrap());
    }
    eprintln!("slow heads closed after: {}", summary(lifetimes.clone()));
    eprintln!(
        "/health on a new connection meanwhile: {}",
        summary(health.clone())
    );
    eprintln!("message posts meanwhile: {}", summary(posts.clone()));
    let earliest = lifetimes.iter().min().unwrap();
    assert!(
        *earliest >= HEADER_READ_TIMEOUT - Duration::from_secs(2),
        "a slow head was closed after {earliest:?}, before the header timeout: by something else"
    );
    for (what, took) in [("/health", &health), ("a message post", &posts)] {
        let slowest = took.iter().max().unwrap();
        assert!(
            *slowest < NORMAL_LIMIT,
            "{what} took {slowest:?} during the attack"
        );
    }
    assert!(
        n >= 20,
        "normal clients were served throughout ({n} rounds)"
    );
    let stored = crate::helpers::full_history(&app, &session).await;
    assert_eq!(
        stored.len(),
        n + 1,
        "every normal post is in history (and the join)"
    );
    terminate(&mut server.0, Duration::from_secs(30)).await;
}
