//! A real S3-compatible server (s3s + s3s-fs) on a free loopback port:
//! in-process for most S3 tests (optionally answering every request after
//! a delay, as a distant store does), or in a process of its own
//! ([`S3Process`]) that a test can freeze with SIGSTOP, or kill and start
//! again on the same address and data.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const ACCESS_KEY: &str = "test-access";
pub const SECRET_KEY: &str = "test-secret";

/// Where an S3 server is.
pub struct S3Details {
    pub endpoint: String,
    pub bucket: String,
}

/// A running S3 server with one bucket.
pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    pub root: TempDir,
    latency: Duration,
    task: JoinHandle<()>,
}

impl S3Server {
    /// Starts the server with an empty bucket.
    pub async fn start() -> S3Server {
        S3Server::start_with_latency(Duration::ZERO).await
    }

    /// Starts the server with an empty bucket; every request is answered
    /// `latency` late.
    pub async fn start_with_latency(latency: Duration) -> S3Server {
        let root = tempfile::tempdir().unwrap();
        let bucket = "chats3-test".to_owned();
        std::fs::create_dir_all(root.path().join(&bucket)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let task = serve(listener, root.path(), latency);
        S3Server {
            endpoint,
            bucket,
            root,
            latency,
            task,
        }
    }

    /// Stops answering: the listener and every open connection close.
    pub fn stop(&mut self) {
        self.task.abort();
    }

    /// Serves again on the same address and data.
    pub async fn restart(&mut self) {
        self.task.abort();
        let address = self.endpoint.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind(&address).await.unwrap();
        self.task = serve(listener, self.root.path(), self.latency);
    }

    /// Connection details of a server started elsewhere, for configs.
    pub fn placeholder(endpoint: &str, bucket: &str) -> S3Details {
        S3Details {
            endpoint: endpoint.to_owned(),
            bucket: bucket.to_owned(),
        }
    }

    pub fn details(&self) -> S3Details {
        S3Server::placeholder(&self.endpoint, &self.bucket)
    }

    /// The path of an object on the server's disk.
    pub fn object_path(&self, key: &str) -> std::path::PathBuf {
        self.root.path().join(&self.bucket).join(key)
    }
}

/// Accepts connections until aborted; aborting also ends every connection.
fn serve(listener: TcpListener, root: &std::path::Path, latency: Duration) -> JoinHandle<()> {
    let fs = s3s_fs::FileSystem::new(root).unwrap();
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let service = service.clone();
            let delayed = hyper::service::service_fn(move |request| {
                let service = service.clone();
                async move {
                    tokio::time::sleep(latency).await;
                    hyper::service::Service::call(&service, request).await
                }
            });
            connections.spawn(async move {
                let _ = ConnBuilder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), delayed)
                    .await;
            });
            while connections.try_join_next().is_some() {}
        }
    })
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Set for the child process that [`S3Process`] starts: the directory to
/// serve from.
const SERVE_ROOT_ENV: &str = "CHATS3_TEST_S3_ROOT";

/// Set for the child process when it must listen on a given address (a
/// restart); else it takes a free port.
const SERVE_ADDRESS_ENV: &str = "CHATS3_TEST_S3_ADDRESS";

/// The test function the child runs (`--exact` picks it alone).
const SERVE_TEST: &str = "s3_server::serves_s3_when_started_as_another_process";

/// How long a child serves at most, should its test never end it.
const CHILD_LIFETIME: Duration = Duration::from_secs(300);

/// In the test run itself this does nothing; run by [`S3Process`] as a
/// child (the variable set), it serves S3 from the given directory and
/// prints its endpoint, until killed.
#[tokio::test]
async fn serves_s3_when_started_as_another_process() {
    let Ok(root) = std::env::var(SERVE_ROOT_ENV) else {
        return;
    };
    let address = std::env::var(SERVE_ADDRESS_ENV).unwrap_or_else(|_| "127.0.0.1:0".into());
    let listener = TcpListener::bind(address).await.unwrap();
    println!("S3_ENDPOINT=http://{}", listener.local_addr().unwrap());
    let _server = serve(listener, std::path::Path::new(&root), Duration::ZERO);
    tokio::time::sleep(CHILD_LIFETIME).await;
}

/// An S3 server in a process of its own (this test binary run again for
/// [`serves_s3_when_started_as_another_process`]), so that SIGSTOP
/// freezes it the way a hung store hangs: connections stay open, nothing
/// answers.
pub struct S3Process {
    pub endpoint: String,
    pub bucket: String,
    pub root: TempDir,
    child: Child,
}

impl S3Process {
    /// Starts the child and waits for its endpoint.
    pub fn start() -> S3Process {
        let root = tempfile::tempdir().unwrap();
        let bucket = "chats3-test".to_owned();
        std::fs::create_dir_all(root.path().join(&bucket)).unwrap();
        let (child, endpoint) = spawn_child(root.path(), None);
        S3Process {
            endpoint,
            bucket,
            root,
            child,
        }
    }

    /// Kills the server (SIGKILL): its connections are reset, new ones
    /// refused.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a new server process on the same address and data.
    pub fn restart(&mut self) {
        self.kill();
        let address = self.endpoint.trim_start_matches("http://").to_owned();
        let (child, endpoint) = spawn_child(self.root.path(), Some(&address));
        assert_eq!(endpoint, self.endpoint, "the same address again");
        self.child = child;
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// Freezes the server: it keeps its connections and answers nothing.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Lets it go on.
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    pub fn details(&self) -> S3Details {
        S3Server::placeholder(&self.endpoint, &self.bucket)
    }

    /// The path of an object on the server's disk.
    pub fn object_path(&self, key: &str) -> std::path::PathBuf {
        self.root.path().join(&self.bucket).join(key)
    }
}

/// Runs this test binary as an S3 server serving `root` (on `address`, or
/// a free port); returns the process and its endpoint.
fn spawn_child(root: &std::path::Path, address: Option<&str>) -> (Child, String) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", SERVE_TEST, "--nocapture", "--test-threads=1"])
        .env(SERVE_ROOT_ENV, root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(address) = address {
        command.env(SERVE_ADDRESS_ENV, address);
    }
    let mut child = command.spawn().expect("start the S3 child process");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let endpoint = loop {
        let line = lines.next().expect("S3 child output").unwrap();
        // libtest may print the test's name on the same line first.
        if let Some((_, endpoint)) = line.split_once("S3_ENDPOINT=") {
            break endpoint.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, endpoint)
}

impl Drop for S3Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
