//! The accept loop. Each connection's first request head is read here: an
//! event stream asked for on a fresh connection (at
//! [`Options::fresh_stream_path`]) is answered by [`stream_writer`] straight
//! onto the socket, so an idle stream holds no HTTP buffers, and so is an
//! upgrade asked for on a fresh connection (at
//! [`Options::fresh_upgrade_path`]), whose socket then goes to the handler
//! ([`upgrade`]); every other connection goes to hyper's HTTP/1.1
//! connection (upgrades allowed) with the bytes already read replayed in
//! front of the socket. Both paths run the same router. The peer address
//! reaches handlers as axum's `ConnectInfo`, as
//! `into_make_service_with_connect_info` would.
//!
//! Bounds: at most [`Options::max_connections`] connections are open (past
//! it a new connection is accepted and closed at once), a request head is
//! at most 64 KiB, and a write the client does not take within
//! [`Options::stream_write_timeout`] ends its connection.

mod enveloped_431;
mod first_request;
mod prefixed;
mod stream_writer;
pub mod upgrade;
mod write_deadline;

use axum::Router;
use axum::extract::ConnectInfo;
use first_request::{FirstRequest, FreshPaths};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use write_deadline::{Deadlined, WriteDeadline};

/// A client must finish sending request headers within this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How the serve layer runs, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Connections open at once; past it new ones are closed at once.
    pub max_connections: usize,
    /// Longest a write may wait for the client to read.
    pub stream_write_timeout: Duration,
    /// The event stream's path, the one request written without hyper when
    /// it is a connection's first; `None` leaves every request to hyper.
    pub fresh_stream_path: Option<&'static str>,
    /// The path whose upgrade, asked for in a connection's first request,
    /// is answered without hyper; `None` leaves upgrades to hyper.
    pub fresh_upgrade_path: Option<&'static str>,
}

/// Marks the stand-in request of a connection whose head was too long:
/// the router answers it with the 431 envelope.
#[derive(Debug, Clone, Copy)]
pub struct HeadTooLarge;

/// Whether a head hyper parsed (a connection's later requests) is longer
/// than the 64 KiB bound; hyper's own buffer bound is looser, so the router
/// refuses these itself.
pub fn head_too_large(request: &axum::extract::Request) -> bool {
    let uri = request.uri();
    let mut length = request.method().as_str().len()
        + uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(1, |p| p.as_str().len())
        + " HTTP/1.1\r\n\r\n".len();
    for (name, value) in request.headers() {
        length += name.as_str().len() + value.len() + ": \r\n".len();
        if length > first_request::MAX_HEAD {
            return true;
        }
    }
    length > first_request::MAX_HEAD
}

/// The router's 431 answer as bytes, written in place of hyper's own.
async fn rendered_head_too_large(router: &Router) -> Arc<enveloped_431::Answer431> {
    let mut request = hyper::Request::new(axum::body::Body::empty());
    request.extensions_mut().insert(HeadTooLarge);
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 0))));
    let Ok(response) = router.clone().oneshot(request).await;
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    Arc::new(enveloped_431::Answer431::new(&parts, &body))
}

/// What every connection task shares.
struct Shared {
    router: Router,
    http: hyper::server::conn::http1::Builder,
    shutdown: CancellationToken,
    /// Every connection's task, awaited at shutdown.
    connections: TaskTracker,
    stream_write_timeout: Duration,
    fresh_paths: FreshPaths,
    /// Written instead of hyper's own 431 ([`enveloped_431`]).
    head_too_large: Arc<enveloped_431::Answer431>,
}

impl Shared {
    fn write_deadline(&self) -> WriteDeadline {
        WriteDeadline::new(self.stream_write_timeout, self.shutdown.clone())
    }
}

/// Serves `router` until `shutdown` is cancelled, then stops accepting and
/// waits for open connections to finish their current request (event
/// streams and upgraded connections end on the same token).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    options: Options,
) {
    let connections = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(first_request::MAX_HEAD);
    let head_too_large = rendered_head_too_large(&router).await;
    let shared = Arc::new(Shared {
        head_too_large,
        router,
        http,
        shutdown: shutdown.clone(),
        connections: connections.clone(),
        stream_write_timeout: options.stream_write_timeout,
        fresh_paths: FreshPaths {
            stream: options.fresh_stream_path,
            upgrade: options.fresh_upgrade_path,
        },
    });
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: let some close.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // Accepted and closed rather than left in the backlog: the client
        // learns at once, and the backlog keeps moving, so a client that
        // comes once slots free up (a health check) is not queued behind
        // connections that were refused.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "connection refused: max_connections reached");
            drop(socket);
            continue;
        };
        let _ = socket.set_nodelay(true);
        connections.spawn(connection(socket, peer, shared.clone(), slot));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// One connection: its first request head decides who writes the answers.
/// It holds its `slot` until it closes (an upgraded connection takes it along).
async fn connection(
    mut socket: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    slot: OwnedSemaphorePermit,
) {
    let first = tokio::select! {
        first = tokio::time::timeout(
            HEADER_READ_TIMEOUT,
            FirstRequest::read(&mut socket, shared.fresh_paths),
        ) => first,
        _ = shared.shutdown.cancelled() => return,
    };
    match first {
        Ok(Ok(FirstRequest::EventStream(mut request))) => {
            request.extensions_mut().insert(ConnectInfo(peer));
            // A task of its own: the stream's life costs only its state,
            // not this task's (sized for hyper's connection).
            let router = shared.router.clone();
            let deadline = shared.write_deadline();
            shared.connections.spawn(async move {
                stream_writer::respond(socket, request, router, deadline, None).await;
                drop(slot);
            });
        }
        Ok(Ok(FirstRequest::Upgrade(mut request))) => {
            request.extensions_mut().insert(ConnectInfo(peer));
            let (handoff, pending) = upgrade::fresh(slot);
            request.extensions_mut().insert(pending);
            let router = shared.router.clone();
            let deadline = shared.write_deadline();
            shared.connections.spawn(async move {
                stream_writer::respond(socket, request, router, deadline, Some(handoff)).await;
            });
        }
        Ok(Ok(FirstRequest::TooLarge)) => {
            // The router answers a stand-in, so the 431 carries the
            // envelope and every header other answers carry.
            let mut request = hyper::Request::new(axum::body::Body::empty());
            request.extensions_mut().insert(HeadTooLarge);
            request.extensions_mut().insert(ConnectInfo(peer));
            let deadline = shared.write_deadline();
            let router = shared.router.clone();
            stream_writer::respond(socket, Box::new(request), router, deadline, None).await;
        }
        Ok(Ok(FirstRequest::Other(read))) => {
            let router = shared.router.clone();
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    router.clone().oneshot(request)
                });
            let io = TokioIo::new(enveloped_431::Enveloped431::new(
                Deadlined::new(
                    prefixed::Prefixed::new(read, socket, slot),
                    shared.write_deadline(),
                ),
                shared.head_too_large.clone(),
            ));
            // Boxed so an event stream's task does not carry its size.
            let mut served = Box::pin(shared.http.serve_connection(io, service).with_upgrades());
            let served = tokio::select! {
                served = served.as_mut() => served,
                _ = shared.shutdown.cancelled() => {
                    served.as_mut().graceful_shutdown();
                    served.await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "connection failed before a request"),
        Err(_) => tracing::debug!("no request head within the header read timeout"),
    }
}
