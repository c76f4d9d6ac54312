//! `chats3-floor`: the smallest server that holds event streams the way
//! chats3 does, to measure what the HTTP stack itself costs per idle
//! stream. Every request gets `200 text/event-stream`, one `retry:` frame
//! and then a body that never ends. `--stack axum` serves it with
//! `axum::serve` (chats3's stack); `--stack hyper` with a bare hyper HTTP/1
//! connection per socket. Measure it with `chats3-bench idle --floor`.

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::StreamBody;
use hyper::body::Frame;
use std::convert::Infallible;

/// Which HTTP stack serves the streams.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Stack {
    Axum,
    Hyper,
}

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "A bare event-stream server: the HTTP stack's cost per idle stream")]
struct Args {
    #[arg(long, value_enum, default_value = "axum")]
    stack: Stack,
    /// Loopback port (0 picks one).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

/// One `retry:` frame, then nothing, forever.
fn endless() -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    use futures::StreamExt;
    futures::stream::once(async { Ok(Bytes::from_static(b"retry: 3000\n\n")) })
        .chain(futures::stream::pending())
}

fn event_stream_response<B>(body: B) -> hyper::Response<B> {
    let mut response = hyper::Response::new(body);
    let headers = response.headers_mut();
    headers.insert("content-type", "text/event-stream".parse().expect("header"));
    headers.insert("cache-control", "no-cache".parse().expect("header"));
    response
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!(
        "chats3-floor listening on http://{} (pid {})",
        listener.local_addr()?,
        std::process::id()
    );
    match args.stack {
        Stack::Axum => {
            let app = axum::Router::new().fallback(|| async {
                event_stream_response(axum::body::Body::from_stream(endless()))
            });
            axum::serve(listener, app).await?;
        }
        Stack::Hyper => loop {
            let (socket, _) = listener.accept().await?;
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request| async {
                    use futures::StreamExt;
                    let body = StreamBody::new(endless().map(|chunk| chunk.map(Frame::data)));
                    Ok::<_, Infallible>(event_stream_response(body))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                    .await;
            });
        },
    }
    Ok(())
}
