//! The queue between the log's handles and its writer thread: appends and
//! releases in call order, and a wake-up only when the writer waits for
//! one (its first command, or the rest of a group it gathers), so a burst
//! of appends costs the writer one wake-up rather than one each.

use super::writer::Command;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Commands queued for the writer.
#[derive(Default)]
pub(crate) struct Inbox {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    queued: Vec<Command>,
    /// Commands the waiting writer still wants before it wakes (0: it is
    /// not waiting, nothing wakes it).
    wanted: usize,
    /// Every handle is gone: the writer ends once the queue is empty.
    closed: bool,
}

impl Inbox {
    /// Queues a command; gives it back once the log is closed.
    pub(crate) fn push(&self, command: Command) -> Result<(), Command> {
        let mut state = self.lock();
        if state.closed {
            return Err(command);
        }
        state.queued.push(command);
        if state.wanted != 0 && state.queued.len() >= state.wanted {
            state.wanted = 0;
            drop(state);
            self.wake.notify_one();
        }
        Ok(())
    }

    /// No more commands come; the writer finishes what is queued.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    /// Moves what is queued into `into`, waiting for at least one command;
    /// `false` once the inbox is closed and empty.
    pub(crate) fn first(&self, into: &mut Vec<Command>) -> bool {
        let mut state = self.lock();
        loop {
            if !state.queued.is_empty() {
                into.append(&mut state.queued);
                return true;
            }
            if state.closed {
                return false;
            }
            state.wanted = 1;
            state = self
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Moves what is queued into `into` until it holds `count` commands,
    /// the inbox closes or `until` passes.
    pub(crate) fn gather(&self, into: &mut Vec<Command>, count: usize, until: Instant) {
        let mut state = self.lock();
        loop {
            into.append(&mut state.queued);
            let now = Instant::now();
            if into.len() >= count || state.closed || now >= until {
                state.wanted = 0;
                return;
            }
            state.wanted = count - into.len();
            state = self
                .wake
                .wait_timeout(state, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Closes the inbox when the last handle of the log is dropped.
pub(crate) struct Closer(pub(crate) std::sync::Arc<Inbox>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.close();
    }
}
