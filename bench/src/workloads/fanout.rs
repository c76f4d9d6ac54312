//! `fanout`: every participant of R rooms holds a stream (SSE, or a
//! WebSocket with `--transport ws`) while one sender per room posts over
//! HTTP at a paced total rate, the send time in the body; counts
//! deliveries, end-to-end latency, losses and duplicates. With several
//! instances (`--base-url A,B,C`), participant `j` of a room streams from
//! instance `j mod N` and each room's messages rotate over the instances
//! ([`Spread`]), so most deliveries cross instances; those are measured
//! apart as `cross_instance_latency`.

mod readers;

use super::{MAX_REQUESTS, Room, redis_round_trips, rooms, set_round_trips, targets};
use crate::client::Api;
use crate::report::{Run, histogram, latency};
use crate::server::Cpu;
use crate::{Args, Transport, redis};
use readers::{Opened, Readers, Spread};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub async fn run(apis: &[Api], args: &Args) -> anyhow::Result<Run> {
    let rooms: Vec<Room> = rooms(&apis[0], args.rooms, args.users.max(2)).await?;
    let total = ((args.rate as f64 * args.duration.as_secs_f64()) as u64).min(MAX_REQUESTS);
    let spread = Spread {
        instances: apis.len() as u64,
        rooms: rooms.len() as u64,
    };
    let started = Instant::now();
    let mut streams = Vec::new();
    for room in &rooms {
        for (j, user) in room.users.iter().enumerate() {
            let instance = j % apis.len();
            let api = &apis[instance];
            let opened = match args.transport {
                Transport::Sse => {
                    let (socket, body) = api.stream(user).await?.into_parts()?;
                    Opened::Sse(socket, body)
                }
                Transport::Ws => {
                    let (socket, frames) = crate::ws::open_raw(&api.base, &user.session_id).await?;
                    Opened::Ws(socket, frames)
                }
            };
            streams.push((instance as u64, opened));
        }
    }
    let readers = Readers::start(streams, args.reader_threads, total, started, spread)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let accepted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut senders = tokio::task::JoinSet::new();
    let send_started = Instant::now();
    let calls_before = args.redis_port.map(redis::command_calls).transpose()?;
    let trips_before = redis_round_trips(apis).await;
    let cpu_before = Cpu::now(&args.pid, args.redis_pid);
    for seq in 0..total {
        ticker.tick().await;
        let room = &rooms[seq as usize % rooms.len()];
        let api = apis[spread.sender(seq) as usize].clone();
        let user = room.users[0].clone();
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
    let cpu = Cpu::now(&args.pid, args.redis_pid).since(&cpu_before);
    let calls_after = args.redis_port.map(redis::command_calls).transpose()?;
    let trips_after = redis_round_trips(apis).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = readers.finish().await?;
    let mut hist = histogram();
    for &micros in &seen.latencies {
        let _ = hist.record(u64::from(micros));
    }
    let (got, duplicated) = (seen.received, seen.duplicated);
    let per_message = (args.users.max(2) - 1) as u64;
    let expected = accepted.load(Ordering::Relaxed) * per_message;
    let mut run = Run::new("fanout", &targets(apis));
    run.set(
        "deliveries_per_s",
        json!((got as f64 / send_elapsed.as_secs_f64()).round()),
    );
    run.set("latency", latency(&hist));
    if apis.len() > 1 {
        let mut cross = histogram();
        for &micros in &seen.cross_latencies {
            let _ = cross.record(u64::from(micros));
        }
        run.set("cross_instance_latency", latency(&cross));
        run.set(
            "cross_instance_deliveries_per_s",
            json!((seen.cross_latencies.len() as f64 / send_elapsed.as_secs_f64()).round()),
        );
    }
    // CPU per delivery: steadier from run to run than tail latency, which
    // moves with whatever else the two cores are doing.
    run.set_micros_per("server_cpu_us_per_delivery", cpu.server, got);
    run.set_micros_per("generator_cpu_us_per_delivery", cpu.generator, got);
    if args.redis_pid.is_some() {
        run.set_micros_per("redis_cpu_us_per_delivery", cpu.redis, got);
        run.set_micros_per(
            "redis_cpu_us_per_msg",
            cpu.redis,
            accepted.load(Ordering::Relaxed),
        );
    }
    set_round_trips(
        &mut run,
        trips_before,
        trips_after,
        accepted.load(Ordering::Relaxed),
    );
    if let (Some(before), Some(after)) = (&calls_before, &calls_after) {
        run.set(
            "redis_calls_per_msg",
            json!(redis::calls_per(
                before,
                after,
                accepted.load(Ordering::Relaxed)
            )),
        );
    }
    run.set("sent", json!(total));
    run.set("accepted", json!(accepted.load(Ordering::Relaxed)));
    run.set("send_failures", json!(failed.load(Ordering::Relaxed)));
    run.set("expected", json!(expected));
    run.set("received", json!(got));
    run.set("lost", json!(expected.saturating_sub(got)));
    run.set("duplicated", json!(duplicated));
    run.set(
        "setup",
        json!({ "instances": apis.len(), "transport": format!("{:?}", args.transport).to_lowercase(), "rooms": args.rooms, "participants": args.users.max(2), "rate": args.rate, "duration_s": args.duration.as_secs_f64() }),
    );
    Ok(run)
}
