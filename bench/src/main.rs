//! `chats3-bench`: a load generator for chats3 on loopback.
//!
//! Layout: `client` (the HTTP/SSE calls), `chart` (the fan-out latency
//! chart), `server` (`--spawn` starts a
//! chats3 process with a temporary data directory, or N instances of a
//! cluster), `redis` (the cluster's `redis-server` and its command
//! counts), `report` (latency
//! summaries, the human table and one JSON line per run), `sse` (a lean
//! event-stream reader on raw TCP), `ws` (a WebSocket held open), `workloads/`
//! (send, fanout, idle, history, search, storage, rooms, fsync,
//! thumbnail). Every loop is bounded in time
//! and count, and only loopback addresses are accepted.

mod chart;
mod client;
mod net;
mod redis;
mod report;
mod server;
mod sse;
mod workloads;
mod ws;

use clap::{Parser, ValueEnum};
use std::time::Duration;

/// Which workload to run.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Workload {
    Send,
    Fanout,
    Idle,
    History,
    /// Server-side search over a long history: first page and a whole
    /// walk, warm and cold.
    Search,
    Storage,
    /// Idle loaded conversations: RSS per room.
    Rooms,
    /// The disk's `fdatasync` latency, as the write-ahead log pays it (no
    /// server: appends to a file under --sync-dir).
    Fsync,
    /// A 12-megapixel JPEG uploaded: time until its thumbnail exists and
    /// the server's peak memory.
    Thumbnail,
}

/// What carries a subscriber's events.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Transport {
    /// Server-sent events, `GET /api/v1/signaling`.
    Sse,
    /// WebSocket, `GET /api/v1/ws`.
    Ws,
}

/// Command line.
#[derive(Debug, Clone, Parser)]
#[command(version, about = "Load generator for chats3 (loopback only)")]
pub struct Args {
    /// The workload.
    #[arg(value_enum)]
    pub workload: Workload,
    /// Server to load (loopback only), or the instances of one cluster as
    /// a list (`A,B,C`): `send` and `fanout` spread their senders and
    /// streams over them, so deliveries cross instances; the other
    /// workloads load the first.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:3000")]
    pub base_url: Vec<String>,
    /// A second server (or cluster, as a list): runs alternate A,B,A,B
    /// and ratios are printed.
    #[arg(long, value_delimiter = ',')]
    pub compare_base_url: Vec<String>,
    /// Admin password of the second server (default: the first's).
    #[arg(long)]
    pub compare_admin_password: Option<String>,
    /// Process ids of the second server's instances, for its CPU figures.
    #[arg(long, value_delimiter = ',')]
    pub compare_pid: Vec<u32>,
    /// With --spawn: start the second server too, from this binary, fresh
    /// for every run (instead of --compare-base-url): A/B of two builds.
    #[arg(long)]
    pub compare_server_bin: Option<String>,
    /// Start a chats3 process (release build) with a temporary data dir.
    #[arg(long)]
    pub spawn: bool,
    /// With --spawn: start this many instances in cluster mode
    /// (`CHATS3_CLUSTER__BACKEND=redis`) on one `redis-server` the tool
    /// starts on a free loopback port, sharing one data directory. One
    /// instance on Redis: `--server-env CHATS3_CLUSTER__BACKEND=redis`.
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// With --spawn: run B too, fresh for every run, with this many
    /// instances (e.g. `--instances 3 --compare-instances 1`).
    #[arg(long)]
    pub compare_instances: Option<usize>,
    /// The chats3 binary for --spawn (default: beside this one).
    #[arg(long)]
    pub server_bin: Option<String>,
    /// A config file for --spawn (`CHATS3_CONFIG`); the tool's own settings
    /// (address, data dir, admin password, rate limits off) and
    /// --server-env still override it.
    #[arg(long)]
    pub server_config: Option<std::path::PathBuf>,
    /// Extra CHATS3_* settings for --spawn, as KEY=VALUE; `{data}` in a
    /// value is the run's data directory.
    #[arg(long = "server-env")]
    pub server_env: Vec<String>,
    /// With --spawn: start the second server too, fresh for every run,
    /// with these CHATS3_* settings on top of --server-env (e.g. the
    /// write-ahead log off as A and on as B: `--server-env
    /// CHATS3_DURABILITY__WAL_DIR= --compare-server-env
    /// CHATS3_DURABILITY__WAL_DIR={data}/wal`).
    #[arg(long = "compare-server-env")]
    pub compare_server_env: Vec<String>,
    /// fsync: the directory whose disk is measured (the log's, by default
    /// the system's temporary directory).
    #[arg(long)]
    pub sync_dir: Option<std::path::PathBuf>,
    /// Admin password of the server (set automatically with --spawn).
    #[arg(long, env = "CHATS3_BENCH_ADMIN_PASSWORD", default_value = "")]
    pub admin_password: String,
    /// How long each measured phase runs.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Conversations.
    #[arg(long, default_value_t = 10)]
    pub rooms: usize,
    /// Users per conversation (send) or participants per room (fanout).
    #[arg(long, default_value_t = 5)]
    pub users: usize,
    /// Requests in flight (send: the message loop and the `/health` loop
    /// alike, each on as many keep-alive connections, like `wrk -c32`).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Messages per second in total (fanout, storage).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Several rates, one after the other (e.g. `500,1000,2000`): a sweep.
    #[arg(long, value_delimiter = ',')]
    pub rates: Vec<u64>,
    /// fanout: write an SVG chart of latency against deliveries/s here.
    #[arg(long)]
    pub chart: Option<std::path::PathBuf>,
    /// Streams to hold (idle).
    #[arg(long, default_value_t = 1000)]
    pub streams: usize,
    /// Messages in the conversation (history).
    #[arg(long, default_value_t = 1000)]
    pub messages: usize,
    /// fanout: threads reading the streams (each with one epoll set). One
    /// wakes less often than two and takes less CPU from the server.
    #[arg(long, default_value_t = 1)]
    pub reader_threads: usize,
    /// Process ids of the server's instances, for RSS (idle, rooms: the
    /// first) and CPU (fanout, send: summed) when not spawned.
    #[arg(long, value_delimiter = ',')]
    pub pid: Vec<u32>,
    /// Process id of the cluster's Redis, for its CPU figures (set
    /// automatically when --spawn starts it).
    #[arg(long)]
    pub redis_pid: Option<u32>,
    /// Loopback port of the cluster's Redis, for its `INFO commandstats`
    /// per operation (set automatically when --spawn starts it).
    #[arg(long)]
    pub redis_port: Option<u16>,
    /// idle: the server is `chats3-floor` (streams without rooms or users).
    #[arg(long)]
    pub floor: bool,
    /// idle, fanout: what the streams are, SSE (`/api/v1/signaling`) or
    /// WebSockets (`/api/v1/ws`).
    #[arg(long, value_enum, default_value_t = Transport::Sse)]
    pub transport: Transport,
    /// idle: half the streams SSE and half WebSockets, alternating (a
    /// density run).
    #[arg(long)]
    pub mixed: bool,
    /// idle: spread the connections over this many loopback source
    /// addresses, 127.0.0.1 upwards (one has `ip_local_port_range` ports).
    #[arg(long, default_value_t = 1)]
    pub sources: u8,
    /// idle: once all are open, hold them this long and report the
    /// server's CPU over it (its heartbeats and pings) and how many
    /// streams the server still counts open.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub hold: Option<Duration>,
    /// With --spawn: run B too, on a server of its own, fresh for every
    /// run, with streams of this transport (A/B of SSE and WebSocket in
    /// one run).
    #[arg(long, value_enum)]
    pub compare_transport: Option<Transport>,
    /// Repeat the run this many times.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
}

