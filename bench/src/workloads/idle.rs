//! `idle`: K streams (SSE, or WebSockets with `--transport ws`, or half
//! of each with `--mixed`) held open, from `--sources` loopback addresses;
//! the server's RSS per stream and per joined user (session, membership
//! and stream together), the time to open them all, and with `--hold` the
//! server's CPU while it heartbeats them and how many it still holds.

use crate::client::Api;
use crate::net::source;
use crate::report::Run;
use crate::server::{Cpu, rss_kib};
use crate::sse::SseStream;
use crate::ws::WsStream;
use crate::{Args, Transport};
use anyhow::Context;
use serde_json::json;
use std::time::{Duration, Instant};

/// Users per room (the default participant limit).
const PER_ROOM: usize = 50;

pub async fn run(api: &Api, args: &Args) -> anyhow::Result<Run> {
    let pid = args
        .pid
        .first()
        .copied()
        .context("idle needs --spawn or --pid to read the server's RSS")?;
    let settle = || tokio::time::sleep(Duration::from_millis(1500));
    settle().await;
    let baseline = rss_kib(pid).context("reading RSS")?;
    if args.floor {
        return floor(api, args, pid, baseline).await;
    }
    let room_count = args.streams.div_ceil(PER_ROOM);
    let mut rooms = Vec::new();
    let mut left = args.streams;
    for _ in 0..room_count {
        let users = left.min(PER_ROOM);
        left -= users;
        rooms.extend(super::rooms(api, 1, users).await?);
    }
    settle().await;
    let joined = rss_kib(pid).context("reading RSS")?;
    let mut streams = Vec::new();
    let mut sockets = Vec::new();
    let opening = Instant::now();
    let users = rooms.iter().flat_map(|room| &room.users);
    for (index, user) in users.enumerate() {
        let from = source(index, args.sources);
        let websocket = if args.mixed {
            index % 2 == 1
        } else {
            args.transport == Transport::Ws
        };
        if websocket {
            let socket = WsStream::open(&api.base, &user.session_id, from).await;
            sockets.push(socket.with_context(|| format!("WebSocket {index}"))?);
        } else {
            let stream = api.stream_from(user, from).await;
            streams.push(stream.with_context(|| format!("stream {index}"))?);
        }
    }
    let open_seconds = opening.elapsed().as_secs_f64();
    read_openings(&mut streams).await;
    settle().await;
    let streaming = rss_kib(pid).context("reading RSS")?;
    let k = args.streams.max(1) as f64;
    let mut run = Run::new("idle", &api.base);
    run.set("streams", json!(streams.len() + sockets.len()));
    run.set("sse_streams", json!(streams.len()));
    run.set("websockets", json!(sockets.len()));
    run.set("source_addresses", json!(args.sources.max(1)));
    run.set(
        "open_seconds",
        json!((open_seconds * 100.0).round() / 100.0),
    );
    run.set("opened_per_second", json!((k / open_seconds).round()));
    run.set("rss_baseline_kib", json!(baseline));
    run.set("rss_joined_kib", json!(joined));
    run.set("rss_streaming_kib", json!(streaming));
    run.set(
        "kib_per_stream",
        json!(((streaming as f64 - joined as f64) / k * 100.0).round() / 100.0),
    );
    run.set(
        "kib_per_joined_user",
        json!(((streaming as f64 - baseline as f64) / k * 100.0).round() / 100.0),
    );
    if let Some(hold) = args.hold {
        let before = Cpu::now(&[pid], None);
        tokio::time::sleep(hold).await;
        let used = Cpu::now(&[pid], None).since(&before);
        run.set("held_seconds", json!(hold.as_secs_f64()));
        run.set("server_cpu_seconds_held", json!(used.server));
        run.set("rss_after_hold_kib", json!(rss_kib(pid)));
        let open = api.metric("chats3_streams_open").await?;
        run.set("streams_open_after_hold", json!(open));
    }
    drop(streams);
    drop(sockets);
    Ok(run)
}

/// Reads what each stream sent first (headers and opening frames).
async fn read_openings(streams: &mut [SseStream]) {
    let mut opening = Vec::new();
    for stream in streams {
        let _ = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut opening)).await;
        opening.clear();
    }
}

/// Streams against `chats3-floor`: what the HTTP stack alone costs.
async fn floor(api: &Api, args: &Args, pid: u32, baseline: u64) -> anyhow::Result<Run> {
    let mut streams = Vec::with_capacity(args.streams);
    for _ in 0..args.streams {
        streams
            .push(SseStream::open(&api.base, "/", "floor", std::net::Ipv4Addr::LOCALHOST).await?);
    }
    read_openings(&mut streams).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let streaming = rss_kib(pid).context("reading RSS")?;
    let mut run = Run::new("idle", &api.base);
    run.set("floor", json!(true));
    run.set("streams", json!(streams.len()));
    run.set("rss_baseline_kib", json!(baseline));
    run.set("rss_streaming_kib", json!(streaming));
    run.set(
        "kib_per_stream",
        json!(
            ((streaming as f64 - baseline as f64) / args.streams.max(1) as f64 * 100.0).round()
                / 100.0
        ),
    );
    Ok(run)
}
