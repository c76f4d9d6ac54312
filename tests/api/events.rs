//! The SSE stream: opening frames, live exchange, filtering, peer-leave,
//! replay with Last-Event-ID and resync.

use crate::helpers::*;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn two_participants_exchange_messages_live_without_echo() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&joined[0], &joined[1]);
    let mut ann_stream = app.stream(&ann.session_id, None).await;
    let participants = ann_stream.opening().await;
    assert_eq!(
        participants,
        vec![json!({"userId": ann.user_id, "displayName": "Ann", "isMe": true})]
    );
    let mut bob_stream = app.stream(&bob.session_id, None).await;
    let participants = bob_stream.opening().await;
    assert_eq!(participants.len(), 2);
    assert!(
        participants.contains(&json!({"userId": bob.user_id, "displayName": "Bob", "isMe": true}))
    );
    assert!(
        participants.contains(&json!({"userId": ann.user_id, "displayName": "Ann", "isMe": false}))
    );

    let sent = app.send(&ann.session_id, "hello Bob").await;
    let event = bob_stream.next_of("new-message").await;
    assert_eq!(
        event.data["data"], sent,
        "the event carries the stored message"
    );
    assert_eq!(event.data["fromUserId"], ann.user_id.as_str());
    assert_eq!(event.data["toUserId"], Value::Null);
    assert!(event.data["timestamp"].is_i64());
    assert!(
        event.id.parse::<u64>().is_ok(),
        "every event has an id: {}",
        event.id
    );

    let reply = app.send(&bob.session_id, "hi Ann").await;
    assert_eq!(ann_stream.next_of("new-message").await.data["data"], reply);
    ann_stream.expect_quiet(Duration::from_millis(300)).await;
    bob_stream.expect_quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn targeted_events_reach_only_their_target_and_sender() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob", "Cid"]).await;
    let mut streams = Vec::new();
    for j in &joined {
        let mut s = app.stream(&j.session_id, None).await;
        s.opening().await;
        streams.push(s);
    }
    let response = app
        .post_as(
            &joined[0].session_id,
            "/api/v1/signaling",
            &json!({ "type": "offer", "toUserId": joined[1].user_id, "data": { "sdp": "v=0" } }),
        )
        .await;
    let body = envelope(response).await;
    assert_eq!(body["message"], "Signaling event added");
    let event_id = body["details"]["eventId"].as_str().unwrap().to_owned();
    for index in [1, 0] {
        let event = streams[index].next_of("offer").await;
        assert_eq!(event.data["id"], event_id.as_str());
        assert_eq!(event.data["data"], json!({ "sdp": "v=0" }));
        assert_eq!(event.data["toUserId"], joined[1].user_id.as_str());
    }
    streams[2].expect_quiet(Duration::from_millis(500)).await;

    let typing = app
        .post_as(
            &joined[2].session_id,
            "/api/v1/signaling",
            &json!({ "type": "typing-start", "data": { "displayName": "Cid" } }),
        )
        .await;
    assert_eq!(typing.status(), 200);
    assert_eq!(
        streams[0].next_of("typing-start").await.data["fromUserId"],
        joined[2].user_id.as_str()
    );
    streams[2].expect_quiet(Duration::from_millis(300)).await;

    let bad = app
        .post_as(
            &joined[0].session_id,
            "/api/v1/signaling",
            &json!({ "type": "launch-missiles", "data": 1 }),
        )
        .await;
    let (status, _, body) = failure(bad).await;
    assert_eq!(status, 400);
    assert_eq!(body["details"][0]["path"][0], "type");
}

#[tokio::test]
async fn peer_leave_follows_the_grace_period_unless_the_user_returns() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&joined[0], &joined[1]);
    let mut ann_stream = app.stream(&ann.session_id, None).await;
    ann_stream.opening().await;

    let mut bob_stream = app.stream(&bob.session_id, None).await;
    bob_stream.opening().await;
    drop(bob_stream);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut back = app.stream(&bob.session_id, None).await;
    back.opening().await;
    ann_stream.expect_quiet(Duration::from_millis(3000)).await;

    drop(back);
    let started = std::time::Instant::now();
    let leave = ann_stream.next_of("peer-leave").await;
    let waited = started.elapsed();
    assert_eq!(leave.data["fromUserId"], bob.user_id.as_str());
    assert_eq!(leave.data["data"], json!({}));
    assert!(
        waited >= Duration::from_millis(2500),
        "grace period respected: {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(4900),
        "closed streams are noticed quickly: {waited:?}"
    );
}

