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
use futures::StreamExt;

/// Upper bound on requests of any one loop, whatever the duration.
pub const MAX_REQUESTS: u64 = 50_000_000;

/// Runs one workload once.
pub async fn run(args: &Args) -> anyhow::Result<Run> {
    let api = Api::new(&args.base_url, &args.admin_password);
    match args.workload {
        Workload::Send => send::run(&api, args).await,
        Workload::Fanout => fanout::run(&api, args).await,
        Workload::Idle => idle::run(&api, args).await,
        Workload::History => history::run(&api, args).await,
        Workload::Search => search::run(&api, args).await,
        Workload::Storage => storage::run(&api, args).await,
        Workload::Rooms => rooms::run(&api, args).await,
        Workload::Fsync => fsync::run(args).await,
        Workload::Thumbnail => thumbnail::run(&api, args).await,
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
