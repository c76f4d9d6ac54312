//! `idle`: K streams (SSE, or WebSockets with `--transport ws`) held open;
//! the server's RSS per stream and per joined user (session, membership
//! and stream together).

use crate::client::Api;
use crate::report::Run;
use crate::server::rss_kib;
use crate::sse::SseStream;
use crate::ws::WsStream;
use crate::{Args, Transport};
use anyhow::Context;
use serde_json::json;
use std::time::Duration;

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
    for room in &rooms {
        for user in &room.users {
            if args.transport == Transport::Ws {
                sockets.push(WsStream::open(&api.base, &user.session_id).await?);
            } else {
                streams.push(api.stream(user).await?);
            }
        }
    }
    read_openings(&mut streams).await;
    settle().await;
    let streaming = rss_kib(pid).context("reading RSS")?;
    let k = args.streams.max(1) as f64;
    let mut run = Run::new("idle", &api.base);
    run.set("streams", json!(streams.len() + sockets.len()));
    run.set("websocket", json!(args.transport == Transport::Ws));
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
        streams.push(SseStream::open(&api.base, "/", "floor").await?);
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
