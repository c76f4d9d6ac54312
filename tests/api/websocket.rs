//! `GET /api/v1/ws` with a real WebSocket client (tokio-tungstenite) and
//! raw sockets: refused before the upgrade without a session, the same
//! events as the SSE stream with their sequence, resume with `?cursor=`,
//! commands answered as their HTTP routes answer, frame bounds, pings,
//! and a socket counted as an open stream.

use crate::helpers::*;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The headers of an upgrade request, for clients that are no WebSocket
/// client (to see what the server answers before any upgrade).
const UPGRADE_HEADERS: [(&str, &str); 4] = [
    ("connection", "Upgrade"),
    ("upgrade", "websocket"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

fn ws_url(app: &TestApp, query: &str) -> String {
    format!(
        "ws://{}/api/v1/ws{query}",
        app.address.trim_start_matches("http://")
    )
}

/// Opens the WebSocket of `session`, resuming after `cursor` when given.
pub(crate) async fn open(app: &TestApp, session: &str, cursor: Option<u64>) -> Ws {
    let query = match cursor {
        Some(cursor) => format!("?cursor={cursor}"),
        None => String::new(),
    };
    let mut request = ws_url(app, &query).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-session-id", session.parse().unwrap());
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (ws, response) = tokio_tungstenite::connect_async_with_config(request, Some(config), false)
        .await
        .expect("the upgrade");
    assert_eq!(response.status(), 101);
    ws
}

/// The next frame's JSON (pings skipped), failing after 5 s.
pub(crate) async fn next(ws: &mut Ws) -> Value {
    next_within(ws, Duration::from_secs(5))
        .await
        .expect("a frame within 5 s")
}

pub(crate) async fn next_within(ws: &mut Ws, limit: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        match message.expect("a frame") {
            Message::Text(text) => return Some(serde_json::from_str(&text).expect("JSON")),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The next event frame of a type, skipping others.
pub(crate) async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let frame = next(ws).await;
        if frame["event"]["type"] == kind {
            return frame;
        }
    }
}

/// Reads the opening frames; returns them (connected, room-state).
pub(crate) async fn opening(ws: &mut Ws) -> (Value, Value) {
    let connected = next(ws).await;
    assert_eq!(
        connected["event"],
        json!({"type": "system", "data": "connected"})
    );
    let state = next(ws).await;
    assert_eq!(state["event"]["type"], "room-state");
    (connected, state)
}

/// Sends a command and returns its ack (event frames before it skipped).
async fn command(ws: &mut Ws, frame: Value) -> Value {
    ws.send(Message::text(frame.to_string())).await.unwrap();
    ack(ws).await
}

async fn ack(ws: &mut Ws) -> Value {
    loop {
        let frame = next(ws).await;
        if frame.get("ack").is_some() {
            return frame;
        }
    }
}

/// An envelope without its `meta`, which differs per request.
fn without_meta(mut envelope: Value) -> Value {
    let meta = envelope
        .as_object_mut()
        .and_then(|o| o.remove("meta"))
        .expect("meta");
    assert!(meta["requestId"].is_string(), "{meta}");
    assert!(meta["timestamp"].is_string(), "{meta}");
    envelope
}

/// The HTTP answer of `path` for `body`: status and envelope without meta.
async fn http_answer(app: &TestApp, session: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = app.post_as(session, path, body).await;
    let status = response.status().as_u16();
    (status, without_meta(envelope(response).await))
}

/// The WebSocket answer of `op` for `body`, checked to echo its ref.
pub(crate) async fn ws_answer(ws: &mut Ws, op: &str, body: &Value) -> (u16, Value) {
    let reference = uuid::Uuid::new_v4().to_string();
    let ack = command(ws, json!({"op": op, "ref": reference, "body": body})).await;
    assert_eq!(ack["ack"], reference.as_str());
    let status = ack["status"].as_u64().unwrap() as u16;
    (status, without_meta(ack["response"].clone()))
}

#[tokio::test]
async fn no_or_a_bad_session_is_refused_with_401_before_any_upgrade() {
    let app = spawn_app().await;
    for (session, message) in [
        (None, "No session found"),
        (Some("nope"), "Invalid session"),
    ] {
        let mut request = app.client.get(app.url("/api/v1/ws"));
        for (name, value) in UPGRADE_HEADERS {
            request = request.header(name, value);
        }
        if let Some(session) = session {
            request = request.header("x-session-id", session);
        }
        let (status, text, _) = failure(request.send().await.unwrap()).await;
        assert_eq!((status, text.as_str()), (401, message));
    }
    let refused = tokio_tungstenite::connect_async(ws_url(&app, "?sessionId=nope")).await;
    match refused {
        Err(Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected a 401 answer, got {other:?}"),
    }
}

#[tokio::test]
async fn a_request_that_asks_for_no_upgrade_answers_426_in_the_envelope() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let plain = app.get_as(&joined[0].session_id, "/api/v1/ws").await;
    assert_eq!(plain.headers()["upgrade"], "websocket");
    let (status, message, _) = failure(plain).await;
    assert_eq!(
        (status, message.as_str()),
        (426, "WebSocket upgrade required")
    );
    let mut old = app
        .client
        .get(app.url("/api/v1/ws"))
        .header("x-session-id", &joined[0].session_id);
    for (name, value) in UPGRADE_HEADERS {
        let value = if name == "sec-websocket-version" {
            "8"
        } else {
            value
        };
        old = old.header(name, value);
    }
    let (status, message, _) = failure(old.send().await.unwrap()).await;
    assert_eq!(
        (status, message.as_str()),
        (426, "Unsupported WebSocket version")
    );
}

#[tokio::test]
async fn a_foreign_origin_is_refused_before_the_upgrade() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let mut request = app
        .client
        .get(app.url("/api/v1/ws"))
        .header("x-session-id", &joined[0].session_id)
        .header("origin", "https://evil.example.net");
    for (name, value) in UPGRADE_HEADERS {
        request = request.header(name, value);
    }
    let (status, message, _) = failure(request.send().await.unwrap()).await;
    assert_eq!((status, message.as_str()), (403, "Origin not allowed"));
}

#[tokio::test]
async fn the_socket_opens_like_the_sse_stream_with_seq_as_its_ids() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&joined[0], &joined[1]);
    let mut sse = app.stream(&bob.session_id, None).await;
    sse.opening().await;
    let mut ws = open(&app, &ann.session_id, None).await;
    let (connected, state) = opening(&mut ws).await;
    let participants = state["event"]["data"]["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 2);
    assert!(
        participants.contains(&json!({"userId": ann.user_id, "displayName": "Ann", "isMe": true}))
    );
    assert!(
        participants.contains(&json!({"userId": bob.user_id, "displayName": "Bob", "isMe": false}))
    );
    let mut again = app.stream(&bob.session_id, None).await;
    let sse_connected = again.next().await;
    assert_eq!(connected["seq"], sse_connected.id.parse::<u64>().unwrap());
    assert_eq!(state["seq"], connected["seq"]);
}

