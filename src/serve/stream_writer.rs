//! Answers an event-stream request on a raw socket: runs the router, writes
//! the response head, then each body chunk as it comes (one vectored write
//! per chunk, chunked transfer coding) and closes the connection when the
//! body ends. Between events the connection costs its task, the socket and
//! the body's own state; no read or write buffers are kept. The peer going
//! away is noticed by waiting for read readiness, without a buffer.

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::http::{Request, header, response::Parts};
use futures::StreamExt;
use std::io::{self, IoSlice, Write};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tower::ServiceExt;

/// Ends a chunked body.
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Runs `request` through `router` and writes the answer to `socket`.
/// (Arguments stay in an async fn's state for its whole life, hence the
/// boxed request.)
pub async fn respond(mut socket: TcpStream, request: Box<Request<Body>>, router: Router) {
    if let Err(e) = write_response(&socket, request, router).await {
        tracing::debug!(error = %e, "event stream ended by the connection");
        return;
    }
    // Closes the write side, so the client reads the end of the body.
    let _ = socket.shutdown().await;
}

async fn write_response(
    socket: &TcpStream,
    request: Box<Request<Body>>,
    router: Router,
) -> io::Result<()> {
    // Boxed so the router's future is freed once the response is ready.
    let response = match Box::pin(router.oneshot(*request)).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let length = body.size_hint().exact();
    let head = head(&parts, length);
    drop(parts);
    // Boxed so the head is freed once written.
    Box::pin(write_all(socket, &mut [IoSlice::new(&head)])).await?;
    drop(head);
    match length {
        Some(_) => write_sized(socket, body).await,
        None => write_chunked(socket, body).await,
    }
}

/// The status line and headers, with this writer's framing.
fn head(parts: &Parts, length: Option<u64>) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    let reason = parts.status.canonical_reason().unwrap_or("");
    let _ = write!(head, "HTTP/1.1 {} {reason}\r\n", parts.status.as_u16());
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
        {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !parts.headers.contains_key(header::DATE) {
        let now = httpdate::fmt_http_date(std::time::SystemTime::now());
        let _ = write!(head, "date: {now}\r\n");
    }
    match length {
        Some(length) => {
            let _ = write!(head, "content-length: {length}\r\n");
        }
        None => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    head.extend_from_slice(b"connection: close\r\n\r\n");
    head
}

/// A body of known length, as it is.
async fn write_sized(socket: &TcpStream, body: Body) -> io::Result<()> {
    let mut data = body.into_data_stream();
    while let Some(chunk) = data.next().await {
        let chunk = chunk.map_err(io::Error::other)?;
        write_all(socket, &mut [IoSlice::new(&chunk)]).await?;
    }
    Ok(())
}

/// A body of unknown length (the event stream), chunk by chunk until it
/// ends or the peer goes away.
async fn write_chunked(socket: &TcpStream, body: Body) -> io::Result<()> {
    let mut data = body.into_data_stream();
    loop {
        let next = tokio::select! {
            next = data.next() => next,
            ready = socket.readable() => {
                ready?;
                discard_input(socket)?;
                continue;
            }
        };
        match next {
            Some(Ok(chunk)) if chunk.is_empty() => {}
            Some(Ok(chunk)) => {
                let mut size = [0u8; 18];
                let used = {
                    let mut cursor = &mut size[..];
                    write!(cursor, "{:x}\r\n", chunk.len())?;
                    18 - cursor.len()
                };
                let mut slices = [
                    IoSlice::new(&size[..used]),
                    IoSlice::new(&chunk),
                    IoSlice::new(b"\r\n"),
                ];
                write_all(socket, &mut slices).await?;
            }
            Some(Err(e)) => return Err(io::Error::other(e)),
            None => return write_all(socket, &mut [IoSlice::new(LAST_CHUNK)]).await,
        }
    }
}

/// Reads and drops what a client sent after its request (the response
/// says `connection: close`); fails once the peer has closed its side or
/// the connection broke, which ends the stream.
fn discard_input(socket: &TcpStream) -> io::Result<()> {
    let mut scratch = [0u8; 256];
    loop {
        match socket.try_read(&mut scratch) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Writes every byte of `slices`, waiting for the socket as needed.
async fn write_all(socket: &TcpStream, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        socket.writable().await?;
        match socket.try_write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
