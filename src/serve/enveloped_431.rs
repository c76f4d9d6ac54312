//! hyper answers a request head it cannot buffer (past its `max_buf_size`,
//! on a connection's later requests) with its own bodiless `431` and closes
//! the connection, without calling the router. This wrapper around the
//! socket hyper writes to replaces that answer with the router's own 431
//! (the envelope and the headers every answer carries, rendered once at
//! start and stamped with a new request id and time each time it is
//! sent): every error answer is the envelope. Heads hyper does buffer but
//! that are longer than [`super::MAX_HEAD`] are refused by the router
//! itself ([`super::head_too_large`]).

use bytes::Bytes;
use serde_json::Value;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How hyper's own answer to an over-long head starts.
const HYPERS_431: &[u8] = b"HTTP/1.1 431 ";

/// The header that tells hyper's bodiless 431 from the router's (which
/// carries an envelope, so a longer body).
const NO_BODY: &[u8] = b"\r\ncontent-length: 0\r\n";

/// The router's 431, kept to be stamped afresh each time it replaces
/// hyper's: its status line and headers, and its envelope.
pub(super) struct Answer431 {
    /// Status line and headers, without those made per answer
    /// (`x-request-id`, `date`, `content-length`, `connection`).
    head: Vec<u8>,
    /// The envelope; its `meta` is replaced per answer.
    envelope: Value,
}

impl Answer431 {
    /// Keeps `response` (status, headers, complete body) to be answered
    /// again later.
    pub(super) fn new(response: &axum::http::response::Parts, body: &[u8]) -> Self {
        let mut head = Vec::with_capacity(512);
        let reason = response.status.canonical_reason().unwrap_or("");
        head.extend_from_slice(
            format!("HTTP/1.1 {} {reason}\r\n", response.status.as_u16()).as_bytes(),
        );
        for (name, value) in &response.headers {
            if matches!(
                name.as_str(),
                "x-request-id" | "date" | "content-length" | "connection"
            ) {
                continue;
            }
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        Answer431 {
            head,
            envelope: serde_json::from_slice(body).unwrap_or(Value::Null),
        }
    }

    /// The answer's bytes with a new request id and the time now, closing
    /// the connection as hyper's would.
    fn stamped(&self) -> Bytes {
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut envelope = self.envelope.clone();
        if let Some(meta) = envelope.get_mut("meta") {
            meta["requestId"] = Value::from(request_id.as_str());
            meta["timestamp"] = Value::from(chats3_actors::time::now_iso());
        }
        let body = serde_json::to_vec(&envelope).unwrap_or_default();
        let mut out = Vec::with_capacity(self.head.len() + 128 + body.len());
        out.extend_from_slice(&self.head);
        out.extend_from_slice(format!("x-request-id: {request_id}\r\n").as_bytes());
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        out.extend_from_slice(b"connection: close\r\n\r\n");
        out.extend_from_slice(&body);
        Bytes::from(out)
    }
}

/// Whether `write` is the start of hyper's own bodiless 431.
fn is_hypers_431(write: &[u8]) -> bool {
    write.starts_with(HYPERS_431) && write.windows(NO_BODY.len()).any(|w| w == NO_BODY)
}

/// A socket whose writes pass through until hyper starts its own 431;
/// from then on what hyper writes is dropped and the router's 431 is
/// written instead.
pub(super) struct Enveloped431<T> {
    inner: T,
    answer: Arc<Answer431>,
    /// The replacement and how much of it is written, once it replaces
    /// hyper's answer.
    replacing: Option<(Bytes, usize)>,
}

impl<T> Enveloped431<T> {
    /// `inner`, with hyper's 431 replaced by `answer`.
    pub(super) fn new(inner: T, answer: Arc<Answer431>) -> Self {
        Enveloped431 {
            inner,
            answer,
            replacing: None,
        }
    }
}

impl<T: AsyncWrite + Unpin> Enveloped431<T> {
    /// Writes what is left of the replacement; ready once all is written.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((replacement, written)) = &mut self.replacing
            && *written < replacement.len()
        {
            match Pin::new(&mut self.inner).poll_write(cx, &replacement[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Whether this write begins hyper's 431 (or follows it): then it is
    /// taken whole and the replacement goes out instead.
    fn swallows(&mut self, first: &[u8]) -> bool {
        if self.replacing.is_none() && is_hypers_431(first) {
            self.replacing = Some((self.answer.stamped(), 0));
        }
        self.replacing.is_some()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Enveloped431<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Enveloped431<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.swallows(buf) {
            return this.poll_replacement(cx).map_ok(|()| buf.len());
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
        if this.swallows(first) {
            let total = bufs.iter().map(|b| b.len()).sum();
            return this.poll_replacement(cx).map_ok(|()| total);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.poll_replacement(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.poll_replacement(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }
}
