//! `--spawn`: a chats3 process with a temporary data directory, rate
//! limits off, listening on a free loopback port.

use crate::Args;
use anyhow::Context;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Admin password of a spawned server.
pub const ADMIN_PASSWORD: &str = "bench-admin";

/// A running server started by the tool.
pub struct Spawned {
    child: Child,
    pub base_url: String,
    _data: TempDir,
}

/// A temporary directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Spawned {
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
        let mut command = Command::new(&bin);
        if let Some(config) = &args.server_config {
            anyhow::ensure!(config.exists(), "{} not found", config.display());
            command.env("CHATS3_CONFIG", config);
        }
        command
            .env("CHATS3_SERVER__HOST", "127.0.0.1")
            .env("CHATS3_SERVER__PORT", "0")
            .env("CHATS3_STORAGE__FS_ROOT", &data.0)
            // The run's own log (a shared "./data/wal" would mix runs);
            // `--server-env CHATS3_DURABILITY__WAL_DIR=` turns it off.
            .env("CHATS3_DURABILITY__WAL_DIR", data.0.join("wal"))
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
            // `rooms` measures hibernating rooms too, without a minute's wait.
            .env(
                "CHATS3_ACTORS__HIBERNATE_AFTER",
                if matches!(args.workload, crate::Workload::Rooms) {
                    "2s"
                } else {
                    "1m"
                },
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for pair in &args.server_env {
            let (key, value) = pair
                .split_once('=')
                .context("--server-env takes KEY=VALUE")?;
            command.env(key, value.replace("{data}", &data.0.to_string_lossy()));
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
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
        Ok(Spawned {
            child,
            base_url,
            _data: data,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait for the exit.
    pub async fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..600 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
    }
}

/// A server whose run failed before `stop` is killed rather than orphaned.
impl Drop for Spawned {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
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

/// CPU seconds used by the server (when its pid is known) and this tool.
pub struct Cpu {
    pub server: Option<f64>,
    pub generator: Option<f64>,
}

impl Cpu {
    /// The CPU time used so far.
    pub fn now(server: Option<u32>) -> Cpu {
        Cpu {
            server: server.and_then(|pid| cpu_seconds(&pid.to_string())),
            generator: cpu_seconds("self"),
        }
    }

    /// The CPU time used between `before` and this reading.
    pub fn since(&self, before: &Cpu) -> Cpu {
        let diff = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        Cpu {
            server: diff(self.server, before.server),
            generator: diff(self.generator, before.generator),
        }
    }
}
