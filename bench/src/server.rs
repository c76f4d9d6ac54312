//! `--spawn`: chats3 processes with a temporary data directory, rate
//! limits off, each listening on a free loopback port: one process, or
//! with `--instances N` (or `CHATS3_CLUSTER__BACKEND=redis` in
//! `--server-env`) N instances in cluster mode sharing one data directory
//! and a `redis-server` the tool starts too.

use crate::Args;
use crate::redis::Redis;
use anyhow::Context;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Admin password of a spawned server.
pub const ADMIN_PASSWORD: &str = "bench-admin";

/// Running servers started by the tool, and their Redis when clustered.
pub struct Spawned {
    instances: Vec<Child>,
    /// One base URL per instance, in instance order.
    pub base_urls: Vec<String>,
    /// Dropped after the instances have stopped.
    redis: Option<Redis>,
    _data: TempDir,
}

/// A temporary directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether the spawned servers run in cluster mode, and on which Redis:
/// `(clustered, redis URL given in --server-env)`. The last
/// `--server-env` of a key wins, as it does for the process.
fn cluster_mode(args: &Args, env: &[(String, String)]) -> (bool, Option<String>) {
    let last = |key: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let backend = last("CHATS3_CLUSTER__BACKEND");
    let clustered = match backend.as_deref() {
        Some(backend) => backend == "redis",
        None => args.instances > 1,
    };
    let url = last("CHATS3_CLUSTER__REDIS_URL").filter(|url| !url.is_empty());
    (clustered, url)
}

