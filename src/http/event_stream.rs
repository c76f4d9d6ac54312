//! The event stream's body: the opening frames, then the replay of missed
//! events a chunk at a time, then live events filtered for the subscriber,
//! heartbeats in between, until the stream ends. [`interruptions`] is what
//! it waits on besides events, polled through [`poll_on_wake`] so an event
//! costs no lock.

mod interruptions;
mod poll_on_wake;

use super::counters::Counters;
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use chats3_actors::EventFrame;
use chats3_actors::{ReplayCursor, StreamRelease, Subscription};
use interruptions::{Interruption, Interruptions};
use poll_on_wake::PollOnWake;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_util::sync::CancellationToken;

/// Events coalesced into one socket write when they arrive together.
const WRITE_BATCH: usize = 64;

/// The `text/event-stream` answer for `subscription`, with a heartbeat
/// every `heartbeat_every`; `counters` count it open until its body drops.
pub fn response(
    subscription: Subscription,
    heartbeat_every: Duration,
    counters: Arc<Counters>,
) -> Response {
    let mut pending: VecDeque<Bytes> = VecDeque::new();
    pending.push_back(Bytes::from_static(b"retry: 3000\n\n"));
    pending.extend(subscription.opening);
    let ended = subscription.ended.clone();
    let events = EventStream {
        pending,
        replay: subscription.replay,
        live: subscription.live,
        user_id: subscription.user_id,
        ended: subscription.ended,
        interruptions: PollOnWake::new(Box::pin(Interruptions::new(ended, heartbeat_every))),
        _release: subscription.release,
    };
    counters.stream_opened();
    let body = futures::stream::unfold(
        (events, StreamGauge(counters)),
        |(mut events, gauge)| async move {
            events
                .next_chunk()
                .await
                .map(|chunk| (Ok::<_, Infallible>(chunk), (events, gauge)))
        },
    );
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

/// Counts the stream as closed when the body is dropped.
struct StreamGauge(Arc<Counters>);

impl Drop for StreamGauge {
    fn drop(&mut self) {
        self.0.stream_closed();
    }
}

/// One subscriber's stream: queued frames first, then the replay of missed
/// events a chunk at a time, then live events filtered for this user,
/// heartbeats in between.
struct EventStream {
    pending: VecDeque<Bytes>,
    replay: Option<ReplayCursor>,
    live: broadcast::Receiver<Arc<EventFrame>>,
    user_id: String,
    ended: CancellationToken,
    /// The end token and the heartbeat timer: made once, so no waiter is
    /// registered and dropped per event, and polled only when one of them
    /// woke, so an event takes none of the token's locks.
    interruptions: PollOnWake<Pin<Box<Interruptions>>>,
    _release: StreamRelease,
}

impl EventStream {
    /// The next bytes to write, or `None` when the stream ends (leave,
    /// shutdown, conversation stopped, or fallen too far behind: the client
    /// then reconnects with `Last-Event-ID` and replays what it missed).
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(frame) = self.pending.pop_front() {
            if self.pending.is_empty() {
                // The opening frames are out: keep no queue for the stream's life.
                self.pending = VecDeque::new();
            }
            return Some(frame);
        }
        while let Some(replay) = &mut self.replay {
            if self.ended.is_cancelled() {
                return None;
            }
            match replay.next_chunk().await {
                None => self.replay = None,
                Some(Err(_)) => return None,
                Some(Ok(chunk)) => {
                    let mut out = BytesMut::new();
                    if let Some(resync) = chunk.resync {
                        out.extend_from_slice(&resync);
                    }
                    for frame in chunk.frames.iter().filter(|f| f.visible_to(&self.user_id)) {
                        out.extend_from_slice(&frame.sse());
                    }
                    if !out.is_empty() {
                        return Some(out.freeze());
                    }
                }
            }
        }
        loop {
            // Stop first: after a leave the stream ends at once, without
            // the events broadcast after it (its own "left" message).
            tokio::select! {
                biased;
                interruption = &mut self.interruptions => match interruption {
                    Interruption::Stop => return None,
                    Interruption::Heartbeat => {
                        return Some(Bytes::from_static(b": heartbeat\n\n"));
                    }
                },
                received = self.live.recv() => match received {
                    Ok(frame) => {
                        if let Some(chunk) = self.batch(frame) {
                            return Some(chunk);
                        }
                    }
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return None,
                },
            }
        }
    }

    /// The frame plus whatever else is already waiting, in one write.
    fn batch(&mut self, first: Arc<EventFrame>) -> Option<Bytes> {
        let mut single = first.visible_to(&self.user_id).then(|| first.sse());
        let mut buffer: Option<BytesMut> = None;
        for _ in 0..WRITE_BATCH {
            match self.live.try_recv() {
                Ok(frame) => {
                    if frame.visible_to(&self.user_id) {
                        let buf = buffer.get_or_insert_with(|| {
                            let mut b = BytesMut::new();
                            if let Some(s) = single.take() {
                                b.extend_from_slice(&s);
                            }
                            b
                        });
                        buf.extend_from_slice(&frame.sse());
                    }
                }
                Err(TryRecvError::Lagged(_)) | Err(TryRecvError::Closed) => {
                    self.ended.cancel();
                    break;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        buffer.map(BytesMut::freeze).or(single)
    }
}
