//! `fanout`: every participant of R rooms holds a stream while one sender
//! per room posts at a paced total rate, the send time in the body; counts
//! deliveries, end-to-end latency, losses and duplicates.

use super::{Room, rooms};
use crate::Args;
use crate::client::{Api, SseLines};
use crate::report::{Run, histogram, latency};
use crate::server::cpu_seconds;
use memchr::memmem;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one reader saw: raw latencies in µs (put into one histogram when
/// the run is over: a histogram per reader costs cache misses per event)
/// and which sequence numbers arrived.
struct ReaderLog {
    latencies: Vec<u32>,
    /// One bit per sequence number.
    seen: Vec<u64>,
    received: u64,
    duplicated: u64,
}

impl ReaderLog {
    fn new(messages: u64) -> Self {
        ReaderLog {
            latencies: Vec::new(),
            seen: vec![0; messages.div_ceil(64) as usize],
            received: 0,
            duplicated: 0,
        }
    }

    fn record(&mut self, seq: u64, micros: u64) {
        self.latencies
            .push(micros.clamp(1, u64::from(u32::MAX)) as u32);
        let Some(word) = self.seen.get_mut((seq / 64) as usize) else {
            return;
        };
        let bit = 1 << (seq % 64);
        if *word & bit == 0 {
            *word |= bit;
            self.received += 1;
        } else {
            self.duplicated += 1;
        }
    }
}

/// The sequence number and send time of a bench message's event, from its
/// JSON (`"body":"bench:<seq>:<micros since start>"`).
fn parse_body(marker: &memmem::Finder<'_>, data: &[u8]) -> Option<(u64, u64)> {
    let rest = &data[marker.find(data)? + marker.needle().len()..];
    let rest = &rest[..memchr::memchr(b'"', rest)?];
    let colon = memchr::memchr(b':', rest)?;
    Some((decimal(&rest[..colon])?, decimal(&rest[colon + 1..])?))
}

fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        d.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))?
    })
}

/// CPU seconds used by the server (when its pid is known) and this tool.
struct Cpu {
    server: Option<f64>,
    generator: Option<f64>,
}

impl Cpu {
    fn now(server: Option<u32>) -> Cpu {
        Cpu {
            server: server.and_then(|pid| cpu_seconds(&pid.to_string())),
            generator: cpu_seconds("self"),
        }
    }

    fn since(&self, before: &Cpu) -> Cpu {
        let diff = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        Cpu {
            server: diff(self.server, before.server),
            generator: diff(self.generator, before.generator),
        }
    }
}

pub async fn run(api: &Api, args: &Args) -> anyhow::Result<Run> {
    let rooms: Vec<Room> = rooms(api, args.rooms, args.users.max(2)).await?;
    let total = (args.rate as f64 * args.duration.as_secs_f64()) as u64;
    let started = Instant::now();
    let mut logs = Vec::new();
    let mut readers = Vec::new();
    for room in &rooms {
        for user in &room.users {
            let mut stream = api.stream(user).await?;
            let log = Arc::new(Mutex::new(ReaderLog::new(total)));
            logs.push(log.clone());
            // Runs until aborted after the run: no stop signal to poll per
            // event, and nothing shared between readers but the clock.
            readers.push(tokio::spawn(async move {
                let marker = memmem::Finder::new(b"\"body\":\"bench:");
                let mut lines = SseLines::new();
                let mut chunk = Vec::with_capacity(16 * 1024);
                while let Ok(true) = stream.read(&mut chunk).await {
                    let now = started.elapsed().as_micros() as u64;
                    let mut log = log.lock().expect("reader log");
                    lines.feed(&chunk, |data| {
                        if let Some((seq, sent)) = parse_body(&marker, data) {
                            log.record(seq, now.saturating_sub(sent));
                        }
                    });
                    chunk.clear();
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let accepted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut senders = tokio::task::JoinSet::new();
    let send_started = Instant::now();
    let cpu_before = Cpu::now(args.pid);
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
    let cpu = Cpu::now(args.pid).since(&cpu_before);
    tokio::time::sleep(Duration::from_secs(2)).await;
    for reader in &readers {
        reader.abort();
    }
    for reader in readers {
        let _ = reader.await;
    }
    let mut hist = histogram();
    let (mut got, mut duplicated) = (0, 0);
    for log in logs {
        let log = log.lock().expect("reader log");
        for &micros in &log.latencies {
            let _ = hist.record(u64::from(micros));
        }
        got += log.received;
        duplicated += log.duplicated;
    }
    let per_message = (args.users.max(2) - 1) as u64;
    let expected = accepted.load(Ordering::Relaxed) * per_message;
    let mut run = Run::new("fanout", &api.base);
    run.set(
        "deliveries_per_s",
        json!((got as f64 / send_elapsed.as_secs_f64()).round()),
    );
    run.set("latency", latency(&hist));
    // CPU per delivery: steadier from run to run than tail latency, which
    // moves with whatever else the two cores are doing.
    let per_delivery = |seconds: Option<f64>| {
        seconds.map(|s| (s * 1e6 / got.max(1) as f64 * 100.0).round() / 100.0)
    };
    run.set(
        "server_cpu_us_per_delivery",
        json!(per_delivery(cpu.server)),
    );
    run.set(
        "generator_cpu_us_per_delivery",
        json!(per_delivery(cpu.generator)),
    );
    run.set("sent", json!(total));
    run.set("accepted", json!(accepted.load(Ordering::Relaxed)));
    run.set("send_failures", json!(failed.load(Ordering::Relaxed)));
    run.set("expected", json!(expected));
    run.set("received", json!(got));
    run.set("lost", json!(expected.saturating_sub(got)));
    run.set("duplicated", json!(duplicated));
    run.set(
        "setup",
        json!({ "rooms": args.rooms, "participants": args.users.max(2), "rate": args.rate, "duration_s": args.duration.as_secs_f64() }),
    );
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bench_event_gives_its_sequence_and_send_time() {
        let marker = memmem::Finder::new(b"\"body\":\"bench:");
        let event = br#"{"id":"m1","body":"bench:42:1234567","userId":"u"}"#;
        assert_eq!(parse_body(&marker, event), Some((42, 1_234_567)));
        assert_eq!(parse_body(&marker, br#"{"body":"bench:4x:1"}"#), None);
        assert_eq!(parse_body(&marker, br#"{"body":"hello"}"#), None);
        assert_eq!(parse_body(&marker, br#"{"body":"bench::1"}"#), None);
    }

    #[test]
    fn a_reader_log_counts_each_sequence_once_and_repeats_as_duplicates() {
        let mut log = ReaderLog::new(100);
        log.record(7, 500);
        log.record(99, 0);
        log.record(7, 800);
        log.record(1000, 10);
        assert_eq!((log.received, log.duplicated), (2, 1));
        assert_eq!(log.latencies, vec![500, 1, 800, 10]);
    }
}
