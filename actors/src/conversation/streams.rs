//! Event streams of a conversation: opening one (its `connected` and
//! `room-state` frames, the live receiver), resuming from an event id a
//! chunk at a time, closing it (the `peer-leave` grace), and the signaling
//! events relayed to them.

use super::posting::message_frame;
use super::protocol::{Internal, Reply, Request, StreamOpen};
use super::{ConversationMsg, ConversationState};
use crate::domain::Participant;
use crate::error::ChatError;
use crate::events::{EventFrame, Viewer, control_frame};
use crate::time::now_ms;
use bytes::Bytes;
use ractor::ActorRef;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// An open event stream: opening frames, replay, then live events.
pub struct Subscription {
    /// The stream as the no-echo rule sees it: events addressed to
    /// someone else, and the user's own sent from this stream, are skipped.
    pub viewer: Viewer,
    /// `connected`, `room-state` and, when needed, `resync`.
    pub opening: Vec<Bytes>,
    /// The opening holds a `resync` frame.
    pub resync_at_open: bool,
    /// Missed events to send before live ones, fetched a chunk at a time;
    /// `None` when nothing was missed.
    pub replay: Option<ReplayCursor>,
    /// Events published after the stream opened.
    pub live: broadcast::Receiver<Arc<EventFrame>>,
    /// Cancelled when the session leaves or the conversation stops.
    pub ended: CancellationToken,
    /// Uncounts the stream when dropped.
    pub release: StreamRelease,
    /// The sequence the opening frames carry.
    pub(crate) position: u64,
}

/// Where the `room-state` frame is among a stream's opening frames.
pub(super) const ROOM_STATE_AT: usize = 1;

/// The `room-state` frame listing `participants`.
pub(super) fn room_state(position: u64, participants: &[Participant]) -> Bytes {
    control_frame(
        position,
        "room-state",
        &serde_json::json!({ "participants": participants }),
    )
}

/// Events a replay fetches from the conversation at once: a resumed stream
/// holds at most this many missed events (not yet written) in memory.
pub const REPLAY_CHUNK: usize = 64;

/// Where a resumed stream's replay stands: the missed events after `after`
/// up to `until` (the last sequence when the stream opened; later events
/// come live) are fetched from the conversation a chunk at a time, so an
/// old cursor never makes the stream hold the whole backlog.
pub struct ReplayCursor {
    conversation: ActorRef<ConversationMsg>,
    after: u64,
    until: u64,
    timeout: Duration,
    /// A `resync` frame was already sent on this stream.
    resynced: bool,
}

/// What the conversation answers a replay request with.
pub(crate) struct ReplayPart {
    /// Events in sequence order.
    frames: Vec<Arc<EventFrame>>,
    /// Events before the first frame are no longer held.
    missing: bool,
    /// The last sequence this part covers.
    reached: u64,
}

/// One chunk of a replay, ready for the stream.
pub struct ReplayChunk {
    /// A `resync` frame to send first: events before these are no longer
    /// held (sent once per stream, counting the opening's).
    pub resync: Option<Bytes>,
    /// Events in sequence order (not yet filtered by user).
    pub frames: Vec<Arc<EventFrame>>,
}

impl ReplayCursor {
    /// The next chunk of missed events, or `None` once the replay is done.
    pub async fn next_chunk(&mut self) -> Option<Result<ReplayChunk, ChatError>> {
        if self.after >= self.until {
            return None;
        }
        let (after, until) = (self.after, self.until);
        let part = crate::ask::ask(&self.conversation, self.timeout, |reply| {
            Request::Replay {
                after,
                until,
                reply,
            }
            .into()
        })
        .await
        .and_then(|part| part);
        let part = match part {
            Ok(part) => part,
            Err(e) => {
                self.after = self.until;
                return Some(Err(e));
            }
        };
        self.after = part.reached.max(after + 1);
        let resync = (part.missing && !std::mem::replace(&mut self.resynced, true)).then(|| {
            control_frame(
                after,
                "resync",
                &serde_json::json!({ "lastEventId": after.to_string() }),
            )
        });
        Some(Ok(ReplayChunk {
            resync,
            frames: part.frames,
        }))
    }
}

/// Drop guard that tells the conversation a stream closed.
pub struct StreamRelease {
    conversation: ActorRef<ConversationMsg>,
    stream_id: u64,
}

impl Drop for StreamRelease {
    fn drop(&mut self) {
        let _ = self
            .conversation
            .cast(Internal::StreamClosed(self.stream_id).into());
    }
}

impl ConversationState {
    pub(super) fn signal(
        &mut self,
        from: &str,
        kind: &str,
        to: Option<&str>,
        data: &Value,
        now: i64,
    ) -> Result<String, ChatError> {
        self.meta()?;
        Ok(self.publish(kind, from, to, data, now))
    }

