//! The workloads, and what they share: rooms full of joined users, and
//! bounded closed/open loops.

mod fanout;
mod fsync;
mod history;
mod idle;
mod rooms;
mod search;
mod send;
mod storage;
mod thumbnail;

use crate::client::{Api, User};
use crate::report::Run;
use crate::{Args, Workload};
use anyhow::Context;
use futures::StreamExt;

/// Upper bound on requests of any one loop, whatever the duration.
pub const MAX_REQUESTS: u64 = 50_000_000;

/// Runs one workload once: `send` and `fanout` over every instance of
/// `--base-url`, the others against the first.
pub async fn run(args: &Args) -> anyhow::Result<Run> {
    let apis: Vec<Api> = args
        .base_url
        .iter()
        .map(|url| Api::new(url, &args.admin_password))
        .collect();
    let api = apis.first().context("--base-url is empty")?;
    match args.workload {
        Workload::Send => send::run(&apis, args).await,
        Workload::Fanout => fanout::run(&apis, args).await,
        Workload::Idle => idle::run(api, args).await,
        Workload::History => history::run(api, args).await,
        Workload::Search => search::run(api, args).await,
        Workload::Storage => storage::run(api, args).await,
        Workload::Rooms => rooms::run(api, args).await,
        Workload::Fsync => fsync::run(args).await,
        Workload::Thumbnail => thumbnail::run(api, args).await,
    }
}

/// A conversation and its joined users.
pub struct Room {
    pub users: Vec<User>,
}

/// Creates `rooms` conversations with `users` joined in each.
pub async fn rooms(api: &Api, rooms: usize, users: usize) -> anyhow::Result<Vec<Room>> {
    let mut out = Vec::with_capacity(rooms);
    for _ in 0..rooms {
        let (id, code) = api.create_room().await?;
        let joined: Vec<anyhow::Result<User>> = futures::stream::iter(0..users)
            .map(|i| {
                let (api, id, code) = (api.clone(), id.clone(), code.clone());
                async move { api.join(&id, &code, &format!("user-{i}")).await }
            })
            .buffered(32)
            .collect()
            .await;
        out.push(Room {
            users: joined.into_iter().collect::<anyhow::Result<_>>()?,
        });
    }
    Ok(out)
}

/// The base URLs of `apis` as one `target` label (`A,B,C`).
pub fn targets(apis: &[Api]) -> String {
    apis.iter()
        .map(|api| api.base.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Redis round trips the instances of `apis` have made so far, summed
/// (`chats3_redis_round_trips_total` from each `/metrics`); `None` when
/// any instance has no such counter (the local mode).
pub async fn redis_round_trips(apis: &[Api]) -> Option<f64> {
    let mut sum = 0.0;
    for api in apis {
        sum += api.metric("chats3_redis_round_trips_total").await.ok()?;
    }
    Some(sum)
}

/// Sets `redis_round_trips_per_msg` from two [`redis_round_trips`]
/// readings around `messages` messages, when both are known.
pub fn set_round_trips(run: &mut Run, before: Option<f64>, after: Option<f64>, messages: u64) {
    if let (Some(before), Some(after)) = (before, after) {
        let per = (after - before) / messages.max(1) as f64;
        run.set(
            "redis_round_trips_per_msg",
            serde_json::json!((per * 100.0).round() / 100.0),
        );
    }
}
