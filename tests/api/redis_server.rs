//! A real `redis-server` (Debian's package) on a free loopback port, in a
//! process of its own that a test can stop and start again on the same
//! port, or freeze with SIGSTOP. Without `redis-server` installed the
//! cluster tests are skipped with a message, unless
//! `CHATS3_REQUIRE_REDIS` is set (CI sets it), then they fail.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Redis.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// With persistence: the directory of its append-only file.
    dir: Option<tempfile::TempDir>,
}

impl RedisServer {
    /// Starts Redis on a free port (no persistence: the tests' Redis holds
    /// only what a test made); `None` when `redis-server` is missing and
    /// not required.
    pub fn start() -> Option<RedisServer> {
        Self::start_with(None)
    }

    /// Starts Redis with an append-only file synced on every write
    /// (`appendfsync always`), so a restart keeps what it acknowledged.
    pub fn start_persistent() -> Option<RedisServer> {
        Self::start_with(Some(tempfile::tempdir().unwrap()))
    }

    fn start_with(dir: Option<tempfile::TempDir>) -> Option<RedisServer> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            assert!(
                std::env::var("CHATS3_REQUIRE_REDIS").is_err(),
                "redis-server is required (apt-get install redis-server)"
            );
            eprintln!("skipping: redis-server is not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = RedisServer {
            port,
            child: None,
            dir,
        };
        server.resume_service();
        Some(server)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL): every connection drops, nothing answers.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and waits until it answers.
    pub fn resume_service(&mut self) {
        self.kill();
        let mut command = Command::new("redis-server");
        command.args(["--port", &self.port.to_string()]).args([
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]);
        match &self.dir {
            Some(dir) => command
                .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                .arg(dir.path()),
            None => command.args(["--appendonly", "no"]),
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let started = Instant::now();
        while !self.answers() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server answers within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The string value of `key` (`None` when it has none), asked over
    /// a connection of its own.
    pub fn get(&self, key: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let command = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
        stream.write_all(command.as_bytes()).ok()?;
        let mut reply = Vec::new();
        let mut buffer = [0u8; 512];
        loop {
            let read = stream.read(&mut buffer).ok()?;
            reply.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&reply);
            let (head, rest) = text.split_once("\r\n")?;
            let length: i64 = head.strip_prefix('$')?.parse().ok()?;
            if length < 0 {
                return None;
            }
            let length = usize::try_from(length).ok()?;
            if rest.len() >= length {
                return Some(rest[..length].to_owned());
            }
            if read == 0 {
                return None;
            }
        }
    }

    /// Whether it answers a PING.
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
