//! A future that is polled again only after it has signalled a wake-up.
//!
//! A stream's task is woken by every event it delivers, and each wake-up
//! would also poll the futures it waits on besides (its end token, whose
//! poll takes two mutexes, and its heartbeat timer). Wrapped in
//! [`PollOnWake`], such a future is polled with a waker of its own that
//! marks it woken before waking the task; while it has not woken, a poll
//! costs one atomic swap and no lock.

use futures::task::AtomicWaker;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// `inner`, polled only on its first poll and after it woke.
pub(super) struct PollOnWake<F> {
    inner: F,
    signal: Arc<Signal>,
    /// The waker `inner` is polled with (a handle on `signal`).
    waker: Waker,
}

/// Whether the inner future has woken since its last poll, and the task
/// to pass the wake-up on to.
struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F> PollOnWake<F> {
    /// Wraps `inner`; the first poll polls it.
    pub(super) fn new(inner: F) -> Self {
        let signal = Arc::new(Signal {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(signal.clone());
        PollOnWake {
            inner,
            signal,
            waker,
        }
    }
}

impl<F: Future + Unpin> Future for PollOnWake<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        // Registered before the flag is read: a wake-up in between is not
        // lost, it wakes the task again.
        this.signal.task.register(cx.waker());
        if !this.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its polls; ready once `ready` is set, waking through the
    /// waker of its last poll when `wake` is called.
    #[derive(Default)]
    struct Probe {
        polls: usize,
        ready: bool,
        waker: Option<Waker>,
    }

    impl Future for Probe {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls += 1;
            if self.ready {
                return Poll::Ready(());
            }
            self.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_inner_future_is_polled_first_and_then_only_after_it_woke() {
        let task = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        let mut gated = PollOnWake::new(Probe::default());

        assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        assert_eq!(gated.inner.polls, 1, "not woken: not polled again");

        gated.inner.ready = true;
        gated.inner.waker.take().expect("registered").wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the task is woken");
        assert!(Pin::new(&mut gated).poll(&mut cx).is_ready());
        assert_eq!(gated.inner.polls, 2);
    }
}
