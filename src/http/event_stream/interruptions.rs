//! What an event stream waits on besides events: its end (leave,
//! shutdown) and its next heartbeat, as one future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

pin_project_lite::pin_project! {
    /// What a stream waits on besides events: its end (leave, shutdown)
    /// and its next heartbeat.
    pub(super) struct Interruptions {
        #[pin]
        stop: WaitForCancellationFutureOwned,
        #[pin]
        heartbeat: Sleep,
        heartbeat_every: Duration,
    }
}

/// Which of a stream's [`Interruptions`] came.
pub(super) enum Interruption {
    /// The stream is to end.
    Stop,
    /// A heartbeat is due.
    Heartbeat,
}

/// Ready with `Stop` once the stream is to end, and with `Heartbeat` each
/// time a heartbeat is due (the timer is then set for the next one, so it
/// may be polled again).
impl Future for Interruptions {
    type Output = Interruption;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Interruption> {
        let mut this = self.project();
        if this.stop.poll(cx).is_ready() {
            return Poll::Ready(Interruption::Stop);
        }
        if this.heartbeat.as_mut().poll(cx).is_ready() {
            let next = Instant::now() + *this.heartbeat_every;
            this.heartbeat.as_mut().reset(next);
            // Registers for the next deadline.
            let _ = this.heartbeat.poll(cx);
            return Poll::Ready(Interruption::Heartbeat);
        }
        Poll::Pending
    }
}

impl Interruptions {
    /// Waits for `ended` and a heartbeat every `heartbeat_every`.
    pub(super) fn new(ended: CancellationToken, heartbeat_every: Duration) -> Self {
        Interruptions {
            stop: ended.cancelled_owned(),
            heartbeat: tokio::time::sleep(heartbeat_every),
            heartbeat_every,
        }
    }
}