    /// Opens a stream and answers it; in a cluster its `room-state` also
    /// lists the users streaming on other instances (read from Redis in
    /// a task, while the stream already receives live events).
    pub(super) fn open_stream(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        open: StreamOpen,
        reply: Reply<Subscription>,
    ) {
        let user_id = open.user_id.clone();
        match self.subscribe(myself, open) {
            Ok(subscription) if self.shared().is_some() => {
                let here = self.members.participants(&user_id);
                self.list_everyone(subscription, here, reply);
            }
            result => drop(reply.send(result)),
        }
    }

    fn subscribe(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        open: StreamOpen,
    ) -> Result<Subscription, ChatError> {
        self.meta()?;
        let settings = &self.args.settings;
        if self.members.stream_count()
            >= settings.max_participants * settings.max_streams_per_session
        {
            return Err(ChatError::TooMany(
                "Too many open streams in this conversation".into(),
            ));
        }
        if self.members.streams_of_session(&open.session_id)
            >= self.args.settings.max_streams_per_session
        {
            return Err(ChatError::TooMany(
                "Too many open streams for this session".into(),
            ));
        }
        let (stream_id, ended) = self.members.open_stream(
            &open.user_id,
            &open.display_name,
            &open.session_id,
            &open.ends_with,
        );
        self.renew_roster(
            vec![(open.user_id.clone(), open.display_name.clone())],
            now_ms(),
        );
        let release = StreamRelease {
            conversation: myself.clone(),
            stream_id,
        };
        let live = self.fanout.subscribe();
        let resume = open
            .resume_from
            .as_deref()
            .map(|text| text.trim().parse::<u64>().ok());
        let (position, replay, resync) = match resume {
            None => (self.published_seq, None, false),
            Some(Some(from)) if from <= self.published_seq => {
                let complete = self.replay_complete(from);
                let cursor = (from < self.published_seq).then(|| ReplayCursor {
                    conversation: myself.clone(),
                    after: from,
                    until: self.published_seq,
                    timeout: self.args.settings.call_timeout,
                    resynced: !complete,
                });
                (from, cursor, !complete)
            }
            Some(_) => (self.published_seq, None, true),
        };
        let mut opening = vec![
            control_frame(position, "system", &"connected"),
            room_state(position, &self.members.participants(&open.user_id)),
        ];
        if resync {
            opening.push(control_frame(
                position,
                "resync",
                &serde_json::json!({ "lastEventId": open.resume_from }),
            ));
        }
        Ok(Subscription {
            viewer: Viewer {
                user_id: open.user_id,
                session_id: open.session_id,
                stream_id,
            },
            opening,
            resync_at_open: resync,
            replay,
            live,
            ended,
            release,
            position,
        })
    }

    /// Whether every event after `from` is still held: nothing was lost
    /// since `from` and the tail or the buffer reaches back to it.
    fn replay_complete(&self, from: u64) -> bool {
        let buffered_from = self.buffer.oldest_seq().unwrap_or(self.published_seq + 1);
        from >= self.floor_seq && (from + 1 >= buffered_from || self.tail.after(from).is_some())
    }

    /// Up to [`REPLAY_CHUNK`] events after `after` and at most `until`:
    /// messages from the tail for what the buffer no longer holds, then
    /// buffered events.
    pub(super) fn replay_chunk(&self, after: u64, until: u64) -> ReplayPart {
        let buffered_from = self.buffer.oldest_seq().unwrap_or(self.published_seq + 1);
        let mut frames = Vec::new();
        let mut missing = false;
        if after + 1 < buffered_from {
            match self.tail.after(after) {
                Some(messages) => frames.extend(
                    messages
                        .take_while(|m| m.seq < buffered_from && m.seq <= until)
                        .take(REPLAY_CHUNK)
                        .map(|m| Arc::new(message_frame(m))),
                ),
                None => missing = true,
            }
        }
        let room = REPLAY_CHUNK - frames.len();
        frames.extend(
            self.buffer
                .after(after)
                .take_while(|f| f.seq <= until)
                .take(room)
                .cloned(),
        );
        let reached = match frames.last() {
            Some(last) if frames.len() == REPLAY_CHUNK => last.seq,
            _ => until,
        };
        ReplayPart {
            frames,
            missing,
            reached,
        }
    }

    /// A stream closed: its user's last one starts the `peer-leave` grace.
    pub(super) fn stream_closed(&mut self, myself: &ActorRef<ConversationMsg>, stream_id: u64) {
        if let Some((user_id, generation)) = self.members.close_stream(stream_id) {
            myself.send_after(self.args.settings.leave_grace, move || {
                Internal::GraceExpired {
                    user_id,
                    generation,
                }
                .into()
            });
        }
    }

    /// The grace ran out: `peer-leave`, unless the user came back.
    pub(super) fn grace_expired(&mut self, user_id: &str, generation: u64, now: i64) {
        if !self.members.grace_expired(user_id, generation) {
            return;
        }
        if self.shared().is_some() {
            self.share_peer_leave(user_id);
        } else {
            self.publish("peer-leave", user_id, None, &serde_json::json!({}), now);
        }
    }
}
