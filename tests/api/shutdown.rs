//! Graceful shutdown of the real binary after an uptime longer than its
//! `shutdown_timeout`: every acknowledged message of many rooms reaches
//! storage, and when storage cannot take them the process exits non-zero
//! and says what is unstored.

use crate::helpers::{ADMIN_PASSWORD, walk};
use crate::s3_server::{ACCESS_KEY, S3Server, SECRET_KEY};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::Read;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The binary, started on an S3 server with a long write-behind interval.
struct Binary {
    child: Child,
    address: String,
    started: Instant,
    stderr: std::thread::JoinHandle<String>,
}

impl Binary {
    fn start(s3: &S3Server, shutdown_timeout: &str) -> Binary {
        let (mut child, address) = crate::helpers::spawn_binary(
            &[
                ("CHATS3_SERVER__SHUTDOWN_TIMEOUT", shutdown_timeout),
                ("CHATS3_STORAGE__BACKEND", "s3"),
                ("CHATS3_STORAGE__OPERATION_TIMEOUT", "2s"),
                ("CHATS3_STORAGE__S3__BUCKET", &s3.bucket),
                ("CHATS3_STORAGE__S3__ENDPOINT", &s3.endpoint),
                ("CHATS3_STORAGE__S3__FORCE_PATH_STYLE", "true"),
                ("CHATS3_STORAGE__S3__ACCESS_KEY", ACCESS_KEY),
                ("CHATS3_STORAGE__S3__SECRET_KEY", SECRET_KEY),
                ("CHATS3_ACTORS__FLUSH_INTERVAL", "60s"),
            ],
            Stdio::piped(),
        );
        let started = Instant::now();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Binary {
            child,
            address,
            started,
            stderr,
        }
    }

    /// Creates `rooms` conversations and acknowledges two messages in
    /// each (the join notice and one message); returns their bodies.
    async fn fill(&self, rooms: usize) -> HashSet<String> {
        let client = reqwest::Client::new();
        let acknowledged = futures::stream::iter(0..rooms)
            .map(|n| {
                let (client, base) = (client.clone(), self.address.clone());
                async move { acknowledge_two(&client, &base, n).await }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        acknowledged.into_iter().flatten().collect()
    }

    /// SIGTERM once the process has run longer than `uptime`; waits for its
    /// exit (at most `limit`) and returns it with what it wrote on stderr.
    async fn terminate_after(mut self, uptime: Duration, limit: Duration) -> (ExitStatus, String) {
        while self.started.elapsed() < uptime {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let status = crate::helpers::terminate(&mut self.child, limit).await;
        (status, self.stderr.join().unwrap())
    }
}

async fn acknowledge_two(client: &reqwest::Client, base: &str, n: usize) -> Vec<String> {
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).json(&body).send();
    let id = format!("room-{n}");
    let created: Value = post(
        "/api/v1/admin/conversations",
        json!({ "adminPassword": ADMIN_PASSWORD, "conversationId": id }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let code = created["details"]["joinCode"].as_str().unwrap().to_owned();
    let name = format!("Ann {n}");
    let joined: Value = post(
        "/api/v1/join",
        json!({ "conversationId": id, "joinCode": code, "displayName": name }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let session = joined["details"]["sessionId"].as_str().unwrap().to_owned();
    let body = format!("message of room {n}");
    let sent = client
        .post(format!("{base}/api/v1/messages"))
        .header("x-session-id", session)
        .json(&json!({ "body": body, "clientTimestamp": "2025-01-01T00:00:00Z" }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    vec![format!("{name} joined the conversation"), body]
}

/// Every message body stored in the bucket, each once.
fn stored_bodies(s3: &S3Server) -> Vec<String> {
    walk(&s3.object_path("conversations"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| {
                    let m: Value = serde_json::from_str(l).unwrap();
                    m["body"].as_str().unwrap().to_owned()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn sigterm_after_a_long_uptime_stores_every_acknowledged_message_of_many_rooms() {
    // Each request waits 150 ms, so a room's final flush (its batch, then
    // compaction: about six requests in a row) takes about a second, and
    // all rooms flush together. The old code counted the limit from the
    // start and, past it, left the flush one second: most were lost.
    let s3 = S3Server::start_with_latency(Duration::from_millis(150)).await;
    // The limit leaves the flush room on a busy machine; the uptime passes it.
    let binary = Binary::start(&s3, "10s");
    let acknowledged = binary.fill(40).await;
    assert_eq!(acknowledged.len(), 80);
    assert!(
        stored_bodies(&s3).is_empty(),
        "nothing is flushed before the 60 s interval or a shutdown"
    );
    let (status, stderr) = binary
        .terminate_after(Duration::from_secs(11), Duration::from_secs(20))
        .await;
    assert!(status.success(), "{status:?}: {stderr}");
    let stored = stored_bodies(&s3);
    let distinct: HashSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), distinct.len(), "each message stored once");
    assert_eq!(distinct, acknowledged);
}

#[tokio::test]
async fn sigterm_when_storage_cannot_take_it_exits_non_zero_and_says_what_is_unstored() {
    let mut s3 = S3Server::start().await;
    let binary = Binary::start(&s3, "2s");
    binary.fill(3).await;
    s3.stop();
    let (status, stderr) = binary
        .terminate_after(Duration::ZERO, Duration::from_secs(6))
        .await;
    assert!(!status.success(), "{status:?}: {stderr}");
    assert!(
        stderr.contains("6 acknowledged messages and 0 documents of 3 conversations are unstored"),
        "{stderr}"
    );
    for n in 0..3 {
        assert!(
            stderr.contains(&format!("room-{n} (2 messages, 0 documents)")),
            "{stderr}"
        );
    }
}