#[tokio::test]
async fn a_resumed_stream_replays_what_it_missed_once() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&joined[0], &joined[1]);
    let mut bob_stream = app.stream(&bob.session_id, None).await;
    bob_stream.opening().await;
    app.send(&ann.session_id, "one").await;
    let first = bob_stream.next_of("new-message").await;
    drop(bob_stream);

    app.send(&ann.session_id, "two").await;
    app.post_as(
        &ann.session_id,
        "/api/v1/signaling",
        &json!({ "type": "typing-start", "data": {} }),
    )
    .await;
    app.send(&ann.session_id, "three").await;

    let mut resumed = app.stream(&bob.session_id, Some(&first.id)).await;
    resumed.opening().await;
    let replayed: Vec<_> = [
        resumed.next().await,
        resumed.next().await,
        resumed.next().await,
    ]
    .to_vec();
    let kinds: Vec<Value> = replayed.iter().map(|e| e.data["type"].clone()).collect();
    assert_eq!(kinds, ["new-message", "typing-start", "new-message"]);
    assert_eq!(replayed[0].data["data"]["body"], "two");
    assert_eq!(replayed[2].data["data"]["body"], "three");
    let ids: Vec<u64> = replayed.iter().map(|e| e.id.parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]) && ids[0] > first.id.parse().unwrap());

    app.send(&ann.session_id, "four").await;
    let live = resumed.next().await;
    assert_eq!(live.data["data"]["body"], "four", "no gap and no duplicate");
    resumed.expect_quiet(Duration::from_millis(300)).await;

    let by_cursor = app
        .client
        .get(app.url(&format!(
            "/api/v1/signaling?sessionId={}&cursor={}",
            bob.session_id, first.id
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cursor.status(), 200);
}

#[tokio::test]
async fn a_resume_that_cannot_be_served_opens_with_resync() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    for id in ["99999999999999999", "not-a-number"] {
        let mut stream = app.stream(&joined[0].session_id, Some(id)).await;
        stream.opening().await;
        let resync = stream.next().await;
        assert_eq!(
            resync.data,
            json!({ "type": "resync", "data": { "lastEventId": id } })
        );
    }
}

#[tokio::test]
async fn messages_missed_across_a_restart_are_replayed_after_a_resync() {
    let app = spawn_app().await;
    let (id, joined) = app.room_with(&["Ann", "Bob"]).await;
    let mut bob_stream = app.stream(&joined[1].session_id, None).await;
    bob_stream.opening().await;
    app.send(&joined[0].session_id, "before").await;
    let seen = bob_stream.next_of("new-message").await;
    drop(bob_stream);
    app.send(&joined[0].session_id, "missed").await;
    let data_dir = app.stop().await;

    let app = spawn_app_in(data_dir, |_| {}).await;
    // A participant who joins after the restart resumes from the old cursor.
    let bob = app.join(&id, &app.stored_join_code(&id), "Bob2").await;
    let mut resumed = app.stream(&bob.session_id, Some(&seen.id)).await;
    resumed.opening().await;
    assert_eq!(resumed.next().await.data["type"], "resync");
    assert_eq!(
        resumed.next_of("new-message").await.data["data"]["body"],
        "missed"
    );
    let later = resumed.next_of("new-message").await;
    assert_eq!(later.data["data"]["body"], "Bob2 joined the conversation");
    assert!(
        later.id.parse::<u64>().unwrap() > seen.id.parse::<u64>().unwrap(),
        "ids never go backwards"
    );
}

#[tokio::test]
async fn streams_per_session_are_capped() {
    let app = spawn_app_with(|c| c.actors.max_streams_per_session = 2).await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let _a = app.stream(&joined[0].session_id, None).await;
    let _b = app.stream(&joined[0].session_id, None).await;
    let third = app.get_as(&joined[0].session_id, "/api/v1/signaling").await;
    assert_eq!(failure(third).await.0, 429);
}

