//! Events: serialized once into SSE bytes (and, on first use, into a
//! WebSocket frame) shared by every subscriber, the replay buffer behind
//! `Last-Event-ID`, and the fan-out seam.

use bytes::Bytes;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use tokio::sync::broadcast;

/// One event, already rendered as an SSE block (`id:` line and `data:` line).
#[derive(Debug)]
pub struct EventFrame {
    /// The per-conversation sequence: the SSE `id:`.
    pub seq: u64,
    /// Sender's user id (`"system"` for system messages).
    pub from_user: Arc<str>,
    /// Target of a targeted event; `None` for broadcasts.
    pub to_user: Option<Arc<str>>,
    /// When the event was created, epoch milliseconds.
    pub at_ms: i64,
    /// Which of the sender's own streams it skips (the no-echo rule).
    pub origin: Origin,
    /// `id: N\ndata: {json}\n\n`
    sse: Bytes,
    json_start: usize,
    /// `{"seq":N,"event":{json}}`, made by the first WebSocket subscriber.
    ws: OnceLock<Bytes>,
}

/// A conversation event as streams carry it (the JSON of an SSE `data:`
/// line, the `event` of a WebSocket frame).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = StreamEvent, bound = "")]
pub struct EventJson<'a, T: Serialize> {
    /// The `eventId` that `POST /api/v1/signaling` answered (a message's id
    /// for `new-message`).
    id: &'a str,
    /// The event's type (`new-message`, `peer-leave`, `conversation-closed`, a
    /// signaling type...).
    #[serde(rename = "type")]
    kind: &'a str,
    /// Who caused it (`"system"` for system messages).
    from_user_id: &'a str,
    /// The one user it is addressed to; `null` for broadcasts.
    to_user_id: Option<&'a str>,
    /// What was sent, relayed unchanged (the stored message for `new-message`).
    #[schema(value_type = Value)]
    data: &'a T,
    /// When it happened, in milliseconds since the epoch.
    timestamp: i64,
}

impl EventFrame {
    /// Renders the event once.
    pub fn new<T: Serialize>(
        seq: u64,
        event_id: &str,
        kind: &str,
        from_user: &str,
        to_user: Option<&str>,
        data: &T,
        at_ms: i64,
    ) -> Self {
        let json = serde_json::to_vec(&EventJson {
            id: event_id,
            kind,
            from_user_id: from_user,
            to_user_id: to_user,
            data,
            timestamp: at_ms,
        })
        .unwrap_or_else(|_| b"{}".to_vec());
        let head = format!("id: {seq}\ndata: ");
        let mut sse = Vec::with_capacity(head.len() + json.len() + 2);
        sse.extend_from_slice(head.as_bytes());
        sse.extend_from_slice(&json);
        sse.extend_from_slice(b"\n\n");
        EventFrame {
            seq,
            from_user: from_user.into(),
            to_user: to_user.map(Into::into),
            at_ms,
            origin: Origin::Sender,
            json_start: head.len(),
            sse: Bytes::from(sse),
            ws: OnceLock::new(),
        }
    }

    /// The SSE block, cheap to clone.
    pub fn sse(&self) -> Bytes {
        self.sse.clone()
    }

    /// The event's JSON text alone.
    pub fn json(&self) -> Bytes {
        self.sse.slice(self.json_start..self.sse.len() - 2)
    }

    /// The event as a WebSocket text frame's payload,
    /// `{"seq":N,"event":{json}}`: rendered once, by the first WebSocket
    /// subscriber that sends it, and shared by the others.
    pub fn ws(&self) -> Bytes {
        self.ws
            .get_or_init(|| {
                let json = &self.sse[self.json_start..self.sse.len() - 2];
                let head = format!("{{\"seq\":{},\"event\":", self.seq);
                let mut frame = Vec::with_capacity(head.len() + json.len() + 1);
                frame.extend_from_slice(head.as_bytes());
                frame.extend_from_slice(json);
                frame.push(b'}');
                Bytes::from(frame)
            })
            .clone()
    }

    /// The event, sent from `origin` (the sender's streams it skips).
    pub fn from_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// Whether `viewer` sees the event live: broadcasts reach everyone
    /// but the stream(s) their [`Origin`] names; targeted events reach
    /// their target and their sender.
    pub fn visible_to(&self, viewer: &Viewer) -> bool {
        self.seen_by(viewer, false)
    }

    /// Whether `viewer` sees the event in a replay: as live, except that an
    /// event sent up a stream skips every stream of that stream's session
    /// (the resumed stream may be the sender under a new id).
    pub fn replayed_to(&self, viewer: &Viewer) -> bool {
        self.seen_by(viewer, true)
    }

