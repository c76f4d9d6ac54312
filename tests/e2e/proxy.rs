//! A TCP proxy on loopback between the browser and the server, so a test
//! can cut the browser's connections (as a flaky network would) and let
//! them back, or refuse every WebSocket upgrade (as some proxies do).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::{JoinHandle, JoinSet};

/// A running proxy to one upstream address.
pub struct Proxy {
    pub address: String,
    open: Arc<AtomicBool>,
    connections: Arc<Mutex<JoinSet<()>>>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Forwards a fresh loopback port to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Proxy {
        Proxy::start_with(upstream, false).await
    }

    /// Like [`Proxy::start`], but a connection whose first request asks
    /// for an upgrade is answered 502 and closed.
    pub async fn refusing_upgrades(upstream: &str) -> Proxy {
        Proxy::start_with(upstream, true).await
    }

    async fn start_with(upstream: &str, refuse_upgrades: bool) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let open = Arc::new(AtomicBool::new(true));
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let upstream = upstream.to_owned();
        let task = {
            let (open, connections) = (open.clone(), connections.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if !open.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let upstream = upstream.clone();
                    connections.lock().await.spawn(async move {
                        let mut head = Vec::new();
                        if refuse_upgrades {
                            head = read_head(&mut inbound).await;
                            if asks_upgrade(&head) {
                                let _ = inbound
                                    .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                    .await;
                                return;
                            }
                        }
                        if let Ok(mut outbound) = TcpStream::connect(&upstream).await
                            && outbound.write_all(&head).await.is_ok()
                        {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            })
        };
        Proxy {
            address,
            open,
            connections,
            task,
        }
    }

    /// Cuts every open connection and refuses new ones.
    pub async fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.connections.lock().await.abort_all();
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the client sent up to the end of its first request head (or
/// whatever came before it stopped or sent 64 KiB).
async fn read_head(inbound: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match inbound.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    head
}

fn asks_upgrade(head: &[u8]) -> bool {
    String::from_utf8_lossy(head)
        .lines()
        .any(|line| line.to_ascii_lowercase().starts_with("upgrade:"))
}
