//! `history`: a conversation with N messages; `GET /api/v1/messages`
//! latency while the conversation is loaded (warm), then the first request
//! after the conversation was unloaded (cold), with the storage requests
//! that first request made.
//!
//! Cold samples need the server to unload idle conversations quickly:
//! `--spawn` sets `idle_timeout` to 2 s for this workload. Against a server
//! without `/metrics` (e.g. Chats3, which has no in-memory state to warm)
//! only the warm figures are reported.

use super::rooms;
use crate::Args;
use crate::client::Api;
use crate::report::{Run, histogram, latency};
use futures::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};

/// Most history requests measured per run.
const MAX_READS: usize = 20_000;
/// Cold samples per run (each waits for an unload).
const COLD_SAMPLES: usize = 5;
/// Longest wait for one unload.
const UNLOAD_WAIT: Duration = Duration::from_secs(60);
/// The page every request asks for.
const PAGE: &str = "/api/v1/messages?limit=50";

pub async fn run(api: &Api, args: &Args) -> anyhow::Result<Run> {
    let room = rooms(api, 1, 1).await?.remove(0);
    let user = room.users[0].clone();
    let posted: Vec<anyhow::Result<u16>> = futures::stream::iter(0..args.messages)
        .map(|i| {
            let (api, user) = (api.clone(), user.clone());
            async move { api.post(&user, &format!("history {i}")).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let stored = posted.iter().filter(|r| matches!(r, Ok(200))).count();
    let mut hist = histogram();
    let deadline = Instant::now() + args.duration;
    let mut reads = 0;
    while Instant::now() < deadline && reads < MAX_READS {
        let started = Instant::now();
        let status = api.get_status(Some(&user), PAGE).await?;
        anyhow::ensure!(status == 200, "history answered {status}");
        let _ = hist.record(started.elapsed().as_micros().max(1) as u64);
        reads += 1;
    }
    let mut run = Run::new("history", &api.base);
    run.set("messages", json!(stored));
    run.set("warm", latency(&hist));
    if api.metric("chats3_conversations_live").await.is_err() {
        run.set("cold", json!("not measured: the server has no /metrics"));
        return Ok(run);
    }
    let mut cold = histogram();
    let mut touched = Vec::new();
    for _ in 0..COLD_SAMPLES {
        wait_for_unload(api).await?;
        let before = storage_reads(api).await?;
        let started = Instant::now();
        let status = api.get_status(Some(&user), PAGE).await?;
        let elapsed = started.elapsed();
        anyhow::ensure!(status == 200, "cold history answered {status}");
        let _ = cold.record(elapsed.as_micros().max(1) as u64);
        touched.push(storage_reads(api).await? - before);
    }
    let mut summary = latency(&cold);
    summary["samples"] = json!(COLD_SAMPLES);
    summary["objects_touched_max"] = json!(touched.iter().copied().fold(0.0, f64::max));
    run.set("cold", summary);
    Ok(run)
}

/// GETs plus LISTs made so far.
pub(super) async fn storage_reads(api: &Api) -> anyhow::Result<f64> {
    Ok(api.metric("chats3_storage_gets_total").await?
        + api.metric("chats3_storage_lists_total").await?)
}

/// Waits until no conversation is loaded and nothing waits to be stored.
pub(super) async fn wait_for_unload(api: &Api) -> anyhow::Result<()> {
    let deadline = Instant::now() + UNLOAD_WAIT;
    while Instant::now() < deadline {
        if api.metric("chats3_conversations_live").await? == 0.0
            && api.metric("chats3_messages_pending").await? == 0.0
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    anyhow::bail!(
        "the conversation stayed loaded for {UNLOAD_WAIT:?}: set the server's actors.idle_timeout lower"
    )
}