impl Spawned {
    /// Starts `--instances` servers (and a Redis for them when they run
    /// in cluster mode without a given Redis URL) and waits until each
    /// listens.
    pub async fn start(args: &Args) -> anyhow::Result<Spawned> {
        let bin = match &args.server_bin {
            Some(path) => std::path::PathBuf::from(path),
            None => std::env::current_exe()?.with_file_name("chats3"),
        };
        anyhow::ensure!(
            bin.exists(),
            "{} not found: build it with `cargo build --release`",
            bin.display()
        );
        let data =
            TempDir(std::env::temp_dir().join(format!("chats3-bench-{}", uuid::Uuid::new_v4())));
        std::fs::create_dir_all(&data.0)?;
        let env = args
            .server_env
            .iter()
            .map(|pair| {
                let (key, value) = pair
                    .split_once('=')
                    .context("--server-env takes KEY=VALUE")?;
                Ok((
                    key.to_owned(),
                    value.replace("{data}", &data.0.to_string_lossy()),
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (clustered, given_url) = cluster_mode(args, &env);
        anyhow::ensure!(
            clustered || args.instances <= 1,
            "--instances {} needs the cluster mode: drop CHATS3_CLUSTER__BACKEND=local",
            args.instances
        );
        let redis = match (clustered, &given_url) {
            (true, None) => Some(Redis::start()?),
            _ => None,
        };
        let redis_url = given_url.or_else(|| redis.as_ref().map(Redis::url));
        let mut spawned = Spawned {
            instances: Vec::new(),
            base_urls: Vec::new(),
            redis,
            _data: data,
        };
        for index in 0..args.instances.max(1) {
            let mut command = Command::new(&bin);
            if let Some(config) = &args.server_config {
                anyhow::ensure!(config.exists(), "{} not found", config.display());
                command.env("CHATS3_CONFIG", config);
            }
            let data = &spawned._data.0;
            command
                .env("CHATS3_SERVER__HOST", "127.0.0.1")
                .env("CHATS3_SERVER__PORT", "0")
                // Every instance shares the storage, as a cluster must.
                .env("CHATS3_STORAGE__FS_ROOT", data)
                // The run's own log, one per instance (a shared
                // "./data/wal" would mix runs); `--server-env
                // CHATS3_DURABILITY__WAL_DIR=` turns it off.
                .env(
                    "CHATS3_DURABILITY__WAL_DIR",
                    data.join(if index == 0 {
                        "wal".to_owned()
                    } else {
                        format!("wal-{index}")
                    }),
                )
                .env("CHATS3_AUTH__ADMIN_PASSWORD", ADMIN_PASSWORD)
                .env("CHATS3_RATE_LIMIT__PER_IP_PER_MINUTE", "0")
                .env("CHATS3_RATE_LIMIT__ADMIN_PER_MINUTE", "0")
                .env("CHATS3_LOG__FORMAT", "json")
                .env("RUST_LOG", "warn,chats3=info")
                .env(
                    "CHATS3_ACTORS__IDLE_TIMEOUT",
                    if matches!(
                        args.workload,
                        crate::Workload::History | crate::Workload::Search
                    ) {
                        "2s"
                    } else {
                        "10m"
                    },
                )
                // `rooms` measures hibernating rooms too, without a minute's
                // wait, yet long enough to create and measure them awake first.
                .env(
                    "CHATS3_ACTORS__HIBERNATE_AFTER",
                    if matches!(args.workload, crate::Workload::Rooms) {
                        "15s"
                    } else {
                        "1m"
                    },
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            if let (true, Some(url)) = (clustered, &redis_url) {
                command
                    .env("CHATS3_CLUSTER__BACKEND", "redis")
                    .env("CHATS3_CLUSTER__REDIS_URL", url)
                    .env("CHATS3_CLUSTER__INSTANCE_ID", format!("bench-{index}"));
            }
            command.envs(env.iter().map(|(k, v)| (k, v)));
            let mut child = command
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            let stdout = child.stdout.take().context("server stdout")?;
            // Pushed before waiting, so a server that never listens is
            // killed on drop rather than orphaned.
            spawned.instances.push(child);
            let mut lines = BufReader::new(stdout).lines();
            let base_url = loop {
                let line = lines.next().context("server exited before listening")??;
                if line.contains("chats3 listening") {
                    let log: serde_json::Value = serde_json::from_str(&line)?;
                    break log["fields"]["url"]
                        .as_str()
                        .context("url in log")?
                        .to_owned();
                }
            };
            std::thread::spawn(move || for _ in lines {});
            spawned.base_urls.push(base_url);
        }
        Ok(spawned)
    }

    /// The instances' process ids, in instance order.
    pub fn pids(&self) -> Vec<u32> {
        self.instances.iter().map(Child::id).collect()
    }

    /// The spawned Redis, if any.
    pub fn redis(&self) -> Option<&Redis> {
        self.redis.as_ref()
    }

    /// SIGTERM to every instance, then wait for their exits; the Redis
    /// stops last.
    pub async fn stop(mut self) {
        for child in &self.instances {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        for child in &mut self.instances {
            let mut exited = false;
            for _ in 0..600 {
                if child.try_wait().ok().flatten().is_some() {
                    exited = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            if !exited {
                let _ = child.kill();
            }
        }
    }
}

/// Servers whose run failed before `stop` are killed rather than orphaned.
impl Drop for Spawned {
    fn drop(&mut self) {
        for child in &mut self.instances {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Resident set size of a process in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time a process has used so far (user and system, all threads), in
/// seconds, from `/proc/PID/stat` (`"self"` for this process).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces, in parentheses.
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ');
    // utime and stime are fields 14 and 15, in USER_HZ (100 on Linux).
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU seconds used by the servers (when their pids are known, summed
/// over the instances), their Redis (when known) and this tool, beside
/// the whole machine's CPU time by state.
pub struct Cpu {
    pub server: Option<f64>,
    pub redis: Option<f64>,
    pub generator: Option<f64>,
    /// The whole machine's CPU time (all cores, every process).
    pub machine: Option<MachineTime>,
}

/// The machine's CPU time by state, in USER_HZ ticks summed over the
/// cores, from the first line of `/proc/stat`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineTime {
    pub total: u64,
    pub idle: u64,
    pub iowait: u64,
    /// Time the hypervisor ran something else while a core wanted to run.
    pub steal: u64,
}

impl MachineTime {
    /// The current counters (`None` off Linux).
    pub fn now() -> Option<MachineTime> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let ticks: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq steal (guest time is
        // inside user already).
        let state = |i: usize| ticks.get(i).copied().unwrap_or(0);
        Some(MachineTime {
            total: (0..8).map(state).sum(),
            idle: state(3),
            iowait: state(4),
            steal: state(7),
        })
    }

    /// Of a span's counters (see [`Cpu::since`]): the percentage of its
    /// time the cores spent idle, idle waiting for I/O, and stolen by
    /// the hypervisor; `None` when no tick passed.
    pub fn shares(&self) -> Option<(f64, f64, f64)> {
        let total = Some(self.total).filter(|t| *t > 0)? as f64;
        let share = |ticks: u64| (ticks as f64 * 1000.0 / total).round() / 10.0;
        Some((share(self.idle), share(self.iowait), share(self.steal)))
    }
}

impl Cpu {
    /// The CPU time used so far by `servers` (`None` when any is
    /// unknown, or none is given) and `redis`.
    pub fn now(servers: &[u32], redis: Option<u32>) -> Cpu {
        let summed = servers
            .iter()
            .map(|pid| cpu_seconds(&pid.to_string()))
            .sum::<Option<f64>>()
            .filter(|_| !servers.is_empty());
        Cpu {
            server: summed,
            redis: redis.and_then(|pid| cpu_seconds(&pid.to_string())),
            generator: cpu_seconds("self"),
            machine: MachineTime::now(),
        }
    }

    /// The CPU time used between `before` and this reading.
    pub fn since(&self, before: &Cpu) -> Cpu {
        let diff = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        Cpu {
            server: diff(self.server, before.server),
            redis: diff(self.redis, before.redis),
            generator: diff(self.generator, before.generator),
            machine: self
                .machine
                .zip(before.machine)
                .map(|(now, then)| MachineTime {
                    total: now.total.saturating_sub(then.total),
                    idle: now.idle.saturating_sub(then.idle),
                    iowait: now.iowait.saturating_sub(then.iowait),
                    steal: now.steal.saturating_sub(then.steal),
                }),
        }
    }
}
