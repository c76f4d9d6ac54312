//! Answers an event-stream request on a raw socket: runs the router, then
//! writes the response head and each body chunk as it comes (one vectored
//! write per chunk, chunked transfer coding) and closes the connection when
//! the body ends. The writer is one small poll-driven future: between events
//! a stream costs its task, the socket and the body's own state, with no
//! read or write buffers and no per-event futures. The peer going away is
//! noticed through read readiness; a peer that stops reading, through the
//! [`WriteDeadline`]. A `101 Switching Protocols` answer to an upgrade is
//! written as its head alone, and the socket is handed to the handler
//! that answered it.

use super::upgrade::Handoff;
use super::write_deadline::WriteDeadline;
use axum::Router;
use axum::body::{Body, BodyDataStream, HttpBody};
use axum::http::{Request, StatusCode, header, response::Parts};
use bytes::Bytes;
use futures::StreamExt;
use std::future::Future;
use std::io::{self, IoSlice, Write};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tower::ServiceExt;

/// Runs `request` through `router` and writes the answer to `socket`,
/// giving up when a write stalls past `deadline`; a 101 answer to a
/// request that can upgrade hands the socket over through `upgrade`.
/// (Arguments stay in an async fn's state for its whole life, hence the
/// boxed request.)
pub(super) async fn respond(
    mut socket: TcpStream,
    request: Box<Request<Body>>,
    router: Router,
    mut deadline: WriteDeadline,
    upgrade: Option<Handoff>,
) {
    // Boxed so the router's future is freed once the response is ready;
    // the request's box is freed as it is opened.
    let response = match Box::pin(router.oneshot(unbox(request))).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let upgrade = upgrade.filter(|_| parts.status == StatusCode::SWITCHING_PROTOCOLS);
    let framing = match (&upgrade, body.size_hint().exact()) {
        (Some(_), _) => Framing::Upgrade,
        (None, Some(length)) => Framing::Length(length),
        (None, None) => Framing::Chunked,
    };
    let head = Bytes::from(head(&parts, framing));
    drop(parts);
    let writer = BodyWriter {
        socket: &socket,
        body: body.into_data_stream(),
        chunked: framing == Framing::Chunked,
        out: Some(Outgoing::raw(head)),
        ended: false,
        deadline: &mut deadline,
    };
    if let Err(e) = writer.await {
        tracing::debug!(error = %e, "event stream ended by the connection");
        return;
    }
    if let Some(upgrade) = upgrade {
        upgrade.complete(socket, deadline);
        return;
    }
    // Closes the write side, so the client reads the end of the body.
    let _ = socket.shutdown().await;
}

/// How an answer's end is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `content-length`.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// A 101: the head alone, the connection going on in the new protocol.
    Upgrade,
}

/// The boxed value, its box freed now (moving out of a box in place frees
/// it only when the binding goes out of scope).
#[expect(
    clippy::boxed_local,
    reason = "taking the box is the point: it is freed here"
)]
fn unbox<T>(boxed: Box<T>) -> T {
    *boxed
}

/// The status line and headers, with this writer's framing (an upgrade
/// keeps the answer's own `connection` header).
fn head(parts: &Parts, framing: Framing) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    let reason = parts.status.canonical_reason().unwrap_or("");
    let _ = write!(head, "HTTP/1.1 {} {reason}\r\n", parts.status.as_u16());
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || (name == header::CONNECTION && framing != Framing::Upgrade)
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
    match framing {
        Framing::Length(length) => {
            let _ = write!(head, "content-length: {length}\r\nconnection: close\r\n");
        }
        Framing::Chunked => {
            head.extend_from_slice(b"transfer-encoding: chunked\r\nconnection: close\r\n")
        }
        Framing::Upgrade => {}
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Bytes on their way to the socket: a chunk with its framing, or raw.
struct Outgoing {
    /// Chunk size line (`{hex}\r\n`); empty for raw bytes.
    size: [u8; 18],
    size_len: u8,
    data: Bytes,
    /// Whether `\r\n` follows the data (chunk framing).
    crlf: bool,
    /// Bytes of the whole (size line, data, CRLF) already written.
    written: usize,
}

impl Outgoing {
    fn raw(data: Bytes) -> Outgoing {
        Outgoing {
            size: [0; 18],
            size_len: 0,
            data,
            crlf: false,
            written: 0,
        }
    }

    fn chunk(data: Bytes) -> Outgoing {
        let mut out = Outgoing::raw(data);
        let mut cursor = &mut out.size[..];
        // 16 hex digits and CRLF always fit.
        let _ = write!(cursor, "{:x}\r\n", out.data.len());
        out.size_len = (18 - cursor.len()) as u8;
        out.crlf = true;
        out
    }

    /// The last chunk of a chunked body.
    fn last() -> Outgoing {
        Outgoing::raw(Bytes::from_static(b"0\r\n\r\n"))
    }

    fn parts(&self) -> [&[u8]; 3] {
        let crlf: &[u8] = if self.crlf { b"\r\n" } else { b"" };
        [&self.size[..self.size_len as usize], &self.data, crlf]
    }

    fn len(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum()
    }

    /// What is left to write, as slices.
    fn remaining(&self) -> [IoSlice<'_>; 3] {
        let mut skip = self.written;
        self.parts().map(|part| {
            let from = skip.min(part.len());
            skip -= from;
            IoSlice::new(&part[from..])
        })
    }
}

/// Writes the head, then the body, until the body ends (`Ok`) or the
/// connection fails or the peer leaves (`Err`).
struct BodyWriter<'a> {
    socket: &'a TcpStream,
    body: BodyDataStream,
    chunked: bool,
    out: Option<Outgoing>,
    /// The body has ended; what is in `out` is the last write.
    ended: bool,
    deadline: &'a mut WriteDeadline,
}

impl Future for BodyWriter<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if let Some(out) = &mut this.out {
                if this.socket.poll_write_ready(cx)?.is_pending() {
                    return this.deadline.poll_stalled(cx).map(Err);
                }
                match this.socket.try_write_vectored(&out.remaining()) {
                    Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Ok(n) => {
                        this.deadline.progressed();
                        out.written += n;
                        if out.written == out.len() {
                            this.out = None;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
                continue;
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            match this.body.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(data))) if data.is_empty() => {}
                Poll::Ready(Some(Ok(data))) if this.chunked => {
                    this.out = Some(Outgoing::chunk(data))
                }
                Poll::Ready(Some(Ok(data))) => this.out = Some(Outgoing::raw(data)),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(io::Error::other(e))),
                Poll::Ready(None) => {
                    this.ended = true;
                    this.out = this.chunked.then(Outgoing::last);
                }
                Poll::Pending => {
                    // Waiting for the next event: notice the peer leaving.
                    ready!(this.socket.poll_read_ready(cx))?;
                    discard_input(this.socket)?;
                }
            }
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
