//! The HTTP edge: deadlines for bodies (uploads may be slow, other bodies
//! may not), `Expect: 100-continue`, extractor rejections in the envelope,
//! CORS with hostile wildcard look-alikes, client addresses behind a
//! trusted proxy, and the metrics token.

use crate::helpers::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the head and `Content-Length` bytes of body arrived (or
/// the peer closes), within 10 s.
async fn read_answer(socket: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&data);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer within 10 s");
    String::from_utf8_lossy(&data).into_owned()
}

fn body_of(answer: &str) -> Value {
    serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap()
}

#[tokio::test]
async fn an_upload_slower_than_the_request_timeout_succeeds() {
    // Gaps of 300 ms stay well inside the 1 s stall limit on a busy machine.
    let app = spawn_app_with(|c| c.server.request_timeout = Duration::from_secs(1)).await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let part_head = "--XB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n";
    let chunks: Vec<String> = (0..8).map(|i| format!("line {i}\n")).collect();
    let tail = "\r\n--XB--\r\n";
    let length = part_head.len() + chunks.iter().map(String::len).sum::<usize>() + tail.len();
    let mut socket = connect(&app).await;
    let head = format!(
        "POST /api/v1/attachments HTTP/1.1\r\nHost: x\r\nx-session-id: {}\r\nContent-Type: multipart/form-data; boundary=XB\r\nContent-Length: {length}\r\n\r\n{part_head}",
        joined[0].session_id
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    for chunk in &chunks {
        tokio::time::sleep(Duration::from_millis(300)).await;
        socket.write_all(chunk.as_bytes()).await.unwrap();
    }
    socket.write_all(tail.as_bytes()).await.unwrap();
    assert!(started.elapsed() > Duration::from_millis(2000));
    let answer = read_answer(&mut socket).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(body_of(&answer)["details"]["sizeBytes"], 56);
}

#[tokio::test]
async fn a_stalled_body_answers_408_in_the_envelope() {
    let app = spawn_app_with(|c| c.server.request_timeout = Duration::from_millis(300)).await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    for (path, kind, start) in [
        ("/api/v1/messages", "application/json", "{\"body\":"),
        (
            "/api/v1/attachments",
            "multipart/form-data; boundary=XB",
            "--XB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhel",
        ),
    ] {
        let mut socket = connect(&app).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nx-session-id: {}\r\nContent-Type: {kind}\r\nContent-Length: 300\r\n\r\n{start}",
            joined[0].session_id
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let answer = read_answer(&mut socket).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(started.elapsed() < Duration::from_secs(5), "{path}");
        let body = body_of(&answer);
        assert_eq!(body["success"], false);
        assert!(body["meta"]["requestId"].is_string());
    }
}

#[tokio::test]
async fn expect_continue_over_the_limit_answers_413_at_once() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    for (path, length) in [
        ("/api/v1/messages", 2_000_000),
        ("/api/v1/attachments", 20_000_000),
    ] {
        let mut socket = connect(&app).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nx-session-id: {}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nExpect: 100-continue\r\n\r\n",
            joined[0].session_id
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let answer = read_answer(&mut socket).await;
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "{path}: no 100 Continue first: {answer}"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{path}");
        assert_eq!(body_of(&answer)["success"], false);
    }
}

#[tokio::test]
async fn extractor_rejections_answer_in_the_envelope() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    for path in [
        "/api/v1/attachments/%ff",
        "/api/v1/messages/%ff/read",
        "/api/v1/files/room/id?expires=soon&sig=x",
        "/room/%ff",
    ] {
        let request = if path.ends_with("/read") {
            app.client.post(app.url(path))
        } else {
            app.client.get(app.url(path))
        };
        let response = request
            .header("x-session-id", session)
            .send()
            .await
            .unwrap();
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        let (status, message, _) = failure(response).await;
        assert_eq!(
            (status, message.as_str()),
            (400, "Validation error"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn cors_refuses_an_origin_that_only_looks_like_a_wildcard_match() {
    let app = spawn_app().await;
    for origin in [
        "https://evil.net/.example.com",
        "https://example.com.evil.net",
        "https://example.com",
    ] {
        let response = app
            .client
            .get(app.url("/health"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{origin}"
        );
    }
}

async fn session_status(app: &TestApp, forwarded_for: &str) -> u16 {
    app.client
        .get(app.url("/api/v1/session"))
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn forwarded_for_gives_each_client_its_budget_only_behind_a_trusted_proxy() {
    let trusted = spawn_app_with(|c| {
        c.rate_limit.per_ip_per_minute = 3;
        c.server.trusted_proxies = vec!["127.0.0.0/8".to_owned().try_into().unwrap()];
    })
    .await;
    for _ in 0..3 {
        assert_eq!(session_status(&trusted, "203.0.113.1").await, 401);
    }
    assert_eq!(session_status(&trusted, "203.0.113.1").await, 429);
    assert_eq!(
        session_status(&trusted, "198.51.100.7, 203.0.113.2").await,
        401,
        "another client behind the proxy has its own budget"
    );

    let untrusted = spawn_app_with(|c| c.rate_limit.per_ip_per_minute = 3).await;
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        assert_eq!(session_status(&untrusted, client).await, 401);
    }
    assert_eq!(
        session_status(&untrusted, "203.0.113.4").await,
        429,
        "a peer that is no trusted proxy cannot pick its address"
    );
}

#[tokio::test]
async fn metrics_need_the_bearer_token_when_one_is_set() {
    let app = spawn_app_with(|c| c.server.metrics_token = "s3cret".into()).await;
    for authorization in [None, Some("Bearer wrong"), Some("s3cret")] {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let (status, _, _) = failure(request.send().await.unwrap()).await;
        assert_eq!(status, 401, "{authorization:?}");
    }
    let response = app
        .client
        .get(app.url("/metrics"))
        .header("authorization", "Bearer s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("chats3_http_requests_total")
    );
    let open = spawn_app().await;
    assert!(
        open.metrics().await.contains("chats3_http_requests_total"),
        "open by default"
    );
}

#[tokio::test]
async fn a_bad_allowed_origin_pattern_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[[integrators]]\nid = \"a\"\nsecret = \"s\"\nallowed_origins = [\"https://*.example.com/path\"]\n",
    )
    .unwrap();
    let error = chats3::config::Config::load(Some(&path)).unwrap_err();
    assert!(error.contains("allowed origin"), "{error}");
    let _ = json!(null);
}