#[tokio::test]
async fn events_arrive_in_order_with_seq_equal_to_the_sse_ids() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob", "Cid"]).await;
    let (ann, bob, cid) = (&joined[0], &joined[1], &joined[2]);
    let mut ws = open(&app, &ann.session_id, None).await;
    opening(&mut ws).await;
    let mut sse = app.stream(&cid.session_id, None).await;
    sse.opening().await;
    for n in 0..5 {
        app.send(&bob.session_id, &format!("message {n}")).await;
    }
    let typing = app
        .post_as(
            &bob.session_id,
            "/api/v1/signaling",
            &json!({"type": "typing-start", "data": {"x": [1, "two"]}}),
        )
        .await;
    assert_eq!(typing.status(), 200);
    let mut last = 0;
    for n in 0..6 {
        let frame = next(&mut ws).await;
        let event = sse.next().await;
        assert_eq!(frame["event"], event.data, "the same JSON as SSE's data");
        let seq = frame["seq"].as_u64().unwrap();
        assert_eq!(seq.to_string(), event.id, "seq is the SSE id");
        assert!(seq > last, "in order");
        last = seq;
        if n < 5 {
            assert_eq!(frame["event"]["data"]["body"], format!("message {n}"));
        } else {
            assert_eq!(frame["event"]["type"], "typing-start");
        }
    }
}

