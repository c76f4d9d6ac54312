//! How long a connection may leave written bytes unaccepted: a client that
//! stops reading fills the socket's send buffer, and from then on nothing
//! polls its response body again, so without this bound its stream (and
//! its participant slot) would live until the peer went away. One
//! [`WriteDeadline`] serves both writers: chats3's stream writer calls it
//! directly, and [`Deadlined`] wraps the socket that hyper writes to.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// After shutdown began, a write stalled this long is abandoned, so a
/// client that does not read cannot hold the drain up; a client that
/// reads makes progress well within it.
const STALL_AT_SHUTDOWN: Duration = Duration::from_secs(1);

/// Fails a write that has made no progress for `timeout` (or for
/// [`STALL_AT_SHUTDOWN`] once `shutdown` is cancelled).
pub(super) struct WriteDeadline {
    timeout: Duration,
    shutdown: CancellationToken,
    /// Timers of the stall under way; none while writes go through, so an
    /// idle connection costs no timer.
    stall: Option<Box<Stall>>,
}

struct Stall {
    timer: Pin<Box<Sleep>>,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    shortened: bool,
}

impl WriteDeadline {
    /// A deadline of `timeout` per stall, shortened when `shutdown` is cancelled.
    pub(super) fn new(timeout: Duration, shutdown: CancellationToken) -> Self {
        WriteDeadline {
            timeout,
            shutdown,
            stall: None,
        }
    }

    /// A write went through: the next stall starts its own clock.
    pub(super) fn progressed(&mut self) {
        self.stall = None;
    }

    /// Called while a write cannot proceed: ready with an error once the
    /// stall has lasted too long, otherwise registers `cx` to be woken then.
    pub(super) fn poll_stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let timeout = self.timeout;
        let stall = self.stall.get_or_insert_with(|| {
            Box::new(Stall {
                timer: Box::pin(tokio::time::sleep(timeout)),
                shutdown: Box::pin(self.shutdown.clone().cancelled_owned()),
                shortened: false,
            })
        });
        if !stall.shortened && stall.shutdown.as_mut().poll(cx).is_ready() {
            stall.shortened = true;
            let sooner = Instant::now() + STALL_AT_SHUTDOWN;
            if sooner < stall.timer.deadline() {
                stall.timer.as_mut().reset(sooner);
            }
        }
        match stall.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing within the stream write timeout",
            )),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Passes `write`'s result on, timing the stall while it is pending.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        write: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match write {
            Poll::Pending => match self.poll_stalled(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
            done => {
                self.progressed();
                done
            }
        }
    }
}

/// An I/O object whose writes fail once stalled past a [`WriteDeadline`];
/// reads pass through untouched (an idle keep-alive connection is bounded
/// by hyper's own timers, not by this).
pub(super) struct Deadlined<T> {
    inner: T,
    deadline: WriteDeadline,
}

impl<T> Deadlined<T> {
    /// `inner` with its writes bounded by `deadline`.
    pub(super) fn new(inner: T, deadline: WriteDeadline) -> Self {
        Deadlined { inner, deadline }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Deadlined<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Deadlined<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let write = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.deadline.guard(cx, write)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let write = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.deadline.guard(cx, write)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let flush = Pin::new(&mut this.inner).poll_flush(cx);
        this.deadline.guard(cx, flush)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let shutdown = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.deadline.guard(cx, shutdown)
    }
}
