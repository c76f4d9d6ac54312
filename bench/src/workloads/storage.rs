//! `storage`: messages at a steady rate; storage PUTs per 1,000 messages,
//! read from the server's `/metrics`.

use super::rooms;
use crate::Args;
use crate::client::Api;
use crate::report::Run;
use serde_json::json;
use std::time::Duration;

pub async fn run(api: &Api, args: &Args) -> anyhow::Result<Run> {
    let rooms = rooms(api, args.rooms, 1).await?;
    settle(api).await?;
    // A server without /metrics (e.g. Chats3): count its storage requests
    // on the storage server instead; the paced sends still run.
    let puts_before = api.metric("chats3_storage_puts_total").await.ok();
    let total = (args.rate as f64 * args.duration.as_secs_f64()) as u64;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate.max(1) as f64));
    let mut senders = tokio::task::JoinSet::new();
    let mut accepted = 0u64;
    for n in 0..total {
        ticker.tick().await;
        let (api, user) = (
            api.clone(),
            rooms[n as usize % rooms.len()].users[0].clone(),
        );
        senders.spawn(async move { api.post(&user, &format!("stored {n}")).await });
        while let Some(result) = senders.try_join_next() {
            accepted += u64::from(matches!(result, Ok(Ok(200))));
        }
    }
    while let Some(result) = senders.join_next().await {
        accepted += u64::from(matches!(result, Ok(Ok(200))));
    }
    settle(api).await?;
    let mut run = Run::new("storage", &api.base);
    run.set("messages", json!(accepted));
    let Some(puts_before) = puts_before else {
        run.set("puts", json!("not measured: the server has no /metrics"));
        return Ok(run);
    };
    let puts = api.metric("chats3_storage_puts_total").await? - puts_before;
    run.set("puts", json!(puts));
    run.set(
        "puts_per_1000_messages",
        json!((puts / accepted.max(1) as f64 * 1000.0 * 100.0).round() / 100.0),
    );
    run.set("setup", json!({ "rooms": args.rooms, "rate": args.rate, "duration_s": args.duration.as_secs_f64() }));
    Ok(run)
}

/// Waits (at most 10 s) until nothing is waiting to be stored.
async fn settle(api: &Api) -> anyhow::Result<()> {
    for _ in 0..100 {
        match api.metric("chats3_messages_pending").await {
            Ok(pending) if pending > 0.0 => {}
            _ => break,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
