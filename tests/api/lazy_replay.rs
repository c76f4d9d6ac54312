//! Resuming from an old cursor replays lazily: a long backlog arrives in
//! order, and streams that never read hold no more of it than a chunk.

use crate::helpers::{
    KillOnDrop, TestApp, resident_bytes, spawn_app_with, spawn_binary, terminate,
};
use futures::{FutureExt, StreamExt};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

#[tokio::test]
async fn a_long_backlog_is_replayed_in_order_then_live() {
    // A short replay buffer: most of the backlog comes from the tail.
    let app = spawn_app_with(|c| c.actors.signaling_buffer_len = 40).await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&joined[0], &joined[1]);
    let mut live = app.stream(&bob.session_id, None).await;
    live.opening().await;
    app.send(&ann.session_id, "m0").await;
    let from = live.next_of("new-message").await.id;
    drop(live);
    for n in 1..300 {
        app.send(&ann.session_id, &format!("m{n}")).await;
    }
    let mut resumed = app.stream(&bob.session_id, Some(&from)).await;
    resumed.opening().await;
    let mut previous: u64 = from.parse().unwrap();
    for n in 1..300 {
        let event = resumed.next_of("new-message").await;
        assert_eq!(event.data["data"]["body"], format!("m{n}"));
        let id: u64 = event.id.parse().unwrap();
        assert!(id > previous, "ids increase");
        previous = id;
    }
    app.send(&ann.session_id, "live").await;
    let live = resumed.next_of("new-message").await;
    assert_eq!(live.data["data"]["body"], "live", "no gap, no duplicate");
}

/// Messages in the backlog of the memory test.
const BACKLOG: usize = 1500;

#[tokio::test]
async fn resumed_streams_that_never_read_do_not_hold_the_backlog() {
    let data_dir = tempfile::tempdir().unwrap();
    let (child, address) = spawn_binary(
        &[
            (
                "CHATS3_STORAGE__FS_ROOT",
                &data_dir.path().to_string_lossy(),
            ),
            ("CHATS3_ACTORS__SIGNALING_BUFFER_LEN", "10"),
            ("CHATS3_ACTORS__HISTORY_TAIL", "2000"),
        ],
        Stdio::inherit(),
    );
    let mut server = KillOnDrop(child);
    let app = TestApp::of_process(address, data_dir);
    const STREAMS: usize = 16;
    let names: Vec<String> = (0..=STREAMS).map(|n| format!("User {n}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (_, joined) = app.room_with(&names).await;
    let (ann, readers) = (&joined[0], &joined[1..]);
    // 1,500 messages of 9,000 characters: about 14 MB of rendered backlog,
    // far more than the kernel's send buffer takes from a stalled stream.
    let body = "x".repeat(9000);
    futures::stream::iter(0..BACKLOG)
        .for_each_concurrent(8, |_| app.send(&ann.session_id, &body).map(drop))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = resident_bytes(server.0.id());

    let mut sockets = Vec::new();
    for reader in readers {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let address = app.address.trim_start_matches("http://").parse().unwrap();
        let mut stream = socket.connect(address).await.unwrap();
        stream
            .write_all(
                format!(
                    "GET /api/v1/signaling?sessionId={} HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 0\r\n\r\n",
                    reader.session_id
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        sockets.push(stream);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app.metric("chats3_streams_open").await < STREAMS as u64
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let every stream fill its socket and stall.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let grown = resident_bytes(server.0.id()).saturating_sub(before);
    let open = app.metric("chats3_streams_open").await;
    eprintln!(
        "{open} stalled resumed streams grew the server by {:.1} MiB",
        grown as f64 / (1024.0 * 1024.0)
    );
    assert_eq!(open, STREAMS as u64);
    // Materialised, each stream would hold what of the 14 MB backlog the
    // kernel did not take; lazily, a chunk of 64 events (0.6 MB) at most.
    assert!(
        grown < 32 * 1024 * 1024,
        "stalled resumed streams hold {grown} bytes"
    );
    drop(sockets);
    terminate(&mut server.0, Duration::from_secs(30)).await;
}
