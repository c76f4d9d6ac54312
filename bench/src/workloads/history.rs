//! `history`: a conversation with N messages; `GET /api/v1/messages`
//! latency while the conversation is loaded (warm).

use super::rooms;
use crate::Args;
use crate::client::Api;
use crate::report::{Run, histogram, latency};
use futures::StreamExt;
use serde_json::json;
use std::time::Instant;

/// Most history requests measured per run.
const MAX_READS: usize = 20_000;

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
        let status = api
            .get_status(Some(&user), "/api/v1/messages?limit=50")
            .await?;
        anyhow::ensure!(status == 200, "history answered {status}");
        let _ = hist.record(started.elapsed().as_micros().max(1) as u64);
        reads += 1;
    }
    let mut run = Run::new("history", &api.base);
    run.set("messages", json!(stored));
    run.set("warm", latency(&hist));
    run.set("cold", json!("not measured yet"));
    Ok(run)
}
