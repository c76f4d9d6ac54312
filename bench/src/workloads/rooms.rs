//! `rooms`: `--rooms` conversations created and left idle (loaded, no
//! user, no stream); the server's RSS per loaded conversation, the figure
//! that bounds how many rooms fit in memory: first with their actors
//! running, then once they hibernate (`--spawn` sets `hibernate_after` to
//! 15 s; against a server without hibernation that figure is left out).
//! Rooms that hibernated before the first figure was read are counted, as
//! they make it too small.

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
    let hibernated_early = api
        .metric("chats3_conversations_hibernating")
        .await
        .unwrap_or(0.0);
    if hibernated_early > 0.0 {
        eprintln!(
            "{hibernated_early} rooms hibernated before the awake figure was read: \
             it is too small; give a longer CHATS3_ACTORS__HIBERNATE_AFTER"
        );
    }
    let rooms = args.rooms.max(1) as f64;
    let mut run = Run::new("rooms", &api.base);
    run.set("rooms", json!(args.rooms));
    run.set("rss_baseline_kib", json!(baseline));
    run.set("rss_loaded_kib", json!(loaded));
    run.set("rooms_hibernated_early", json!(hibernated_early));
    run.set(
        "bytes_per_idle_room",
        json!(((loaded as f64 - baseline as f64) * 1024.0 / rooms).round()),
    );
    // Hibernating rooms: once these have hibernated, as many again are
    // created in four batches, each left to hibernate, so the memory the first
    // ones' actors freed is what later actors reuse; the figure is RSS over
    // the baseline across all of them, fragmentation included.
    let mut hibernating = (args.rooms.min(100) + args.rooms) as f64;
    if wait_hibernating(api, hibernating).await? {
        let batch = (args.rooms / 4).max(1);
        let mut left = args.rooms;
        while left > 0 {
            let now = batch.min(left);
            create(api, now).await?;
            hibernating += now as f64;
            wait_hibernating(api, hibernating).await?;
            left -= now;
        }
        settle().await;
        let rss = rss_kib(pid).context("reading RSS")?;
        run.set("hibernating_rooms", json!(2 * args.rooms));
        run.set("rss_hibernating_kib", json!(rss));
        run.set(
            "bytes_per_hibernating_room",
            json!(((rss as f64 - baseline as f64) * 1024.0 / (2.0 * rooms)).round()),
        );
    }
    Ok(run)
}

/// Waits up to a minute for `rooms` conversations to hibernate; `false`
/// when the server reports no hibernation.
async fn wait_hibernating(api: &Api, rooms: f64) -> anyhow::Result<bool> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        match api.metric("chats3_conversations_hibernating").await {
            Err(_) => return Ok(false),
            Ok(n) if n >= rooms => return Ok(true),
            Ok(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    anyhow::bail!("the rooms did not hibernate within a minute")
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
