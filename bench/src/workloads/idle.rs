//! `idle`: K streams held open; the server's RSS per stream and per joined
//! user (session, membership and stream together).

use crate::Args;
use crate::client::Api;
use crate::report::Run;
use crate::server::rss_kib;
use anyhow::Context;
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;

/// Users per room (the default participant limit).
const PER_ROOM: usize = 50;

pub async fn run(api: &Api, args: &Args) -> anyhow::Result<Run> {
    let pid = args
        .pid
        .context("idle needs --spawn or --pid to read the server's RSS")?;
    let settle = || tokio::time::sleep(Duration::from_millis(1500));
    settle().await;
    let baseline = rss_kib(pid).context("reading RSS")?;
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
    for room in &rooms {
        for user in &room.users {
            streams.push(api.stream(user).await?);
        }
    }
    for stream in &mut streams {
        let _ = tokio::time::timeout(Duration::from_millis(100), stream.next()).await;
    }
    settle().await;
    let streaming = rss_kib(pid).context("reading RSS")?;
    let k = args.streams.max(1) as f64;
    let mut run = Run::new("idle", &api.base);
    run.set("streams", json!(streams.len()));
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
    Ok(run)
}