    fn seen_by(&self, viewer: &Viewer, replaying: bool) -> bool {
        if let Some(to) = &self.to_user {
            return **to == *viewer.user_id || *self.from_user == *viewer.user_id;
        }
        if *self.from_user != *viewer.user_id {
            return true;
        }
        match &self.origin {
            Origin::Sender => false,
            Origin::Session(session) => **session != *viewer.session_id,
            Origin::Stream(session, _) if replaying => **session != *viewer.session_id,
            Origin::Stream(session, stream) => {
                **session != *viewer.session_id || *stream != viewer.stream_id
            }
            Origin::Nowhere => true,
        }
    }
}

/// Where an event was sent from, for the no-echo rule: which of its
/// sender's own streams do not get it back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Origin {
    /// Unknown (the service's own events, events rebuilt from history):
    /// none of the sender's streams.
    #[default]
    Sender,
    /// An HTTP request of this session: none of the session's streams;
    /// the user's other sessions (devices) get it.
    Session(Arc<str>),
    /// A command up this stream of this session (a WebSocket): that
    /// stream alone; the user's other streams (tabs) get it.
    Stream(Arc<str>, u64),
    /// Every stream, the sender's included: the event tells the user's
    /// own streams about their state (a read mark sent over HTTP).
    Nowhere,
}

/// One open stream, as the no-echo rule sees it.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The stream's user.
    pub user_id: String,
    /// The session it was opened with.
    pub session_id: String,
    /// Its id within the conversation.
    pub stream_id: u64,
}

/// A stream frame that is not a conversation event: `connected`,
/// `room-state`, `resync`, rendered with the given SSE id.
pub(crate) fn control_frame<T: Serialize>(seq: u64, kind: &str, data: &T) -> Bytes {
    #[derive(Serialize)]
    struct Control<'a, T: Serialize> {
        #[serde(rename = "type")]
        kind: &'a str,
        data: &'a T,
    }
    let json = serde_json::to_string(&Control { kind, data }).unwrap_or_default();
    Bytes::from(format!("id: {seq}\ndata: {json}\n\n"))
}

/// Recent events for replay, bounded by count and age.
#[derive(Debug)]
pub(crate) struct ReplayBuffer {
    events: VecDeque<Arc<EventFrame>>,
    max_len: usize,
    ttl_ms: i64,
    bytes: usize,
}

/// Bytes of rendered events a replay buffer keeps at most.
pub(crate) const REPLAY_MAX_BYTES: usize = 8 * 1024 * 1024;

impl ReplayBuffer {
    /// An empty buffer keeping at most `max_len` events for `ttl`.
    pub(crate) fn new(max_len: usize, ttl: std::time::Duration) -> Self {
        ReplayBuffer {
            events: VecDeque::new(),
            max_len: max_len.max(1),
            ttl_ms: ttl.as_millis() as i64,
            bytes: 0,
        }
    }

    /// Adds an event, dropping the oldest past the length or byte bound.
    pub(crate) fn push(&mut self, frame: Arc<EventFrame>) {
        self.bytes += frame.sse.len();
        self.events.push_back(frame);
        while self.events.len() > self.max_len
            || (self.bytes > REPLAY_MAX_BYTES && self.events.len() > 1)
        {
            self.pop();
        }
    }

    fn pop(&mut self) {
        if let Some(old) = self.events.pop_front() {
            self.bytes -= old.sse.len();
        }
    }

    /// Drops events older than the TTL.
    pub(crate) fn expire(&mut self, now_ms: i64) {
        while self
            .events
            .front()
            .is_some_and(|e| now_ms - e.at_ms > self.ttl_ms)
        {
            self.pop();
        }
    }

    /// Bytes of the frames held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Sequence of the oldest buffered event.
    pub(crate) fn oldest_seq(&self) -> Option<u64> {
        self.events.front().map(|e| e.seq)
    }

    /// Buffered events with `seq > after`, in order.
    pub(crate) fn after(&self, after: u64) -> impl Iterator<Item = &Arc<EventFrame>> {
        let start = self.events.partition_point(|e| e.seq <= after);
        self.events.range(start..)
    }
}

/// The fan-out seam: in-process broadcast today, a cross-instance
/// backplane later.
pub(crate) trait Fanout: Send + Sync + 'static {
    /// Hands an event to every current subscriber.
    fn publish(&self, frame: Arc<EventFrame>);
    /// A receiver of every event published from now on.
    fn subscribe(&self) -> broadcast::Receiver<Arc<EventFrame>>;
}

/// In-process fan-out over a bounded broadcast channel: a subscriber that
/// falls `capacity` events behind sees `Lagged` and must resync. The
/// channel allocates all its slots at once (about 56 KiB for 1,024), so it
/// is made by the first subscriber: a loaded room nobody streams costs
/// nothing here.
pub(crate) struct LocalFanout {
    capacity: usize,
    sender: std::sync::OnceLock<broadcast::Sender<Arc<EventFrame>>>,
}

