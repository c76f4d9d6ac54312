//! One subscriber's events, one at a time, whatever carries them (the SSE
//! body, a WebSocket): the opening frames, then the replay of missed
//! events a chunk at a time, then live events filtered for the
//! subscriber, heartbeats in between, until the stream is to end.

use super::interruptions::{Interruption, Interruptions};
use super::poll_on_wake::PollOnWake;
use crate::http::counters::{Counters, Transport};
use bytes::Bytes;
use chats3_actors::{EventFrame, ReplayCursor, StreamRelease, Subscription, Viewer};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_util::sync::CancellationToken;

/// What a subscriber is sent next.
pub enum Item {
    /// A stream frame that is no conversation event (`connected`,
    /// `room-state`, `resync`), as its SSE block (`id:` and `data:` lines).
    Control(Bytes),
    /// A conversation event the subscriber may see.
    Event(Arc<EventFrame>),
    /// Nothing was sent for a heartbeat interval.
    Heartbeat,
}

/// A subscriber's events; it counts as an open stream (for presence, the
/// participant limit and `/metrics`) until dropped.
pub struct Feed {
    /// Frames to send before anything else: the opening, then a replay
    /// chunk's frames as they are fetched.
    pending: VecDeque<Item>,
    replay: Option<ReplayCursor>,
    live: broadcast::Receiver<Arc<EventFrame>>,
    viewer: Viewer,
    ended: CancellationToken,
    /// The end token and the heartbeat timer: made once, so no waiter is
    /// registered and dropped per event, and polled only when one of them
    /// woke, so an event takes none of the token's locks.
    interruptions: PollOnWake<Pin<Box<Interruptions>>>,
    _release: StreamRelease,
    gauge: StreamGauge,
}

/// Counts the stream as closed when the feed is dropped.
struct StreamGauge(Arc<Counters>, Transport);

impl Drop for StreamGauge {
    fn drop(&mut self) {
        self.0.stream_closed(self.1);
    }
}

impl Feed {
    /// The events of `subscription` over `transport`, a heartbeat every
    /// `heartbeat_every`; `counters` count it open until it drops.
    pub fn new(
        subscription: Subscription,
        heartbeat_every: Duration,
        counters: Arc<Counters>,
        transport: Transport,
    ) -> Feed {
        let ended = subscription.ended.clone();
        counters.stream_opened(transport);
        if subscription.resync_at_open {
            counters.resync_sent();
        }
        Feed {
            pending: subscription
                .opening
                .into_iter()
                .map(Item::Control)
                .collect(),
            replay: subscription.replay,
            live: subscription.live,
            viewer: subscription.viewer,
            ended: subscription.ended,
            interruptions: PollOnWake::new(Box::pin(Interruptions::new(ended, heartbeat_every))),
            _release: subscription.release,
            gauge: StreamGauge(counters, transport),
        }
    }

    /// The stream as the no-echo rule sees it.
    pub fn viewer(&self) -> &Viewer {
        &self.viewer
    }

    /// The next item, or `None` when the stream ends (leave, shutdown,
    /// conversation stopped, or fallen too far behind: the client then
    /// resumes from the last sequence it got and replays what it missed).
    /// Cancel-safe: a call dropped while it waits loses nothing.
    pub async fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.queued() {
                return Some(item);
            }
            let Some(replay) = &mut self.replay else {
                break;
            };
            if self.ended.is_cancelled() {
                return None;
            }
            // Boxed: the conversation call's state is held only while a
            // chunk is fetched, not by every idle stream's future.
            match Box::pin(replay.next_chunk()).await {
                None => self.replay = None,
                Some(Err(_)) => return None,
                Some(Ok(chunk)) => {
                    if chunk.resync.is_some() {
                        self.gauge.0.resync_sent();
                    }
                    self.pending.extend(chunk.resync.map(Item::Control));
                    let viewer = &self.viewer;
                    let visible = chunk.frames.into_iter().filter(|f| f.replayed_to(viewer));
                    self.pending.extend(visible.map(Item::Event));
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
                    Interruption::Heartbeat => return Some(Item::Heartbeat),
                },
                received = self.live.recv() => match received {
                    Ok(frame) if frame.visible_to(&self.viewer) => return Some(Item::Event(frame)),
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        self.gauge.0.fanout_dropped();
                        return None;
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }

    /// An item that is ready now, without waiting: what is queued, or a
    /// live event already received (a writer that coalesces what arrived
    /// together calls it after [`Feed::next`]). Falling behind here ends
    /// the stream at the next call of [`Feed::next`].
    pub fn ready(&mut self) -> Option<Item> {
        if let Some(item) = self.queued() {
            return Some(item);
        }
        if self.replay.is_some() {
            return None;
        }
        loop {
            match self.live.try_recv() {
                Ok(frame) if frame.visible_to(&self.viewer) => return Some(Item::Event(frame)),
                Ok(_) => {}
                Err(TryRecvError::Lagged(_)) => {
                    self.gauge.0.fanout_dropped();
                    self.ended.cancel();
                    return None;
                }
                Err(TryRecvError::Closed) => {
                    self.ended.cancel();
                    return None;
                }
                Err(TryRecvError::Empty) => return None,
            }
        }
    }

    /// The next queued item; once the queue is empty it is freed, so a
    /// stream keeps no queue between replay chunks or for its life.
    fn queued(&mut self) -> Option<Item> {
        let item = self.pending.pop_front()?;
        if self.pending.is_empty() {
            self.pending = VecDeque::new();
        }
        Some(item)
    }
}
