//! The Redis of a spawned cluster: a `redis-server` (Debian's package) on
//! a free loopback port, without persistence, killed when dropped; and the
//! per-command call counts of `INFO commandstats`, read around a measured
//! phase to count what each operation costs Redis.

use anyhow::Context;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest `INFO` answer read (a few KiB in practice).
const MAX_INFO: usize = 1024 * 1024;

/// A running `redis-server` started by the tool.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    /// Starts `redis-server` on a free loopback port (no snapshots, no
    /// append-only file: the bench measures chats3, not a disk) and waits
    /// until it answers `PING`. Fails with what to install when
    /// `redis-server` is missing.
    pub fn start() -> anyhow::Result<Redis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "redis-server could not be started ({e}): the cluster mode \
                     (--instances > 1, or CHATS3_CLUSTER__BACKEND=redis without a \
                     CHATS3_CLUSTER__REDIS_URL) needs it installed (apt-get install redis-server)"
                )
            })?;
        let redis = Redis { child, port };
        let started = Instant::now();
        while query(port, "PING").ok().as_deref() != Some("+PONG") {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server on port {port} did not answer within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its process id, for its CPU figures.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one inline command and returns the answer: a simple string or
/// error line as is (`+PONG`), a bulk string's content.
fn query(port: u16, command: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(format!("{command}\r\n").as_bytes())?;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buffer)?;
        anyhow::ensure!(n > 0, "Redis closed the connection");
        answer.extend_from_slice(&buffer[..n]);
        anyhow::ensure!(answer.len() <= MAX_INFO, "an answer over {MAX_INFO} bytes");
        let text = String::from_utf8_lossy(&answer);
        let Some((head, rest)) = text.split_once("\r\n") else {
            continue;
        };
        match head.strip_prefix('$') {
            Some(len) => {
                let len: usize = len.parse().context("bulk length")?;
                if rest.len() >= len {
                    return Ok(rest[..len].to_owned());
                }
            }
            None => return Ok(head.to_owned()),
        }
    }
}

/// Calls so far per Redis command (`cmdstat_evalsha:calls=12,...` gives
/// `evalsha` → 12), from `INFO commandstats`.
pub fn command_calls(port: u16) -> anyhow::Result<BTreeMap<String, u64>> {
    let info = query(port, "INFO commandstats")?;
    Ok(parse_command_calls(&info))
}

fn parse_command_calls(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|f| f.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

/// Calls per operation for each command called between `before` and
/// `after` (two decimals), and their sum as `"total"`.
pub fn calls_per(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    operations: u64,
) -> BTreeMap<String, f64> {
    let per = |calls: u64| (calls as f64 * 100.0 / operations.max(1) as f64).round() / 100.0;
    let mut out = BTreeMap::new();
    let mut total = 0;
    for (name, calls) in after {
        let made = calls.saturating_sub(before.get(name).copied().unwrap_or(0));
        if made > 0 {
            out.insert(name.clone(), per(made));
            total += made;
        }
    }
    out.insert("total".to_owned(), per(total));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_stats_give_calls_per_command_and_per_operation() {
        let before = parse_command_calls(
            "# Commandstats\r\ncmdstat_evalsha:calls=10,usec=50,usec_per_call=5.00\r\n",
        );
        let after = parse_command_calls(
            "# Commandstats\r\ncmdstat_evalsha:calls=30,usec=150,usec_per_call=5.00\r\n\
             cmdstat_getex:calls=20,usec=20,usec_per_call=1.00,rejected_calls=0\r\n",
        );
        assert_eq!(after["getex"], 20);
        let per = calls_per(&before, &after, 20);
        assert_eq!(per["evalsha"], 1.0);
        assert_eq!(per["getex"], 1.0);
        assert_eq!(per["total"], 2.0);
    }
}
