//! Process-wide counters of the HTTP layer: requests, accepted messages and
//! event streams, read by `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// The counters; each is relaxed, since `/metrics` needs no ordering.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    messages: AtomicU64,
    streams_opened: AtomicU64,
    streams_open: AtomicU64,
}

/// One reading of every counter.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// Requests received.
    pub requests: u64,
    /// Messages accepted.
    pub messages: u64,
    /// Event streams opened.
    pub streams_opened: u64,
    /// Event streams open now.
    pub streams_open: u64,
}

impl Counters {
    /// Counts a request.
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an accepted message.
    pub fn message_accepted(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a stream opening.
    pub fn stream_opened(&self) {
        self.streams_opened.fetch_add(1, Ordering::Relaxed);
        self.streams_open.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a stream closing.
    pub fn stream_closed(&self) {
        self.streams_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Every counter now.
    pub fn read(&self) -> Reading {
        Reading {
            requests: self.requests.load(Ordering::Relaxed),
            messages: self.messages.load(Ordering::Relaxed),
            streams_opened: self.streams_opened.load(Ordering::Relaxed),
            streams_open: self.streams_open.load(Ordering::Relaxed),
        }
    }
}
