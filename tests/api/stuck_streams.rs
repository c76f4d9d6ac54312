//! Event streams whose client stops reading: raw sockets with a small
//! receive buffer that never read while the room floods them.

use crate::helpers::{TestApp, envelope, spawn_app_with};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A signaling event's payload: large, so the socket fills quickly.
fn big_data() -> serde_json::Value {
    json!("x".repeat(60 * 1024))
}

/// Connects with a small receive buffer (so the server's writes stall soon).
async fn small_socket(app: &TestApp) -> TcpStream {
    let address = app.address.trim_start_matches("http://").parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(address).await.unwrap()
}

fn stream_request(session: &str) -> String {
    format!("GET /api/v1/signaling?sessionId={session} HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// Opens a stream that is never read: on a fresh connection (chats3's own
/// writer), or after a first request answered on the same connection
/// (hyper's keep-alive path).
async fn stuck_stream(app: &TestApp, session: &str, reused: bool) -> TcpStream {
    let mut socket = small_socket(app).await;
    if reused {
        socket
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("\"status\":\"ok\"") {
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "health answered");
            answer.extend_from_slice(&chunk[..n]);
        }
    }
    socket
        .write_all(stream_request(session).as_bytes())
        .await
        .unwrap();
    socket
}

/// Posts `count` large signaling events from `session`.
async fn flood(app: &TestApp, session: &str, count: usize) {
    for _ in 0..count {
        let response = app
            .post_as(
                session,
                "/api/v1/signaling",
                &json!({ "type": "offer", "data": big_data() }),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
}

async fn a_stuck_stream_ends_and_frees_the_name(reused: bool) {
    let app = spawn_app_with(|c| c.server.stream_write_timeout = Duration::from_secs(2)).await;
    let (id, code) = app.create_conversation(None).await;
    let ann = app.join(&id, &code, "Ann").await;
    let bob = app.join(&id, &code, "Bob").await;
    let _socket = stuck_stream(&app, &bob.session_id, reused).await;
    crate::helpers::eventually("Bob's stream to hold his name", || async {
        app.try_join(&id, &code, "bob").await.status() == 409
    })
    .await;
    // Flood until the name frees; without the write timeout it never does.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the stuck stream never ended");
        flood(&app, &ann.session_id, 20).await;
        let response = app.try_join(&id, &code, "bob").await;
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 409, "{}", envelope(response).await);
    }
    assert_eq!(app.metric("chats3_streams_open").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_stream_whose_client_stops_reading_ends_within_the_write_timeout() {
    a_stuck_stream_ends_and_frees_the_name(false).await;
}

#[tokio::test]
async fn a_stream_on_a_reused_connection_whose_client_stops_reading_ends_too() {
    a_stuck_stream_ends_and_frees_the_name(true).await;
}

#[tokio::test]
async fn a_stream_whose_client_stops_reading_does_not_hold_up_shutdown() {
    let app = spawn_app_with(|c| {
        c.server.stream_write_timeout = Duration::from_secs(60);
        c.server.shutdown_timeout = Duration::from_secs(20);
    })
    .await;
    let (id, code) = app.create_conversation(None).await;
    let ann = app.join(&id, &code, "Ann").await;
    let bob = app.join(&id, &code, "Bob").await;
    let carol = app.join(&id, &code, "Carol").await;
    let _fresh = stuck_stream(&app, &bob.session_id, false).await;
    let _reused = stuck_stream(&app, &carol.session_id, true).await;
    crate::helpers::eventually("both streams open", || async {
        app.metric("chats3_streams_open").await == 2
    })
    .await;
    // Far more than a loopback socket's send and receive buffers take.
    flood(&app, &ann.session_id, 200).await;
    let started = Instant::now();
    app.stop().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(6), "shutdown took {took:?}");
}
