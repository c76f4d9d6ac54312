//! The event stream's body: a subscriber's [`feed`] written as SSE, what
//! arrived together coalesced into one write. [`interruptions`] is what a
//! feed waits on besides events, polled through [`poll_on_wake`] so an
//! event costs no lock.

pub mod feed;
mod interruptions;
mod poll_on_wake;

use super::counters::{Counters, Transport};
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use chats3_actors::Subscription;
use feed::{Feed, Item};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// Events coalesced into one socket write when they arrive together.
const WRITE_BATCH: usize = 64;

/// The `text/event-stream` answer for `subscription`, with a heartbeat
/// every `heartbeat_every`; `counters` count it open until its body drops.
pub fn response(
    subscription: Subscription,
    heartbeat_every: Duration,
    counters: Arc<Counters>,
) -> Response {
    let events = EventStream {
        retry_sent: false,
        feed: Feed::new(subscription, heartbeat_every, counters, Transport::Sse),
    };
    let body = futures::stream::unfold(events, |mut events| async move {
        events
            .next_chunk()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), events))
    });
    let mut response = Response::new(Body::from_stream(body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// One subscriber's SSE body.
struct EventStream {
    /// `retry: 3000` went out (it opens the stream).
    retry_sent: bool,
    feed: Feed,
}

impl EventStream {
    /// The next bytes to write, or `None` when the stream ends.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if !std::mem::replace(&mut self.retry_sent, true) {
            return Some(Bytes::from_static(b"retry: 3000\n\n"));
        }
        let first = match self.feed.next().await? {
            Item::Heartbeat => return Some(Bytes::from_static(b": heartbeat\n\n")),
            item => sse(item),
        };
        let Some(second) = self.feed.ready() else {
            return Some(first);
        };
        let mut out = BytesMut::from(&first[..]);
        out.extend_from_slice(&sse(second));
        for _ in 2..WRITE_BATCH {
            let Some(item) = self.feed.ready() else { break };
            out.extend_from_slice(&sse(item));
        }
        Some(out.freeze())
    }
}

/// An item's SSE block (a heartbeat is written on its own).
fn sse(item: Item) -> Bytes {
    match item {
        Item::Control(block) => block,
        Item::Event(frame) => frame.sse(),
        Item::Heartbeat => Bytes::from_static(b": heartbeat\n\n"),
    }
}
