//! Taking a connection over after a `101 Switching Protocols` answer. A
//! handler that upgrades takes the request's [`PendingUpgrade`], answers
//! 101 and awaits [`PendingUpgrade::connection`], which comes from
//! whichever writer answered: hyper (a request on a reused keep-alive
//! connection, or with the stream writer off), or the stream writer (an
//! upgrade asked for on a fresh connection, whose head chats3 read itself,
//! so no HTTP buffers were ever allocated for it). Either way the
//! connection keeps its `max_connections` slot and its write deadline for
//! its whole life.

use super::write_deadline::{Deadlined, WriteDeadline};
use axum::http::Extensions;
use hyper_util::rt::TokioIo;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

/// Where a request's connection will come from once it is answered 101.
pub struct PendingUpgrade(Source);

enum Source {
    Hyper(hyper::upgrade::OnUpgrade),
    Fresh(oneshot::Receiver<FreshSocket>),
}

/// The stream writer's side of an upgrade, in the request's extensions
/// (which hold only `Clone` values; the receiver is taken once).
#[derive(Clone)]
pub(super) struct FreshUpgrade(Arc<Mutex<Option<oneshot::Receiver<FreshSocket>>>>);

/// What the stream writer hands over once the 101 is written.
pub(super) struct Handoff {
    sender: oneshot::Sender<FreshSocket>,
    slot: OwnedSemaphorePermit,
}

/// A fresh connection after its 101, with its slot.
struct FreshSocket {
    socket: Deadlined<TcpStream>,
    _slot: OwnedSemaphorePermit,
}

/// The two ends of a fresh connection's upgrade: the writer keeps the
/// handoff, the request carries the other end; `slot` goes with the socket.
pub(super) fn fresh(slot: OwnedSemaphorePermit) -> (Handoff, FreshUpgrade) {
    let (sender, receiver) = oneshot::channel();
    (
        Handoff { sender, slot },
        FreshUpgrade(Arc::new(Mutex::new(Some(receiver)))),
    )
}

impl Handoff {
    /// Hands the socket, its 101 written, to the handler that answered it.
    pub(super) fn complete(self, socket: TcpStream, deadline: WriteDeadline) {
        let _ = self.sender.send(FreshSocket {
            socket: Deadlined::new(socket, deadline),
            _slot: self.slot,
        });
    }
}

impl PendingUpgrade {
    /// The request's pending upgrade, taken out of its extensions; `None`
    /// when the connection cannot be upgraded (no `Upgrade` header, or
    /// not served by chats3's listener).
    pub fn take(extensions: &mut Extensions) -> Option<PendingUpgrade> {
        if let Some(FreshUpgrade(receiver)) = extensions.remove::<FreshUpgrade>() {
            let receiver = receiver.lock().unwrap_or_else(|e| e.into_inner()).take()?;
            return Some(PendingUpgrade(Source::Fresh(receiver)));
        }
        extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .map(|on| PendingUpgrade(Source::Hyper(on)))
    }

    /// The connection once the 101 is written; an error when it went away
    /// before.
    pub async fn connection(self) -> io::Result<UpgradedConnection> {
        match self.0 {
            Source::Hyper(on) => on
                .await
                .map(|upgraded| UpgradedConnection(Io::Hyper(TokioIo::new(upgraded))))
                .map_err(io::Error::other),
            Source::Fresh(receiver) => receiver
                .await
                .map(|fresh| UpgradedConnection(Io::Fresh(fresh)))
                .map_err(|_| io::ErrorKind::ConnectionAborted.into()),
        }
    }
}

/// An upgraded connection, read and written in the new protocol; its
/// writes fail once stalled past `[server] stream_write_timeout`.
pub struct UpgradedConnection(Io);

enum Io {
    /// Hyper's socket is deadlined and holds the slot itself.
    Hyper(TokioIo<hyper::upgrade::Upgraded>),
    Fresh(FreshSocket),
}

impl AsyncRead for UpgradedConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.0 {
            Io::Hyper(io) => Pin::new(io).poll_read(cx, buf),
            Io::Fresh(fresh) => Pin::new(&mut fresh.socket).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpgradedConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.0 {
            Io::Hyper(io) => Pin::new(io).poll_write(cx, buf),
            Io::Fresh(fresh) => Pin::new(&mut fresh.socket).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.0 {
            Io::Hyper(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Io::Fresh(fresh) => Pin::new(&mut fresh.socket).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.0 {
            Io::Hyper(io) => io.is_write_vectored(),
            Io::Fresh(fresh) => fresh.socket.is_write_vectored(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.0 {
            Io::Hyper(io) => Pin::new(io).poll_flush(cx),
            Io::Fresh(fresh) => Pin::new(&mut fresh.socket).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.0 {
            Io::Hyper(io) => Pin::new(io).poll_shutdown(cx),
            Io::Fresh(fresh) => Pin::new(&mut fresh.socket).poll_shutdown(cx),
        }
    }
}
