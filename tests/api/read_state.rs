//! Read state: each user's read mark moves only forward, paged history
//! carries every reader's mark, the unread count follows it, a mark
//! reaches the reader's own other streams, and it survives a `kill -9`
//! through the write-ahead log. With it, the no-echo rule: what a stream
//! sends is not echoed to that stream, while the sender's other streams
//! (tabs, devices) get it.

use crate::durable_messages::start;
use crate::helpers::*;
use crate::websocket::{self, Ws};
use serde_json::{Value, json};

async fn read(app: &TestApp, session: &str, message_id: &str) -> reqwest::Response {
    app.post_as(
        session,
        &format!("/api/v1/messages/{message_id}/read"),
        &json!({}),
    )
    .await
}

/// The `readers` of the newest page.
async fn readers(app: &TestApp, session: &str) -> Value {
    let page = envelope(app.get_as(session, "/api/v1/messages?limit=10").await).await;
    page["details"]["readers"].clone()
}

async fn unread(app: &TestApp, session: &str) -> Value {
    let answer = app.get_as(session, "/api/v1/messages/unread").await;
    assert_eq!(answer.status(), 200);
    envelope(answer).await["details"].clone()
}

fn id_of(message: &Value) -> &str {
    message["messageId"].as_str().unwrap()
}

#[tokio::test]
async fn a_read_mark_moves_only_forward_and_pages_carry_every_readers_mark() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&joined[0], &joined[1]);
    let first = app.send(&ann.session_id, "one").await;
    let second = app.send(&ann.session_id, "two").await;
    assert_eq!(readers(&app, &ann.session_id).await, json!({}));

    assert_eq!(
        read(&app, &bob.session_id, id_of(&second)).await.status(),
        200
    );
    assert_eq!(
        read(&app, &bob.session_id, id_of(&first)).await.status(),
        200
    );
    assert_eq!(
        readers(&app, &ann.session_id).await,
        json!({ bob.user_id.as_str(): id_of(&second) }),
        "reading an older message leaves the mark where it is"
    );
    assert_eq!(
        read(&app, &ann.session_id, id_of(&first)).await.status(),
        200
    );
    assert_eq!(
        readers(&app, &bob.session_id).await,
        json!({ bob.user_id.as_str(): id_of(&second), ann.user_id.as_str(): id_of(&first) })
    );
    let missing = read(&app, &bob.session_id, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(failure(missing).await.0, 404);

    let compatible = envelope(app.get_as(&bob.session_id, "/api/v1/messages").await).await;
    assert!(
        compatible["details"].is_array(),
        "the form without paging parameters stays the array"
    );
}

#[tokio::test]
async fn the_unread_count_follows_the_read_mark() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&joined[0], &joined[1]);
    let mut bob_stream = app.stream(&bob.session_id, None).await;
    bob_stream.opening().await;
    assert_eq!(
        unread(&app, &bob.session_id).await,
        json!({"unread": 0, "capped": false, "lastReadSeq": null, "lastReadMessageId": null}),
        "join notices are not counted"
    );
    let mut sent = Vec::new();
    for n in 0..3 {
        sent.push(app.send(&ann.session_id, &format!("m{n}")).await);
    }
    app.send(&bob.session_id, "mine").await;
    assert_eq!(unread(&app, &bob.session_id).await["unread"], 3);

    let seq_of_second = loop {
        let event = bob_stream.next_of("new-message").await;
        if event.data["data"]["messageId"] == sent[1]["messageId"] {
            break event.id.parse::<u64>().unwrap();
        }
    };
    read(&app, &bob.session_id, id_of(&sent[1])).await;
    let counted = unread(&app, &bob.session_id).await;
    assert_eq!(counted["unread"], 1);
    assert_eq!(
        counted["lastReadSeq"], seq_of_second,
        "the event id of the message"
    );
    assert_eq!(counted["lastReadMessageId"], id_of(&sent[1]));
    assert_eq!(
        unread(&app, &ann.session_id).await["unread"],
        1,
        "Bob's message"
    );
}

/// Reads events of a socket until one of `kind`; fails on a `message-read`
/// or a `new-message` of `unwanted_from` before it.
async fn next_skipping(ws: &mut Ws, kind: &str, unwanted_from: &str) -> Value {
    loop {
        let frame = websocket::next(ws).await;
        let event = &frame["event"];
        if event["type"] == kind {
            return frame;
        }
        assert!(
            !(event["fromUserId"] == unwanted_from
                && (event["type"] == "message-read" || event["type"] == "new-message")),
            "an echo of what this socket sent: {frame}"
        );
    }
}

