//! `fanout`: every participant of R rooms holds a stream while one sender
//! per room posts at a paced total rate, the send time in the body; counts
//! deliveries, end-to-end latency, losses and duplicates.

use super::{Room, rooms};
use crate::Args;
use crate::client::{Api, SseLines};
use crate::report::{Run, histogram, latency};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// `bench:<seq>:<micros since start>`
fn parse_body(data: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(data).ok()?;
    let at = text.find("\"body\":\"bench:")? + "\"body\":\"bench:".len();
    let rest = &text[at..];
    let end = rest.find('"')?;
    let (seq, sent) = rest[..end].split_once(':')?;
    Some((seq.parse().ok()?, sent.parse().ok()?))
}

pub async fn run(api: &Api, args: &Args) -> anyhow::Result<Run> {
    let rooms: Vec<Room> = rooms(api, args.rooms, args.users.max(2)).await?;
    let started = Instant::now();
    let (stop, stopped) = watch::channel(false);
    let received = Arc::new(AtomicU64::new(0));
    let duplicates = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for room in &rooms {
        for user in &room.users {
            let mut stream = api.stream(user).await?;
            let (received, duplicates, mut stopped) =
                (received.clone(), duplicates.clone(), stopped.clone());
            readers.push(tokio::spawn(async move {
                // Latencies in µs, put into a histogram once the run is
                // over: a histogram per reader costs cache misses per event.
                let mut latencies: Vec<u32> = Vec::new();
                let mut seen = HashSet::new();
                let mut lines = SseLines::new();
                let mut chunk = Vec::with_capacity(16 * 1024);
                loop {
                    tokio::select! {
                        _ = stopped.wait_for(|v| *v) => break,
                        more = stream.read(&mut chunk) => {
                            if !matches!(more, Ok(true)) {
                                break;
                            }
                            lines.feed(&chunk, |data| {
                                if let Some((seq, sent)) = parse_body(data) {
                                    let now = started.elapsed().as_micros() as u64;
                                    let micros = now.saturating_sub(sent).max(1);
                                    latencies.push(micros.min(u32::MAX as u64) as u32);
                                    if seen.insert(seq) {
                                        received.fetch_add(1, Ordering::Relaxed);
                                    } else {
                                        duplicates.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            });
                            chunk.clear();
                        }
                    }
                }
                latencies
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total = (args.rate as f64 * args.duration.as_secs_f64()) as u64;
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let accepted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut senders = tokio::task::JoinSet::new();
    let send_started = Instant::now();
    for seq in 0..total {
        ticker.tick().await;
        let room = &rooms[seq as usize % rooms.len()];
        let (api, user) = (api.clone(), room.users[0].clone());
        let (accepted, failed) = (accepted.clone(), failed.clone());
        senders.spawn(async move {
            let body = format!("bench:{seq}:{}", started.elapsed().as_micros());
            match api.post(&user, &body).await {
                Ok(200) => accepted.fetch_add(1, Ordering::Relaxed),
                _ => failed.fetch_add(1, Ordering::Relaxed),
            };
        });
        while senders.try_join_next().is_some() {}
    }
    while senders.join_next().await.is_some() {}
    let send_elapsed = send_started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(true);
    let mut hist = histogram();
    for reader in readers {
        for micros in reader.await? {
            let _ = hist.record(u64::from(micros));
        }
    }
    let per_message = (args.users.max(2) - 1) as u64;
    let expected = accepted.load(Ordering::Relaxed) * per_message;
    let got = received.load(Ordering::Relaxed);
    let mut run = Run::new("fanout", &api.base);
    run.set(
        "deliveries_per_s",
        json!((got as f64 / send_elapsed.as_secs_f64()).round()),
    );
    run.set("latency", latency(&hist));
    run.set("sent", json!(total));
    run.set("accepted", json!(accepted.load(Ordering::Relaxed)));
    run.set("send_failures", json!(failed.load(Ordering::Relaxed)));
    run.set("expected", json!(expected));
    run.set("received", json!(got));
    run.set("lost", json!(expected.saturating_sub(got)));
    run.set("duplicated", json!(duplicates.load(Ordering::Relaxed)));
    run.set(
        "setup",
        json!({ "rooms": args.rooms, "participants": args.users.max(2), "rate": args.rate, "duration_s": args.duration.as_secs_f64() }),
    );
    Ok(run)
}
