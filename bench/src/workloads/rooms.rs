//! `rooms`: `--rooms` conversations created and left idle (loaded, no
//! user, no stream); the server's RSS per loaded conversation, the figure
//! that bounds how many rooms fit in memory.

use crate::Args;
use crate::client::Api;
use crate::report::Run;
use crate::server::rss_kib;
use anyhow::Context;
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;

pub async fn run(api: &Api, args: &Args) -> anyhow::Result<Run> {
    let pid = args
        .pid
        .first()
        .copied()
        .context("rooms needs --spawn or --pid to read the server's RSS")?;
    let settle = || tokio::time::sleep(Duration::from_millis(1500));
    // A first batch warms the allocator and the runtime, so the baseline
    // holds their fixed costs and the figure only what rooms add.
    create(api, args.rooms.min(100)).await?;
    settle().await;
    let baseline = rss_kib(pid).context("reading RSS")?;
    create(api, args.rooms).await?;
    settle().await;
    let loaded = rss_kib(pid).context("reading RSS")?;
    let rooms = args.rooms.max(1) as f64;
    let mut run = Run::new("rooms", &api.base);
    run.set("rooms", json!(args.rooms));
    run.set("rss_baseline_kib", json!(baseline));
    run.set("rss_loaded_kib", json!(loaded));
    run.set(
        "bytes_per_idle_room",
        json!(((loaded as f64 - baseline as f64) * 1024.0 / rooms).round()),
    );
    Ok(run)
}

async fn create(api: &Api, rooms: usize) -> anyhow::Result<()> {
    let created: Vec<anyhow::Result<(String, String)>> = futures::stream::iter(0..rooms)
        .map(|_| api.create_room())
        .buffer_unordered(32)
        .collect()
        .await;
    for room in created {
        room?;
    }
    Ok(())
}