impl LocalFanout {
    /// A fan-out whose subscribers may fall `capacity` events behind.
    pub(crate) fn new(capacity: usize) -> Self {
        LocalFanout {
            capacity: capacity.max(1),
            sender: std::sync::OnceLock::new(),
        }
    }
}

impl Fanout for LocalFanout {
    fn publish(&self, frame: Arc<EventFrame>) {
        if let Some(sender) = self.sender.get() {
            let _ = sender.send(frame);
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<EventFrame>> {
        self.sender
            .get_or_init(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64, from: &str, to: Option<&str>, at: i64) -> Arc<EventFrame> {
        Arc::new(EventFrame::new(
            seq,
            "e",
            "offer",
            from,
            to,
            &serde_json::json!({"a":1}),
            at,
        ))
    }

    #[test]
    fn frames_render_sse_and_json_once() {
        let f = frame(7, "u1", None, 5);
        assert_eq!(
            f.sse(),
            Bytes::from_static(b"id: 7\ndata: {\"id\":\"e\",\"type\":\"offer\",\"fromUserId\":\"u1\",\"toUserId\":null,\"data\":{\"a\":1},\"timestamp\":5}\n\n")
        );
        assert!(f.json().starts_with(b"{\"id\""));
        assert!(f.json().ends_with(b"}"));
        let ws: serde_json::Value = serde_json::from_slice(&f.ws()).unwrap();
        let event: serde_json::Value = serde_json::from_slice(&f.json()).unwrap();
        assert_eq!(ws, serde_json::json!({ "seq": 7, "event": event }));
        assert_eq!(f.ws().as_ptr(), f.ws().as_ptr(), "rendered once");
    }

    fn viewer(user: &str, session: &str, stream: u64) -> Viewer {
        Viewer {
            user_id: user.into(),
            session_id: session.into(),
            stream_id: stream,
        }
    }

    #[test]
    fn visibility_follows_the_contract() {
        let (a, b, c) = (
            viewer("a", "sa", 1),
            viewer("b", "sb", 2),
            viewer("c", "sc", 3),
        );
        let broadcast = frame(1, "a", None, 0);
        assert!(!broadcast.visible_to(&a));
        assert!(broadcast.visible_to(&b));
        let targeted = frame(2, "a", Some("b"), 0);
        assert!(targeted.visible_to(&a));
        assert!(targeted.visible_to(&b));
        assert!(!targeted.visible_to(&c));
    }

    #[test]
    fn only_the_sending_stream_or_session_gets_no_echo() {
        let same_stream = viewer("a", "s1", 1);
        let other_tab = viewer("a", "s1", 2);
        let other_device = viewer("a", "s2", 3);
        let by_stream = Arc::new(
            EventFrame::new(1, "e", "new-message", "a", None, &1, 0)
                .from_origin(Origin::Stream("s1".into(), 1)),
        );
        assert!(!by_stream.visible_to(&same_stream));
        assert!(by_stream.visible_to(&other_tab));
        assert!(by_stream.visible_to(&other_device));
        assert!(
            !by_stream.replayed_to(&other_tab),
            "a resumed stream may be the sender"
        );
        assert!(by_stream.replayed_to(&other_device));
        let by_request = EventFrame::new(2, "e", "new-message", "a", None, &1, 0)
            .from_origin(Origin::Session("s1".into()));
        assert!(!by_request.visible_to(&other_tab));
        assert!(by_request.visible_to(&other_device));
        let to_all =
            EventFrame::new(3, "e", "message-read", "a", None, &1, 0).from_origin(Origin::Nowhere);
        assert!(to_all.visible_to(&same_stream));
    }

    #[test]
    fn replay_buffer_is_bounded_by_length_and_age() {
        let mut buffer = ReplayBuffer::new(2, std::time::Duration::from_millis(100));
        for seq in 1..=3 {
            buffer.push(frame(seq, "a", None, seq as i64 * 10));
        }
        assert_eq!(buffer.oldest_seq(), Some(2));
        assert_eq!(buffer.after(2).map(|e| e.seq).collect::<Vec<_>>(), vec![3]);
        buffer.expire(125);
        assert_eq!(buffer.oldest_seq(), Some(3));
        buffer.expire(1000);
        assert_eq!(buffer.oldest_seq(), None);
    }

    #[test]
    fn replay_buffer_is_bounded_by_bytes() {
        let mut buffer = ReplayBuffer::new(1000, std::time::Duration::from_secs(60));
        let big = serde_json::json!("x".repeat(REPLAY_MAX_BYTES / 4));
        for seq in 1..=10 {
            buffer.push(Arc::new(EventFrame::new(
                seq, "e", "offer", "a", None, &big, 0,
            )));
        }
        assert!(buffer.bytes <= REPLAY_MAX_BYTES);
        assert_eq!(buffer.after(0).count(), 3);
        assert_eq!(buffer.oldest_seq(), Some(8));
    }
}