#[tokio::test]
async fn a_socket_resumed_with_cursor_replays_what_it_missed_then_goes_on_live() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&joined[0], &joined[1]);
    let mut ws = open(&app, &ann.session_id, None).await;
    opening(&mut ws).await;
    app.send(&bob.session_id, "seen").await;
    let seen = next_of(&mut ws, "new-message").await;
    ws.close(None).await.unwrap();
    for body in ["missed 1", "missed 2"] {
        app.send(&bob.session_id, body).await;
    }
    let cursor = seen["seq"].as_u64().unwrap();
    let mut resumed = open(&app, &ann.session_id, Some(cursor)).await;
    opening(&mut resumed).await;
    let mut frames = Vec::new();
    for body in ["missed 1", "missed 2"] {
        let frame = next(&mut resumed).await;
        assert_eq!(frame["event"]["data"]["body"], body);
        frames.push(frame);
    }
    app.send(&bob.session_id, "live").await;
    let live = next(&mut resumed).await;
    assert_eq!(live["event"]["data"]["body"], "live");
    frames.push(live);
    assert!(
        next_within(&mut resumed, Duration::from_millis(300))
            .await
            .is_none()
    );
    // SSE resumed from the same id replays the same events, ids as seq.
    let mut sse = app.stream(&ann.session_id, Some(&cursor.to_string())).await;
    sse.opening().await;
    for frame in frames {
        let event = sse.next().await;
        assert_eq!(frame["seq"].to_string(), event.id);
        assert_eq!(frame["event"], event.data);
    }
}

#[tokio::test]
async fn a_resume_from_an_unknown_cursor_opens_with_resync() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let cursor = 99_999_999_999_999_999;
    let mut ws = open(&app, &joined[0].session_id, Some(cursor)).await;
    opening(&mut ws).await;
    let resync = next(&mut ws).await;
    assert_eq!(
        resync["event"],
        json!({"type": "resync", "data": {"lastEventId": cursor.to_string()}})
    );
    assert!(resync["seq"].is_u64());
}

#[tokio::test]
async fn each_command_answers_with_the_status_and_envelope_of_its_http_route() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let ann = &joined[0];
    let mut ws = open(&app, &ann.session_id, None).await;
    opening(&mut ws).await;
    let message_id = uuid::Uuid::new_v4().to_string();
    let message = json!({
        "messageId": message_id,
        "body": "<b>hi</b> a < b",
        "clientTimestamp": "2025-01-01T00:00:00.000Z",
    });
    // The same messageId twice: the second answers the stored message.
    let sent = ws_answer(&mut ws, "send", &message).await;
    let posted = http_answer(&app, &ann.session_id, "/api/v1/messages", &message).await;
    assert_eq!(sent, posted);
    assert_eq!(sent.0, 200);
    assert_eq!(sent.1["details"]["body"], "hi a < b");

    let cases: Vec<(&str, &str, Value)> = vec![
        ("send", "/api/v1/messages", json!({"body": 5})),
        ("send", "/api/v1/messages", json!("not an object")),
        ("send", "/api/v1/messages", Value::Null),
        (
            "signal",
            "/api/v1/signaling",
            json!({"type": "bogus", "data": 1}),
        ),
        (
            "signal",
            "/api/v1/signaling",
            json!({"type": "offer", "toUserId": "x".repeat(201)}),
        ),
        (
            "react",
            "/api/v1/reactions",
            json!({"messageId": message_id, "emoji": "👍", "added": true}),
        ),
        (
            "react",
            "/api/v1/reactions",
            json!({"messageId": "x", "emoji": "", "added": "yes"}),
        ),
        (
            "react",
            "/api/v1/reactions",
            json!({"messageId": uuid::Uuid::new_v4(), "emoji": "👍", "added": true}),
        ),
        ("presence", "/api/v1/presence", json!({"status": "away"})),
        ("presence", "/api/v1/presence", json!({"status": "busy"})),
    ];
    for (op, path, body) in cases {
        let over_ws = ws_answer(&mut ws, op, &body).await;
        let over_http = http_answer(&app, &ann.session_id, path, &body).await;
        assert_eq!(over_ws, over_http, "{op} {body}");
    }
    let signal = json!({"type": "typing-start", "data": {"a": 1}});
    let (status, envelope) = ws_answer(&mut ws, "signal", &signal).await;
    assert_eq!(status, 200);
    assert_eq!(envelope["message"], "Signaling event added");
    assert!(envelope["details"]["eventId"].is_string());

    let long_id = "x".repeat(101);
    for id in [message_id.as_str(), "no-such-message", long_id.as_str()] {
        let over_ws = ws_answer(&mut ws, "read", &json!({ "messageId": id })).await;
        let path = format!("/api/v1/messages/{id}/read");
        let over_http = http_answer(&app, &ann.session_id, &path, &json!({})).await;
        assert_eq!(over_ws, over_http, "read {id}");
    }
    let (status, envelope) = ws_answer(&mut ws, "read", &json!({"messageId": 7})).await;
    assert_eq!(
        (status, envelope["message"].as_str()),
        (400, Some("Validation error"))
    );
}

