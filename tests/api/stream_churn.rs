//! Churn of event streams: 10,000 streams over several rooms, opened and
//! closed 2,000 at a time, leave the server where it started: resident
//! memory, open file descriptors, threads and open streams return near
//! their baseline, and the rooms still work.

use crate::helpers::{
    Joined, KillOnDrop, TestApp, mib, open_fds, resident_bytes, spawn_binary, terminate,
};
use futures::StreamExt;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ROOMS: usize = 10;
const USERS_PER_ROOM: usize = 10;
const STREAMS_PER_SESSION: usize = 20;
/// Streams open at once in a round: every session's allowance.
const ROUND: usize = ROOMS * USERS_PER_ROOM * STREAMS_PER_SESSION;
const ROUNDS: usize = 5;
/// Streams being opened at once.
const OPENING_AT_ONCE: usize = 100;

/// The soft and hard limits on open files of process `pid`.
fn open_files_limit(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut numbers = line
        .split_whitespace()
        .filter_map(|word| word.parse::<u64>().ok());
    (numbers.next().unwrap(), numbers.next().unwrap())
}

/// Raises this process's soft limit on open files to its hard limit when
/// it is below `needed` (the server, started after, inherits it).
fn ensure_open_files(needed: u64) {
    let me = std::process::id();
    let (soft, hard) = open_files_limit(me);
    if soft < needed {
        let raised = std::process::Command::new("prlimit")
            .arg(format!("--pid={me}"))
            .arg(format!("--nofile={hard}:{hard}"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(raised, "could not raise the open files limit from {soft}");
    }
    let (soft, _) = open_files_limit(me);
    assert!(
        soft >= needed,
        "the open files limit {soft} is below {needed}"
    );
}

/// Threads of process `pid`.
fn threads(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Opens a stream on a raw socket and reads until its opening frames are
/// in, so the server holds it as open.
async fn open_stream(address: &str, session: &str) -> TcpStream {
    let mut socket = TcpStream::connect(address).await.unwrap();
    socket
        .write_all(
            format!("GET /api/v1/signaling?sessionId={session} HTTP/1.1\r\nHost: x\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("room-state") {
        let n = tokio::time::timeout(Duration::from_secs(20), socket.read(&mut chunk))
            .await
            .expect("the opening frames in time")
            .unwrap();
        assert!(
            n > 0,
            "stream closed before its opening frames: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&chunk[..n]);
    }
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    socket
}

/// What the server process holds at one moment.
#[derive(Debug, Clone, Copy)]
struct Footprint {
    resident: u64,
    fds: usize,
    threads: u64,
    streams: u64,
}

async fn footprint(app: &TestApp, pid: u32) -> Footprint {
    Footprint {
        resident: resident_bytes(pid),
        fds: open_fds(pid),
        threads: threads(pid),
        streams: app.metric("chats3_streams_open").await,
    }
}

impl std::fmt::Display for Footprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RSS {:.1} MiB, {} fds, {} threads, {} streams open",
            mib(self.resident),
            self.fds,
            self.threads,
            self.streams
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "10,000 streams: run by .ci/run"]
async fn ten_thousand_streams_in_churn_leave_memory_descriptors_and_streams_at_baseline() {
    // This process's sockets, the server's and some room for both.
    ensure_open_files(ROUND as u64 + 1000);
    let data_dir = tempfile::tempdir().unwrap();
    let streams_per_session = STREAMS_PER_SESSION.to_string();
    let (child, address) = spawn_binary(
        &[
            (
                "CHATS3_STORAGE__FS_ROOT",
                &data_dir.path().to_string_lossy(),
            ),
            (
                "CHATS3_ACTORS__MAX_STREAMS_PER_SESSION",
                &streams_per_session,
            ),
            ("CHATS3_ACTORS__LEAVE_GRACE", "200ms"),
        ],
        Stdio::null(),
    );
    let mut server = KillOnDrop(child);
    let pid = server.0.id();
    let (server_soft, _) = open_files_limit(pid);
    assert!(
        server_soft > ROUND as u64 + 100,
        "the server may open {server_soft} files"
    );
    let app = TestApp::of_process(address, data_dir);
    let names: Vec<String> = (0..USERS_PER_ROOM).map(|n| format!("User {n}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut sessions: Vec<Joined> = Vec::new();
    for _ in 0..ROOMS {
        sessions.extend(app.room_with(&names).await.1);
    }
    let socket_address = app.address.trim_start_matches("http://").to_owned();
    // A first round warms what is made once (the rooms' fan-out channels,
    // allocator pools); the baseline is after it.
    let warm_up: Vec<TcpStream> = futures::stream::iter(&sessions)
        .map(|s| open_stream(&socket_address, &s.session_id))
        .buffer_unordered(OPENING_AT_ONCE)
        .collect()
        .await;
    drop(warm_up);
    crate::helpers::eventually("the warm-up streams to close", || async {
        app.metric("chats3_streams_open").await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline = footprint(&app, pid).await;
    eprintln!("baseline: {baseline}");

    let mut peak_resident = baseline.resident;
    let mut first_round_resident = None;
    for round in 0..ROUNDS {
        let started = Instant::now();
        let open: Vec<TcpStream> = futures::stream::iter(
            sessions
                .iter()
                .flat_map(|s| std::iter::repeat_n(s, STREAMS_PER_SESSION)),
        )
        .map(|s| open_stream(&socket_address, &s.session_id))
        .buffer_unordered(OPENING_AT_ONCE)
        .collect()
        .await;
        let opened_in = started.elapsed();
        let held = footprint(&app, pid).await;
        assert_eq!(
            held.streams, ROUND as u64,
            "round {round}: every stream counted open"
        );
        peak_resident = peak_resident.max(held.resident);
        let first = *first_round_resident.get_or_insert(held.resident);
        // What a round leaks adds up over the rounds; a round's own
        // streams are freed as it ends.
        assert!(
            held.resident <= first + 8 * 1024 * 1024,
            "round {round} holds {:.1} MiB, the first {:.1} MiB",
            mib(held.resident),
            mib(first)
        );
        drop(open);
        let closing = Instant::now();
        crate::helpers::eventually("the round's streams to close", || async {
            app.metric("chats3_streams_open").await == 0
        })
        .await;
        eprintln!(
            "round {round}: {ROUND} opened in {opened_in:?}, held: {held}; all closed within {:?}",
            closing.elapsed()
        );
    }
    // Leave notices and the descriptors' release settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = footprint(&app, pid).await;
    eprintln!(
        "after {} streams: {after} (peak RSS {:.1} MiB)",
        ROUND * ROUNDS,
        mib(peak_resident)
    );
    assert_eq!(after.streams, 0, "no stream is left counted open");
    assert!(
        after.fds <= baseline.fds * 2 + 16,
        "descriptors: {} after, {} at baseline",
        after.fds,
        baseline.fds
    );
    assert!(
        after.resident <= baseline.resident * 2 + 16 * 1024 * 1024,
        "RSS: {:.1} MiB after, {:.1} MiB at baseline",
        mib(after.resident),
        mib(baseline.resident)
    );
    assert!(
        after.threads <= baseline.threads * 2 + 8,
        "threads: {} after, {} at baseline",
        after.threads,
        baseline.threads
    );
    assert_eq!(
        app.metric("chats3_conversations_live").await,
        ROOMS as u64,
        "the rooms are still loaded, no more"
    );
    // The rooms still work: a new stream gets a new message.
    let (ann, bob) = (&sessions[0], &sessions[1]);
    let mut stream = app.stream(&bob.session_id, None).await;
    stream.opening().await;
    app.send(&ann.session_id, "after the churn").await;
    let event = stream.next_of("new-message").await;
    assert_eq!(event.data["data"]["body"], "after the churn");
    drop(stream);
    terminate(&mut server.0, Duration::from_secs(30)).await;
}