fn loopback_only(url: &str) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("{url}: only http:// on loopback is supported"))?;
    let host = rest.split('/').next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    anyhow::ensure!(
        matches!(host, "localhost" | "[::1]") || host.starts_with("127."),
        "{url}: the load generator only talks to loopback addresses"
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for url in args.base_url.iter().chain(&args.compare_base_url) {
        loopback_only(url)?;
    }
    let spawns_b = args.compare_server_bin.is_some()
        || !args.compare_server_env.is_empty()
        || args.compare_transport.is_some()
        || args.compare_instances.is_some();
    anyhow::ensure!(
        !spawns_b || args.spawn,
        "--compare-server-bin, --compare-server-env, --compare-transport and \
         --compare-instances need --spawn"
    );
    anyhow::ensure!(
        args.instances <= 1 && args.compare_instances.unwrap_or(1) <= 1 || args.spawn,
        "--instances and --compare-instances need --spawn (else give the instances' \
         URLs to --base-url A,B,C)"
    );
    let mut targets = vec![args.base_url.clone()];
    if !args.compare_base_url.is_empty() {
        targets.push(args.compare_base_url.clone());
    } else if spawns_b {
        targets.push(args.base_url.clone());
    }
    let rates = if args.rates.is_empty() {
        vec![args.rate]
    } else {
        args.rates.clone()
    };
    let mut sweep: Vec<Vec<report::Run>> = Vec::new();
    for rate in rates {
        let mut results: Vec<Vec<report::Run>> = vec![Vec::new(); targets.len()];
        for _ in 0..args.runs.max(1) {
            for (index, target) in targets.iter().enumerate() {
                let mut run_args = args.clone();
                run_args.base_url = target.clone();
                run_args.rate = rate;
                if index > 0 {
                    run_args.pid = args.compare_pid.clone();
                    if let Some(instances) = args.compare_instances {
                        run_args.instances = instances;
                    }
                    if let Some(password) = &args.compare_admin_password {
                        run_args.admin_password = password.clone();
                    }
                    if let Some(transport) = args.compare_transport {
                        run_args.transport = transport;
                    }
                    if let Some(bin) = &args.compare_server_bin {
                        run_args.server_bin = Some(bin.clone());
                    }
                    run_args
                        .server_env
                        .extend(args.compare_server_env.iter().cloned());
                }
                // Every run of A (and of a spawned B) gets a fresh server,
                // so no run inherits another's memory or conversations.
                let spawned =
                    if args.spawn && (index == 0 || spawns_b) && args.workload != Workload::Fsync {
                        let server = server::Spawned::start(&run_args).await?;
                        run_args.base_url = server.base_urls.clone();
                        run_args.admin_password = server::ADMIN_PASSWORD.into();
                        run_args.pid = server.pids();
                        run_args.redis_pid = server.redis().map(redis::Redis::pid);
                        run_args.redis_port = server.redis().map(|r| r.port);
                        Some(server)
                    } else {
                        None
                    };
                let run = workloads::run(&run_args).await;
                if let Some(server) = spawned {
                    server.stop().await;
                }
                let run = run?;
                run.print();
                results[index].push(run);
            }
        }
        for runs in &results {
            report::print_summary(runs);
        }
        if targets.len() == 2 {
            report::print_ratios(&results[0], &results[1]);
        }
        sweep.push(results.swap_remove(0));
    }
    if let Some(path) = &args.chart {
        chart::fanout_latency(&sweep, path)?;
        println!("\nchart written to {}", path.display());
    }
    Ok(())
}
