//! Connection bounds: `[server] max_connections` and the request head size.

use crate::helpers::{envelope, spawn_app, spawn_app_with};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";

/// Sends `/health` on `socket` and reads until its answer is complete.
async fn health_on(socket: &mut TcpStream) -> String {
    socket.write_all(HEALTH).await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\"status\":\"ok\"") {
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut chunk))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(n > 0, "connection closed before the answer");
        answer.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// True when the server closes `socket` without answering.
async fn closed_at_once(socket: &mut TcpStream) -> bool {
    let _ = socket.write_all(HEALTH).await;
    let mut chunk = [0u8; 256];
    matches!(
        tokio::time::timeout(Duration::from_secs(3), socket.read(&mut chunk)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn past_max_connections_new_connections_are_closed_while_open_ones_are_served() {
    let app = spawn_app_with(|c| c.server.max_connections = 8).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut served = TcpStream::connect(&address).await.unwrap();
    assert!(health_on(&mut served).await.starts_with("HTTP/1.1 200"));
    let mut idle = Vec::new();
    for _ in 0..7 {
        idle.push(TcpStream::connect(&address).await.unwrap());
    }
    let mut extra = TcpStream::connect(&address).await.unwrap();
    assert!(
        closed_at_once(&mut extra).await,
        "the ninth connection is refused"
    );
    assert!(
        health_on(&mut served).await.starts_with("HTTP/1.1 200"),
        "an open connection is still served"
    );
    drop(idle);
    crate::helpers::eventually("a new connection to be served again", || async {
        app.client
            .get(app.url("/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_request_head_over_64_kib_answers_431_in_the_envelope() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/health"))
        .header("x-padding", "a".repeat(70 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body = envelope(response).await;
    assert_eq!(body["success"], false);
    assert_eq!(body["message"], "Request header fields too large");
    let fits = app
        .client
        .get(app.url("/health"))
        .header("x-padding", "a".repeat(60 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(fits.status(), 200, "a 60 KiB head is served");
    app.stop().await;
}

/// Sends a `/health` request whose head is about `padding` bytes long on
/// `socket` (already used once), and reads the answer until the server
/// closes the connection.
async fn padded_health_on(socket: &mut TcpStream, padding: usize) -> String {
    let head = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nx-padding: {}\r\n\r\n",
        "a".repeat(padding)
    );
    // The server may answer and close before it has read the whole head.
    let _ = socket.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("no answer in time: {}", String::from_utf8_lossy(&answer)),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn an_over_long_head_on_a_reused_connection_answers_the_431_envelope() {
    let app = spawn_app().await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut request_ids = Vec::new();
    // 70 KiB is past the bound but within what the HTTP parser buffers;
    // 300 KiB and 2 MiB are past the parser's own buffer too.
    for padding in [70 * 1024, 300 * 1024, 2 * 1024 * 1024] {
        let mut socket = TcpStream::connect(&address).await.unwrap();
        assert!(health_on(&mut socket).await.starts_with("HTTP/1.1 200"));
        let answer = padded_health_on(&mut socket, padding).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{padding}: {answer}");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        let head = head.to_ascii_lowercase();
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(body["success"], false);
        assert_eq!(body["message"], "Request header fields too large");
        let id = body["meta"]["requestId"].as_str().unwrap().to_owned();
        assert!(head.contains(&format!("x-request-id: {id}")), "{head}");
        request_ids.push(id);
    }
    request_ids.sort();
    request_ids.dedup();
    assert_eq!(request_ids.len(), 3, "each answer has its own request id");
    app.stop().await;
}
