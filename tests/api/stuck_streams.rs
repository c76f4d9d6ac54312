//! Event streams whose client stops reading: raw sockets with a small
//! receive buffer that never read while the room floods them. They end
//! (within the write timeout, or once they fall a subscriber queue
//! behind) and the server's memory stays bounded meanwhile.

use crate::helpers::{
    KillOnDrop, TestApp, envelope, mib, resident_bytes, spawn_app_with, spawn_binary, terminate,
};
use futures::StreamExt;
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

/// Reads a chunked answer until its last chunk or the connection's end,
/// giving up after `limit`; returns the bytes read.
async fn read_to_end_of_body(socket: &mut TcpStream, limit: Duration) -> Option<usize> {
    const LAST_CHUNK: &[u8] = b"\r\n0\r\n\r\n";
    let deadline = Instant::now() + limit;
    let mut received = 0usize;
    let mut tail: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, socket.read(&mut chunk))
            .await
            .ok()?
        {
            Ok(0) | Err(_) => return Some(received),
            Ok(n) => {
                received += n;
                tail.extend_from_slice(&chunk[..n]);
                if tail.ends_with(LAST_CHUNK) {
                    return Some(received);
                }
                tail.drain(..tail.len().saturating_sub(LAST_CHUNK.len()));
            }
        }
    }
}

/// Stalled streams in the memory test.
const STALLED: usize = 16;
/// Signaling events of the memory test's flood, and the size of each.
const FLOOD_EVENTS: usize = 3000;
const FLOOD_EVENT_BYTES: usize = 10 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_that_never_read_while_the_room_floods_keep_server_memory_bounded_and_end() {
    let data_dir = tempfile::tempdir().unwrap();
    let (child, address) = spawn_binary(
        &[
            (
                "CHATS3_STORAGE__FS_ROOT",
                &data_dir.path().to_string_lossy(),
            ),
            // Long enough that the streams are still stalled when measured.
            ("CHATS3_SERVER__STREAM_WRITE_TIMEOUT", "120s"),
            // Small buffers of their own, so what grows is the streams'.
            ("CHATS3_ACTORS__SIGNALING_BUFFER_LEN", "20"),
            ("CHATS3_ACTORS__HISTORY_TAIL", "20"),
        ],
        std::process::Stdio::null(),
    );
    let mut server = KillOnDrop(child);
    let pid = server.0.id();
    let app = TestApp::of_process(address, data_dir);
    let names: Vec<String> = (0..=STALLED).map(|n| format!("User {n}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (_, joined) = app.room_with(&names).await;
    let (ann, readers) = (&joined[0], &joined[1..]);
    let mut sockets = Vec::new();
    for (n, reader) in readers.iter().enumerate() {
        sockets.push(stuck_stream(&app, &reader.session_id, n % 2 == 1).await);
    }
    crate::helpers::eventually("every stalled stream open", || async {
        app.metric("chats3_streams_open").await == STALLED as u64
    })
    .await;
    let before = resident_bytes(pid);

    // 30 MB of events: held per stream, 16 stalled streams would pin 480 MB.
    let data = json!("x".repeat(FLOOD_EVENT_BYTES));
    let flood_started = Instant::now();
    futures::stream::iter(0..FLOOD_EVENTS)
        .for_each_concurrent(8, |_| {
            let (app, data, session) = (&app, &data, &ann.session_id);
            async move {
                let response = app
                    .post_as(
                        session,
                        "/api/v1/signaling",
                        &json!({ "type": "offer", "data": data }),
                    )
                    .await;
                assert_eq!(response.status(), 200);
            }
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let grown = resident_bytes(pid).saturating_sub(before);
    let still_open = app.metric("chats3_streams_open").await;
    eprintln!(
        "{} MB flooded in {:?} past {still_open} stalled streams: the server grew by {:.1} MiB (from {:.1} MiB)",
        FLOOD_EVENTS * FLOOD_EVENT_BYTES / 1_000_000,
        flood_started.elapsed(),
        mib(grown),
        mib(before)
    );
    assert_eq!(
        still_open, STALLED as u64,
        "the streams were stalled, not ended, when measured"
    );
    // Bounded by the shared subscriber queue (1,024 events, 10 MB here)
    // plus one write batch per stream.
    assert!(
        grown < 64 * 1024 * 1024,
        "stalled streams grew the server by {grown} bytes"
    );

    // Read now, each stream gets what was in flight, then ends (its body's
    // last chunk; a fresh connection also closes): it fell too far behind,
    // and its client must resume with Last-Event-ID.
    let flood_bytes = FLOOD_EVENTS * FLOOD_EVENT_BYTES;
    for (n, socket) in sockets.iter_mut().enumerate() {
        let reading = Instant::now();
        let received = read_to_end_of_body(socket, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("stream {n} did not end within 10 s of being read"));
        eprintln!(
            "stream {n}: {:.1} MB in flight, then ended, {:?} after its client began to read",
            received as f64 / 1e6,
            reading.elapsed()
        );
        assert!(
            received < flood_bytes / 4,
            "stream {n} received {received} bytes of a {flood_bytes} byte flood before it ended"
        );
    }
    crate::helpers::eventually("the ended streams to stop counting", || async {
        app.metric("chats3_streams_open").await == 0
    })
    .await;
    terminate(&mut server.0, Duration::from_secs(30)).await;
}
