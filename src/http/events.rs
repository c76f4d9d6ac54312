//! The event stream (`GET /api/v1/signaling`, Server-Sent Events) and the
//! signaling relay (`POST /api/v1/signaling`).

use super::AppState;
use super::error::{ApiResult, AppError, ok};
use super::extract::{CurrentSession, JsonBody};
use super::poll_on_wake::PollOnWake;
use super::rules::SIGNAL_TYPES;
use super::validate::{Fields, Text};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use chats3_actors::conversation::{ReplayCursor, StreamOpen, StreamRelease};
use chats3_actors::events::EventFrame;
use serde_json::json;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Largest `data` of a signaling event (an SDP offer is a few KiB), which
/// bounds the replay buffer and every subscriber queue.
pub const MAX_SIGNAL_DATA: usize = 64 * 1024;

/// Events coalesced into one socket write when they arrive together.
const WRITE_BATCH: usize = 64;

/// `POST /api/v1/signaling`
pub async fn signal(
    State(state): State<AppState>,
    session: CurrentSession,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let mut fields = Fields::of(&body)?;
    let kind = fields.one_of("type", SIGNAL_TYPES, None);
    let to = fields
        .optional_text("toUserId", Text::len(0, 200))
        .filter(|t| !t.is_empty());
    let data = fields.any("data");
    if serde_json::to_vec(&data).map_or(0, |d| d.len()) > MAX_SIGNAL_DATA {
        fields.fail(
            "data",
            "too_big",
            format!("Must be at most {MAX_SIGNAL_DATA} bytes of JSON"),
        );
    }
    fields.finish()?;
    let kind = kind.ok_or_else(|| AppError::internal("validated type missing"))?;
    let event_id = session
        .conversation(&state)
        .signal(&session.0.user_id, kind, to.as_deref(), &data)
        .await?;
    Ok(ok("Signaling event added", json!({ "eventId": event_id })))
}

/// `GET /api/v1/signaling[?cursor=]` with optional `Last-Event-ID`.
pub async fn stream(
    State(state): State<AppState>,
    session: CurrentSession,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let cursor = query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "cursor")
            .map(|(_, v)| v.into_owned())
    });
    let resume_from = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(cursor)
        .filter(|v| !v.is_empty() && v.len() <= 64);
    let conversation = session.conversation(&state);
    let CurrentSession(session) = session;
    let subscription = conversation
        .subscribe(StreamOpen {
            user_id: session.user_id.clone(),
            display_name: session.display_name.clone(),
            session_id: session.session_id.clone(),
            resume_from,
            ends_with: state.shutdown.clone(),
        })
        .await?;
    let mut pending: VecDeque<Bytes> = VecDeque::new();
    pending.push_back(Bytes::from_static(b"retry: 3000\n\n"));
    pending.extend(subscription.opening);
    let heartbeat_every = state.config.server.heartbeat_interval;
    let ended = subscription.ended.clone();
    let events = EventStream {
        pending,
        replay: subscription.replay,
        live: subscription.live,
        user_id: subscription.user_id,
        ended: subscription.ended,
        interruptions: PollOnWake::new(Box::pin(Interruptions {
            stop: ended.cancelled_owned(),
            heartbeat: tokio::time::sleep(heartbeat_every),
            heartbeat_every,
        })),
        _release: subscription.release,
    };
    state.metrics.stream_opened();
    let metrics = state.0.clone();
    let body = futures::stream::unfold(
        (events, StreamGauge(metrics)),
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
    Ok(response)
}

/// Counts the stream as closed when the body is dropped.
struct StreamGauge(Arc<super::AppInner>);

impl Drop for StreamGauge {
    fn drop(&mut self) {
        self.0.metrics.stream_closed();
    }
}

pin_project_lite::pin_project! {
    /// What a stream waits on besides events: its end (leave, shutdown)
    /// and its next heartbeat.
    struct Interruptions {
        #[pin]
        stop: WaitForCancellationFutureOwned,
        #[pin]
        heartbeat: Sleep,
        heartbeat_every: Duration,
    }
}

/// Which of a stream's [`Interruptions`] came.
enum Interruption {
    Stop,
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