#[tokio::test]
async fn a_read_mark_reaches_the_readers_other_streams_but_not_the_sending_socket() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&joined[0], &joined[1]);
    let message = app.send(&ann.session_id, "read me").await;
    let later = app.send(&ann.session_id, "and me").await;
    let mut bob_tab = app.stream(&bob.session_id, None).await;
    bob_tab.opening().await;
    let mut bob_socket = websocket::open(&app, &bob.session_id, None).await;
    websocket::opening(&mut bob_socket).await;

    assert_eq!(
        read(&app, &bob.session_id, id_of(&message)).await.status(),
        200
    );
    for event in [
        bob_tab.next_of("message-read").await.data,
        websocket::next_of(&mut bob_socket, "message-read").await["event"].clone(),
    ] {
        assert_eq!(event["data"]["messageId"], id_of(&message));
        assert_eq!(event["data"]["userId"], bob.user_id.as_str());
    }

    let (status, _) = websocket::ws_answer(
        &mut bob_socket,
        "read",
        &json!({ "messageId": id_of(&later) }),
    )
    .await;
    assert_eq!(status, 200);
    let seen = bob_tab.next_of("message-read").await;
    assert_eq!(
        seen.data["data"]["messageId"],
        id_of(&later),
        "the other tab"
    );
    let marker = app.send(&ann.session_id, "marker").await;
    let frame = next_skipping(&mut bob_socket, "new-message", &bob.user_id).await;
    assert_eq!(frame["event"]["data"]["messageId"], id_of(&marker));
}

#[tokio::test]
async fn own_messages_reach_the_senders_other_streams_but_not_the_sending_one() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&joined[0], &joined[1]);
    let mut sending = websocket::open(&app, &ann.session_id, None).await;
    websocket::opening(&mut sending).await;
    let mut other_socket = websocket::open(&app, &ann.session_id, None).await;
    websocket::opening(&mut other_socket).await;
    let mut other_tab = app.stream(&ann.session_id, None).await;
    other_tab.opening().await;

    let body = json!({"body": "from one tab", "clientTimestamp": "2025-01-01T00:00:00.000Z"});
    let (status, sent) = websocket::ws_answer(&mut sending, "send", &body).await;
    assert_eq!(status, 200);
    let id = sent["details"]["messageId"].clone();
    let over_socket = websocket::next_of(&mut other_socket, "new-message").await;
    assert_eq!(over_socket["event"]["data"]["messageId"], id);
    assert_eq!(
        other_tab.next_of("new-message").await.data["data"]["messageId"],
        id
    );

    let marker = app.send(&bob.session_id, "marker").await;
    let frame = next_skipping(&mut sending, "new-message", &ann.user_id).await;
    assert_eq!(frame["event"]["data"]["messageId"], id_of(&marker));
    assert_eq!(
        other_tab.next_of("new-message").await.data["data"]["messageId"],
        id_of(&marker)
    );

    // An HTTP request comes from no stream: its session's streams get no
    // echo, as Chats3's clients expect.
    app.send(&ann.session_id, "over HTTP").await;
    let marker = app.send(&bob.session_id, "second marker").await;
    let next = other_tab.next_of("new-message").await;
    assert_eq!(next.data["data"]["messageId"], id_of(&marker));
}

#[tokio::test]
async fn a_read_mark_answered_200_survives_a_kill_9() {
    let envs = [("CHATS3_ACTORS__FLUSH_INTERVAL", "1h")];
    let (mut process, app) = start(tempfile::tempdir().unwrap(), &envs);
    let (conversation, people) = app.room_with(&["Ann", "Bob"]).await;
    let (ann, bob) = (&people[0], &people[1]);
    let first = app.send(&ann.session_id, "one").await;
    let second = app.send(&ann.session_id, "two").await;
    assert_eq!(
        read(&app, &bob.session_id, id_of(&second)).await.status(),
        200
    );
    assert_eq!(
        read(&app, &ann.session_id, id_of(&first)).await.status(),
        200
    );
    process.0.kill().unwrap();
    process.0.wait().unwrap();

    let (mut process, app) = start(app.data_dir, &envs);
    let expected =
        json!({ bob.user_id.as_str(): id_of(&second), ann.user_id.as_str(): id_of(&first) });
    assert_eq!(readers(&app, &bob.session_id).await, expected);
    assert_eq!(unread(&app, &bob.session_id).await["unread"], 0);
    assert_eq!(
        unread(&app, &ann.session_id).await["lastReadMessageId"],
        id_of(&first)
    );

    let status = terminate(&mut process.0, std::time::Duration::from_secs(30)).await;
    assert!(status.success(), "{status}");
    let stored = std::fs::read(
        app.data_dir
            .path()
            .join(format!("conversations/{conversation}/reads.json")),
    )
    .expect("reads.json is stored at stop");
    let stored: Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(stored[bob.user_id.as_str()]["messageId"], id_of(&second));
}

#[tokio::test]
async fn the_api_document_describes_readers_and_the_unread_count() {
    let app = spawn_app().await;
    let document: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemas = &document["components"]["schemas"];
    assert!(
        schemas["HistoryPage"]["properties"]["readers"].is_object(),
        "{}",
        schemas["HistoryPage"]
    );
    let unread = &schemas["UnreadCount"]["properties"];
    for field in ["unread", "capped", "lastReadSeq", "lastReadMessageId"] {
        assert!(unread[field].is_object(), "{field}: {unread}");
    }
    assert!(document["paths"]["/api/v1/messages/unread"]["get"].is_object());
}
