//! `search`: a conversation with N messages, every one holding "message"
//! and one in 1,000 "needle"; `GET /api/v1/messages/search` timed warm
//! (the conversation loaded) and cold (the first request after it was
//! unloaded) for three searches: the first page of a common word (the
//! tail fills it), the first page of the rare word (a page's scan of
//! stored history), and the rare word's whole walk, every page until
//! `hasMore` is false (the whole history read).
//!
//! Like `history`, cold samples need `idle_timeout` low: `--spawn` sets
//! 2 s for this workload.

use super::history::{storage_reads, wait_for_unload};
use super::rooms;
use crate::Args;
use crate::client::{Api, User};
use crate::report::{Run, histogram, latency};
use futures::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};

/// One message in this many holds the rare word.
const RARE_EVERY: usize = 1_000;
/// Warm samples per search at most.
const MAX_WARM: usize = 2_000;
/// Cold samples per search.
const COLD_SAMPLES: usize = 3;
/// Pages a walk follows at most.
const MAX_PAGES: usize = 1_000;

/// The searches measured: name, query.
const SEARCHES: [(&str, &str); 3] = [
    ("common_first_page", "q=MESSAGE&limit=20"),
    ("rare_first_page", "q=Needle&limit=20"),
    ("rare_whole_walk", "q=Needle&limit=50"),
];

pub async fn run(api: &Api, args: &Args) -> anyhow::Result<Run> {
    let room = rooms(api, 1, 1).await?.remove(0);
    let user = room.users[0].clone();
    let posted: Vec<anyhow::Result<u16>> = futures::stream::iter(0..args.messages)
        .map(|i| {
            let (api, user) = (api.clone(), user.clone());
            let body = if i % RARE_EVERY == 0 {
                format!("message {i} with a needle in it")
            } else {
                format!("message {i} about nothing much")
            };
            async move { api.post(&user, &body).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let stored = posted.iter().filter(|r| matches!(r, Ok(200))).count();
    let mut run = Run::new("search", &api.base);
    run.set("messages", json!(stored));
    let per_search = args.duration / SEARCHES.len() as u32;
    for (name, query) in SEARCHES {
        let walk = name.ends_with("walk");
        let (found, pages) = search(api, &user, query, walk).await?;
        let mut warm = histogram();
        let deadline = Instant::now() + per_search;
        let mut samples = 0;
        while Instant::now() < deadline && samples < MAX_WARM {
            let started = Instant::now();
            search(api, &user, query, walk).await?;
            let _ = warm.record(started.elapsed().as_micros().max(1) as u64);
            samples += 1;
        }
        let mut summary = latency(&warm);
        summary["results"] = json!(found);
        summary["pages"] = json!(pages);
        run.set(&format!("{name}_warm"), summary);
    }
    if api.metric("chats3_conversations_live").await.is_err() {
        run.set("cold", json!("not measured: the server has no /metrics"));
        return Ok(run);
    }
    for (name, query) in SEARCHES {
        let walk = name.ends_with("walk");
        let mut cold = histogram();
        let mut touched = Vec::new();
        for _ in 0..COLD_SAMPLES {
            wait_for_unload(api).await?;
            let before = storage_reads(api).await?;
            let started = Instant::now();
            search(api, &user, query, walk).await?;
            let elapsed: Duration = started.elapsed();
            let _ = cold.record(elapsed.as_micros().max(1) as u64);
            touched.push(storage_reads(api).await? - before);
        }
        let mut summary = latency(&cold);
        summary["samples"] = json!(COLD_SAMPLES);
        summary["objects_touched_max"] = json!(touched.iter().copied().fold(0.0, f64::max));
        run.set(&format!("{name}_cold"), summary);
    }
    Ok(run)
}

/// One search: its first page, or (`walk`) every page. Answers the
/// results found and the pages read.
async fn search(api: &Api, user: &User, query: &str, walk: bool) -> anyhow::Result<(usize, usize)> {
    let mut path = format!("/api/v1/messages/search?{query}");
    let (mut found, mut pages) = (0, 0);
    while pages < MAX_PAGES {
        let details = api.get_details(user, &path).await?;
        pages += 1;
        found += details["results"].as_array().map_or(0, Vec::len);
        match details["nextCursor"].as_str() {
            Some(cursor) if walk && details["hasMore"] == true => {
                path = format!("/api/v1/messages/search?{query}&cursor={cursor}");
            }
            _ => break,
        }
    }
    Ok((found, pages))
}