#[tokio::test]
async fn idle_streams_get_heartbeat_comments_and_end_at_shutdown() {
    use futures::StreamExt;
    let app = spawn_app_with(|c| c.server.heartbeat_interval = Duration::from_millis(200)).await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let response = app
        .client
        .get(app.url(&format!(
            "/api/v1/signaling?sessionId={}",
            joined[0].session_id
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    // Heartbeats keep coming, not just the first.
    while seen.matches(": heartbeat\n\n").count() < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(2), body.next())
            .await
            .expect("a heartbeat every 200 ms")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.starts_with("retry: 3000\n\n"), "{seen}");
    let stopping = tokio::spawn(app.stop());
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = body.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ends at shutdown");
    stopping.await.unwrap();
}

/// Reads from a raw connection until `needle` has arrived (or EOF).
async fn read_until(socket: &mut tokio::net::TcpStream, seen: &mut String, needle: &str) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{needle:?} within 5 s; got {seen}"))
            .unwrap();
        if n == 0 {
            break;
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[tokio::test]
async fn streams_on_fresh_and_on_reused_connections_carry_the_same_events() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob", "Cid"]).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let get = |session: &str| {
        format!(
            "GET /api/v1/signaling HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\nX-Session-Id: {session}\r\n\r\n"
        )
    };
    // Ann's stream is the first request of its connection.
    let mut fresh = tokio::net::TcpStream::connect(&address).await.unwrap();
    fresh
        .write_all(get(&joined[0].session_id).as_bytes())
        .await
        .unwrap();
    let mut fresh_seen = String::new();
    read_until(&mut fresh, &mut fresh_seen, "room-state").await;
    // Bob's follows a finished request on the same keep-alive connection.
    let mut reused = tokio::net::TcpStream::connect(&address).await.unwrap();
    let health = format!("GET /health HTTP/1.1\r\nHost: {address}\r\n\r\n");
    reused.write_all(health.as_bytes()).await.unwrap();
    let mut reused_seen = String::new();
    read_until(&mut reused, &mut reused_seen, "\"service\":\"chats3\"}").await;
    reused
        .write_all(get(&joined[1].session_id).as_bytes())
        .await
        .unwrap();
    read_until(&mut reused, &mut reused_seen, "room-state").await;

    for seen in [&fresh_seen, &reused_seen] {
        let stream_head = &seen[seen.rfind("HTTP/1.1 ").unwrap()..];
        assert!(stream_head.starts_with("HTTP/1.1 200 OK\r\n"), "{seen}");
        assert!(stream_head.contains("content-type: text/event-stream\r\n"));
        assert!(stream_head.contains("transfer-encoding: chunked\r\n"));
        assert!(stream_head.contains("x-content-type-options: nosniff\r\n"));
        assert!(stream_head.contains("retry: 3000\n\n"));
    }
    // Each went the way it should: the stream writer closes its
    // connection after the stream, hyper keeps its connection alive.
    let head_of = |seen: &str| seen[seen.rfind("HTTP/1.1 ").unwrap()..].to_owned();
    assert!(head_of(&fresh_seen).contains("connection: close\r\n"));
    assert!(!head_of(&reused_seen).contains("connection: close\r\n"));
    let sent = app.send(&joined[2].session_id, "to both").await;
    let text = format!("\"messageId\":\"{}\"", sent["messageId"].as_str().unwrap());
    read_until(&mut fresh, &mut fresh_seen, &text).await;
    read_until(&mut reused, &mut reused_seen, &text).await;

    // Leaving ends Ann's stream with the last chunk, then the connection.
    let left = app
        .post_as(&joined[0].session_id, "/api/v1/leave", &json!({}))
        .await;
    assert_eq!(left.status(), 200);
    read_until(&mut fresh, &mut fresh_seen, "\r\n0\r\n\r\n").await;
    read_until(&mut fresh, &mut fresh_seen, "never sent").await;
    assert!(fresh_seen.ends_with("\r\n0\r\n\r\n"), "{fresh_seen}");
}

/// Opens `session`'s stream as the first request of a new connection and
/// reads it up to the room state: the socket and what it read.
async fn fresh_stream(app: &TestApp, session: &str) -> (tokio::net::TcpStream, String) {
    use tokio::io::AsyncWriteExt;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let get = format!(
        "GET /api/v1/signaling HTTP/1.1\r\nHost: {address}\r\nX-Session-Id: {session}\r\n\r\n"
    );
    socket.write_all(get.as_bytes()).await.unwrap();
    let mut seen = String::new();
    read_until(&mut socket, &mut seen, "room-state").await;
    (socket, seen)
}

#[tokio::test]
async fn with_the_fresh_stream_writer_off_hyper_serves_a_fresh_stream() {
    let app = spawn_app_with(|c| c.server.fresh_stream_writer = false).await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let (_socket, seen) = fresh_stream(&app, &joined[0].session_id).await;
    assert!(seen.starts_with("HTTP/1.1 200 OK\r\n"), "{seen}");
    assert!(seen.contains("content-type: text/event-stream\r\n"));
    assert!(!seen.contains("connection: close\r\n"), "{seen}");
}

#[tokio::test]
async fn a_fresh_stream_request_without_a_session_gets_the_error_envelope() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let get = format!("GET /api/v1/signaling HTTP/1.1\r\nHost: {address}\r\n\r\n");
    socket.write_all(get.as_bytes()).await.unwrap();
    let mut seen = String::new();
    read_until(&mut socket, &mut seen, "never sent").await;
    assert!(seen.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{seen}");
    let (head, body) = seen.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains(&format!("content-length: {}\r\n", body.len())),
        "{seen}"
    );
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["message"], "No session found");
}

#[tokio::test]
async fn a_fresh_stream_whose_client_goes_away_is_closed() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let (socket, _) = fresh_stream(&app, &joined[0].session_id).await;
    assert_eq!(app.metric("chats3_streams_open").await, 1);
    drop(socket);
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while app.metric("chats3_streams_open").await != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "the stream ends when its client leaves");
}
