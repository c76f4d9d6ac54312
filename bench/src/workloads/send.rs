//! `send`: a closed loop of message posts at a fixed concurrency, then the
//! same loop on `GET /health` for the bare HTTP limit, each with the
//! server's CPU per request, and the ratio of the two CPU figures (what a
//! message costs beyond the HTTP stack every request pays). With several
//! instances (`--base-url A,B,C`), request `n` goes to instance `n mod N`;
//! with a known Redis, its CPU and its commands per message are reported
//! beside.

use super::{MAX_REQUESTS, redis_round_trips, rooms, set_round_trips, targets};
use crate::client::{Api, User};
use crate::report::{Run, histogram, latency};
use crate::server::Cpu;
use crate::{Args, redis};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Runs `op` on `concurrency` workers until `duration` passes; returns
/// per-second throughput, latencies and answers by status.
async fn closed_loop<F, Fut>(
    concurrency: usize,
    duration: Duration,
    op: F,
) -> (f64, hdrhistogram::Histogram<u64>, BTreeMap<String, u64>)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<u16>> + Send,
{
    let op = Arc::new(op);
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (op, counter) = (op.clone(), counter.clone());
        workers.push(tokio::spawn(async move {
            let mut hist = histogram();
            let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if n >= MAX_REQUESTS {
                    break;
                }
                let sent = Instant::now();
                let status = match op(n).await {
                    Ok(code) => code.to_string(),
                    Err(_) => "error".to_owned(),
                };
                let _ = hist.record(sent.elapsed().as_micros().max(1) as u64);
                *statuses.entry(status).or_default() += 1;
            }
            (hist, statuses)
        }));
    }
    let mut hist = histogram();
    let mut statuses = BTreeMap::new();
    for worker in workers {
        let (h, s) = worker.await.expect("worker");
        hist.add(h).expect("merge histograms");
        for (k, v) in s {
            *statuses.entry(k).or_default() += v;
        }
    }
    let ok = statuses.get("200").copied().unwrap_or(0);
    (ok as f64 / started.elapsed().as_secs_f64(), hist, statuses)
}

pub async fn run(apis: &[Api], args: &Args) -> anyhow::Result<Run> {
    let rooms = rooms(&apis[0], args.rooms, args.users).await?;
    let users: Arc<Vec<User>> = Arc::new(rooms.into_iter().flat_map(|r| r.users).collect());
    let shared: Arc<Vec<Api>> = Arc::new(apis.to_vec());
    let posting = {
        let (apis, users) = (shared.clone(), users.clone());
        move |n: u64| {
            let (apis, users) = (apis.clone(), users.clone());
            async move {
                let user = &users[n as usize % users.len()];
                let api = &apis[n as usize % apis.len()];
                api.post(user, &format!("bench message {n}")).await
            }
        }
    };
    let calls_before = args.redis_port.map(redis::command_calls).transpose()?;
    let trips_before = redis_round_trips(apis).await;
    let cpu_before = Cpu::now(&args.pid, args.redis_pid);
    let (msgs_per_s, hist, statuses) = closed_loop(args.concurrency, args.duration, posting).await;
    let posts_cpu = Cpu::now(&args.pid, args.redis_pid).since(&cpu_before);
    let calls_after = args.redis_port.map(redis::command_calls).transpose()?;
    let trips_after = redis_round_trips(apis).await;
    let posts: u64 = statuses.values().sum();
    let health = {
        let apis = shared.clone();
        move |n: u64| {
            let apis = apis.clone();
            async move {
                let api = &apis[n as usize % apis.len()];
                api.get_status(None, "/health").await
            }
        }
    };
    let cpu_before = Cpu::now(&args.pid, args.redis_pid);
    let (health_per_s, _, health_statuses) =
        closed_loop(args.concurrency, args.duration, health).await;
    let health_cpu = Cpu::now(&args.pid, args.redis_pid).since(&cpu_before);
    let health_requests: u64 = health_statuses.values().sum();
    let mut run = Run::new("send", &targets(apis));
    run.set("msgs_per_s", json!(msgs_per_s.round()));
    run.set("latency", latency(&hist));
    let errors: Map<String, Value> = statuses
        .into_iter()
        .filter(|(k, _)| k != "200")
        .map(|(k, v)| (k, json!(v)))
        .collect();
    run.set("errors", Value::Object(errors));
    run.set("health_per_s", json!(health_per_s.round()));
    run.set(
        "ratio_to_health",
        json!(((msgs_per_s / health_per_s.max(1.0)) * 1000.0).round() / 1000.0),
    );
    // CPU per request: steadier than throughput on a shared host.
    run.set_micros_per("server_cpu_us_per_msg", posts_cpu.server, posts);
    run.set_micros_per(
        "server_cpu_us_per_health",
        health_cpu.server,
        health_requests,
    );
    run.set_machine_shares(posts_cpu.machine);
    run.set_ratio(
        "server_cpu_ratio_msg_to_health",
        "server_cpu_us_per_msg",
        "server_cpu_us_per_health",
    );
    if args.redis_pid.is_some() {
        run.set_micros_per("redis_cpu_us_per_msg", posts_cpu.redis, posts);
    }
    set_round_trips(&mut run, trips_before, trips_after, posts);
    if let (Some(before), Some(after)) = (&calls_before, &calls_after) {
        run.set(
            "redis_calls_per_msg",
            json!(redis::calls_per(before, after, posts)),
        );
    }
    run.set(
        "setup",
        json!({ "instances": apis.len(), "rooms": args.rooms, "users_per_room": args.users, "concurrency": args.concurrency, "duration_s": args.duration.as_secs_f64() }),
    );
    Ok(run)
}