#[tokio::test]
async fn rate_limits_count_commands_like_requests() {
    let app = spawn_app_with(|c| c.rate_limit.per_ip_per_minute = 8).await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let mut ws = open(&app, &joined[0].session_id, None).await;
    opening(&mut ws).await;
    let presence = json!({"status": "online"});
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(ws_answer(&mut ws, "presence", &presence).await);
    }
    let (status, envelope) = statuses.last().unwrap().clone();
    assert_eq!(status, 429, "{statuses:?}");
    assert!(
        envelope["message"]
            .as_str()
            .unwrap()
            .starts_with("Rate limit exceeded")
    );
    let over_http = app
        .post_as(&joined[0].session_id, "/api/v1/presence", &presence)
        .await;
    assert_eq!(over_http.status(), 429, "one budget for both");
}

#[tokio::test]
async fn frames_that_are_no_command_answer_400_and_the_socket_stays_open() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let mut ws = open(&app, &joined[0].session_id, None).await;
    opening(&mut ws).await;
    let frames = [
        (Message::text("not json"), Value::Null),
        (Message::text("[1, 2]"), Value::Null),
        (
            Message::text(json!({"ref": 5, "op": "send"}).to_string()),
            Value::Null,
        ),
        (Message::text(json!({"ref": "a"}).to_string()), json!("a")),
        (
            Message::text(json!({"ref": "b", "op": "nope"}).to_string()),
            json!("b"),
        ),
        (Message::binary(b"{\"op\":\"send\"}".to_vec()), Value::Null),
    ];
    for (frame, reference) in frames {
        ws.send(frame.clone()).await.unwrap();
        let answer = ack(&mut ws).await;
        assert_eq!(answer["ack"], reference, "{frame:?}");
        assert_eq!(answer["status"], 400, "{frame:?}");
        let envelope = without_meta(answer["response"].clone());
        assert_eq!(envelope["success"], false);
        assert_eq!(envelope["message"], "Validation error");
        assert!(envelope["details"].is_array(), "{envelope}");
    }
    let (status, _) = ws_answer(&mut ws, "presence", &json!({"status": "online"})).await;
    assert_eq!(status, 200, "the socket is still open");
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_the_socket_with_1009() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let mut ws = open(&app, &joined[0].session_id, None).await;
    opening(&mut ws).await;
    let fits = json!({"op": "nope", "ref": "r", "body": "x".repeat(64 * 1024 - 40)}).to_string();
    assert!(fits.len() <= 64 * 1024);
    ws.send(Message::text(fits)).await.unwrap();
    assert_eq!(
        ack(&mut ws).await["status"],
        400,
        "a frame of 64 KiB is read"
    );
    ws.send(Message::text("x".repeat(64 * 1024 + 1)))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("closed within 5 s");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(frame.code, CloseCode::Size);
                break;
            }
            Some(Ok(Message::Ping(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_socket_gets_no_echo_of_what_it_sends() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&joined[0], &joined[1]);
    let mut ws = open(&app, &ann.session_id, None).await;
    opening(&mut ws).await;
    let mut bob_ws = open(&app, &bob.session_id, None).await;
    opening(&mut bob_ws).await;
    let message = json!({"body": "from the socket", "clientTimestamp": "2025-01-01T00:00:00.000Z"});
    let (status, envelope) = ws_answer(&mut ws, "send", &message).await;
    assert_eq!(status, 200);
    let event = next_of(&mut bob_ws, "new-message").await;
    assert_eq!(event["event"]["data"], envelope["details"]);
    assert_eq!(event["event"]["fromUserId"], ann.user_id.as_str());
    let targeted = json!({"type": "offer", "toUserId": bob.user_id, "data": {"sdp": 1}});
    ws_answer(&mut ws, "signal", &targeted).await;
    assert_eq!(
        next_of(&mut bob_ws, "offer").await["event"]["data"],
        json!({"sdp": 1})
    );
    assert_eq!(
        next(&mut ws).await["event"]["type"],
        "offer",
        "a targeted event reaches its sender too, as on SSE"
    );
    assert!(
        next_within(&mut ws, Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_socket_counts_as_an_open_stream_like_sse() {
    let app = spawn_app().await;
    let (id, code) = app.create_conversation(None).await;
    let ann = app.join(&id, &code, "Ann").await;
    let bob = app.join(&id, &code, "Bob").await;
    let mut sse = app.stream(&ann.session_id, None).await;
    sse.opening().await;
    let mut ws = open(&app, &bob.session_id, None).await;
    opening(&mut ws).await;
    assert_eq!(app.metric("chats3_streams_open").await, 2);
    let mut again = app.stream(&ann.session_id, None).await;
    let participants = again.opening().await;
    assert!(
        participants.contains(&json!({"userId": bob.user_id, "displayName": "Bob", "isMe": false}))
    );
    let taken = app.try_join(&id, &code, "bob").await;
    assert_eq!(taken.status(), 409, "Bob is an active participant");
    ws.close(None).await.unwrap();
    let left = sse.next_of("peer-leave").await;
    assert_eq!(left.data["fromUserId"], bob.user_id.as_str());
    eventually("the socket uncounted", || async {
        app.metric("chats3_streams_open").await == 2
    })
    .await;
    app.join(&id, &code, "bob").await;
}

/// A raw WebSocket: the handshake written and its 101 read by hand, so the
/// test decides what is read and answered (nothing, here).
async fn raw_socket(app: &TestApp, session: &str, receive_buffer: Option<u32>) -> TcpStream {
    let address = app.address.trim_start_matches("http://").parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(size) = receive_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let mut socket = socket.connect(address).await.unwrap();
    let mut request = format!("GET /api/v1/ws?sessionId={session} HTTP/1.1\r\nHost: x\r\n");
    for (name, value) in UPGRADE_HEADERS {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(socket.read(&mut byte).await.unwrap(), 1, "a 101 head");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    socket
}

/// Reads server frames (unmasked) until a close frame; its code.
async fn read_until_close(socket: &mut TcpStream) -> u16 {
    let mut read = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut at = 0;
        while read.len() >= at + 2 {
            let opcode = read[at] & 0x0f;
            let (length, header) = match read[at + 1] & 0x7f {
                126 if read.len() >= at + 4 => {
                    (u16::from_be_bytes([read[at + 2], read[at + 3]]) as usize, 4)
                }
                127 if read.len() >= at + 10 => {
                    let bytes: [u8; 8] = read[at + 2..at + 10].try_into().unwrap();
                    (u64::from_be_bytes(bytes) as usize, 10)
                }
                126 | 127 => break,
                short => (short as usize, 2),
            };
            if read.len() < at + header + length {
                break;
            }
            if opcode == 0x8 {
                let payload = &read[at + header..at + header + length];
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
            at += header + length;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, socket.read(&mut chunk))
            .await
            .expect("a close frame within 10 s")
            .unwrap();
        assert!(n > 0, "a close frame before the end");
        read.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn a_socket_that_answers_no_pings_is_closed() {
    let app = spawn_app_with(|c| c.server.heartbeat_interval = Duration::from_millis(250)).await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let mut silent = raw_socket(&app, &joined[0].session_id, None).await;
    let mut answering = open(&app, &joined[1].session_id, None).await;
    opening(&mut answering).await;
    // The client that answers (tungstenite pongs as it reads) reads all
    // along, in a task of its own, and stays open.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => return answering,
                message = answering.next() => match message {
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    other => panic!("the answering socket got {other:?}"),
                },
            }
        }
    });
    assert_eq!(read_until_close(&mut silent).await, 1001);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.send(()).unwrap();
    let mut answering = reader.await.unwrap();
    let (status, _) = ws_answer(&mut answering, "presence", &json!({"status": "online"})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_socket_whose_client_stops_reading_ends_within_the_write_timeout() {
    let app = spawn_app_with(|c| c.server.stream_write_timeout = Duration::from_secs(2)).await;
    let (id, code) = app.create_conversation(None).await;
    let ann = app.join(&id, &code, "Ann").await;
    let bob = app.join(&id, &code, "Bob").await;
    let _stuck = raw_socket(&app, &bob.session_id, Some(4096)).await;
    eventually("Bob's socket to hold his name", || async {
        app.try_join(&id, &code, "bob").await.status() == 409
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stuck socket never ended"
        );
        for _ in 0..20 {
            let big = json!({"type": "offer", "data": "x".repeat(60 * 1024)});
            let response = app
                .post_as(&ann.session_id, "/api/v1/signaling", &big)
                .await;
            assert_eq!(response.status(), 200);
        }
        if app.try_join(&id, &code, "bob").await.status() == 200 {
            break;
        }
    }
    assert_eq!(app.metric("chats3_streams_open").await, 0);
}

#[tokio::test]
async fn sockets_upgraded_by_hyper_carry_the_same_events() {
    let app = spawn_app_with(|c| c.server.fresh_stream_writer = false).await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let mut ws = open(&app, &joined[0].session_id, None).await;
    opening(&mut ws).await;
    let sent = app.send(&joined[1].session_id, "through hyper").await;
    assert_eq!(next_of(&mut ws, "new-message").await["event"]["data"], sent);
    let (status, _) = ws_answer(&mut ws, "presence", &json!({"status": "away"})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_socket_asked_for_on_a_reused_connection_is_upgraded_by_hyper() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let address = app.address.trim_start_matches("http://");
    let mut socket = TcpStream::connect(address).await.unwrap();
    socket
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    while !String::from_utf8_lossy(&answer).contains("\"status\":\"ok\"") {
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "health answered");
        answer.extend_from_slice(&chunk[..n]);
    }
    let mut request = ws_url(&app, "").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-session-id", joined[0].session_id.parse().unwrap());
    let (mut ws, response) =
        tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(socket))
            .await
            .expect("the upgrade on a reused connection");
    assert_eq!(response.status(), 101);
    opening(&mut ws).await;
    let sent = app
        .send(&joined[1].session_id, "on a reused connection")
        .await;
    assert_eq!(next_of(&mut ws, "new-message").await["event"]["data"], sent);
}

#[tokio::test]
async fn sockets_end_with_1001_at_shutdown() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let mut socket = raw_socket(&app, &joined[0].session_id, None).await;
    let stopped = tokio::spawn(app.stop());
    assert_eq!(read_until_close(&mut socket).await, 1001);
    stopped.await.unwrap();
}
