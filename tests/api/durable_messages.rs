//! Messages, edits and reactions on the write-ahead log: the real binary,
//! with `flush_interval = 1h` so that nothing reaches storage by itself,
//! is killed with SIGKILL in the middle of a load and started again on the
//! same data directory. Every change answered 200 is there, once, in its
//! order; event ids keep rising; and once the second process stopped
//! gracefully, every message is in exactly one stored object.

use crate::helpers::*;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;

/// Writers posting at once during the load.
const WRITERS: usize = 4;
/// Acknowledged messages after which the process is killed.
const KILL_AFTER: usize = 400;

pub(crate) fn start(data_dir: TempDir, envs: &[(&str, &str)]) -> (KillOnDrop, TestApp) {
    let root = data_dir.path().to_string_lossy().into_owned();
    let mut all = vec![("CHATS3_STORAGE__FS_ROOT", root.as_str())];
    all.extend_from_slice(envs);
    let (child, address) = spawn_binary(&all, Stdio::inherit());
    (KillOnDrop(child), TestApp::of_process(address, data_dir))
}

/// What the load had answered 200 for when the process was killed.
#[derive(Default)]
pub(crate) struct Acknowledged {
    /// Per writer, the ids of its messages in the order they were sent.
    pub(crate) messages: Vec<Vec<String>>,
    /// Message id → the body an acknowledged edit gave it.
    pub(crate) edits: HashMap<String, String>,
    /// Message ids an acknowledged reaction (👍 by its writer) names.
    pub(crate) reactions: HashSet<String>,
}

impl Acknowledged {
    /// Messages acknowledged so far, all writers together.
    pub(crate) fn message_count(&self) -> usize {
        self.messages.iter().map(Vec::len).sum()
    }
}

/// One writer: posts numbered messages, edits every 7th and reacts to
/// every 5th, recording what was answered 200, until the server is gone.
pub(crate) async fn write(
    app: Arc<TestApp>,
    session: String,
    writer: usize,
    acked: Arc<Mutex<Acknowledged>>,
) {
    for n in 0.. {
        let id = uuid::Uuid::new_v4().to_string();
        let body = json!({ "messageId": id, "body": format!("w{writer}-{n}"), "clientTimestamp": "2025-01-01T00:00:00Z" });
        let Ok(response) = app
            .client
            .post(app.url("/api/v1/messages"))
            .header("x-session-id", &session)
            .json(&body)
            .send()
            .await
        else {
            return;
        };
        if response.status() != 200 {
            return;
        }
        acked.lock().unwrap().messages[writer].push(id.clone());
        if n % 7 == 3 {
            let edited = format!("w{writer}-{n} edited");
            let Ok(response) = app
                .client
                .patch(app.url(&format!("/api/v1/messages/{id}")))
                .header("x-session-id", &session)
                .json(&json!({ "body": edited }))
                .send()
                .await
            else {
                return;
            };
            if response.status() == 200 {
                acked.lock().unwrap().edits.insert(id.clone(), edited);
            }
        }
        if n % 5 == 1 {
            let reaction = json!({ "messageId": id, "emoji": "👍", "added": true });
            let Ok(response) = app
                .client
                .post(app.url("/api/v1/reactions"))
                .header("x-session-id", &session)
                .json(&reaction)
                .send()
                .await
            else {
                return;
            };
            if response.status() == 200 {
                acked.lock().unwrap().reactions.insert(id.clone());
            }
        }
    }
}

/// Checks that every message, edit and reaction `acked` names is there:
/// each message once and each writer's in the order it sent them.
/// Answers the history.
pub(crate) async fn assert_acknowledged_there(
    app: &TestApp,
    session: &str,
    acked: &Acknowledged,
) -> Vec<serde_json::Value> {
    let history = full_history(app, session).await;
    let mut count: HashMap<&str, usize> = HashMap::new();
    for m in &history {
        *count.entry(m["messageId"].as_str().unwrap()).or_default() += 1;
    }
    let position = |id: &str| history.iter().position(|m| m["messageId"] == id);
    for (writer, ids) in acked.messages.iter().enumerate() {
        for id in ids {
            assert_eq!(
                count.get(id.as_str()),
                Some(&1),
                "writer {writer}'s {id} once"
            );
        }
        let positions: Vec<Option<usize>> = ids.iter().map(|id| position(id)).collect();
        assert!(
            positions.windows(2).all(|p| p[0] < p[1]),
            "writer {writer}'s messages keep their order"
        );
    }
    for (id, body) in &acked.edits {
        let message = &history[position(id).unwrap()];
        assert_eq!(message["body"], body.as_str(), "the edit of {id} survives");
    }
    let reactions = envelope(app.get_as(session, "/api/v1/reactions").await).await;
    for id in &acked.reactions {
        assert!(
            reactions["details"][id]["👍"].is_array(),
            "the reaction on {id} survives"
        );
    }
    history
}

/// The ids of every stored message line of the conversation.
pub(crate) fn stored_ids(data_dir: &std::path::Path, conversation: &str) -> Vec<String> {
    stored_messages(data_dir, conversation)
        .iter()
        .map(|m| m["messageId"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The event id and message id of the last `new-message` a stream has
/// seen, reading until it is quiet for `limit`.
async fn last_message_event(stream: &mut EventStream, limit: Duration) -> Option<(u64, String)> {
    let mut last = None;
    while let Some(event) = stream.next_within(limit).await {
        if event.data["type"] == "new-message" {
            let id = event.data["data"]["messageId"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            last = Some((event.id.parse().unwrap(), id));
        }
    }
    last
}

#[tokio::test]
async fn a_kill_9_mid_load_loses_no_acknowledged_message_edit_or_reaction() {
    let envs = [("CHATS3_ACTORS__FLUSH_INTERVAL", "1h")];
    let (mut process, app) = start(tempfile::tempdir().unwrap(), &envs);
    let (conversation, people) = app.room_with(&["Ann", "Bob", "Cyd", "Dee"]).await;
    let mut watcher = app.stream(&people[0].session_id, None).await;
    watcher.opening().await;
    let app = Arc::new(app);
    let acked = Arc::new(Mutex::new(Acknowledged {
        messages: vec![Vec::new(); WRITERS],
        ..Acknowledged::default()
    }));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            tokio::spawn(write(
                app.clone(),
                people[w].session_id.clone(),
                w,
                acked.clone(),
            ))
        })
        .collect();
    // Every answer waits for an fsync: a slow disk takes its time.
    eventually_within("the load is under way", Duration::from_secs(60), || {
        let acked = acked.clone();
        async move { acked.lock().unwrap().message_count() >= KILL_AFTER }
    })
    .await;
    process.0.kill().unwrap();
    process.0.wait().unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let (seen_before, last_seen_id) = last_message_event(&mut watcher, Duration::from_millis(500))
        .await
        .expect("the stream saw messages before the kill");
    drop(watcher);
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let total = acked.message_count();
    let app = Arc::try_unwrap(app).ok().expect("writers are done");
    let (process, app) = start(app.data_dir, &envs);

    let history = assert_acknowledged_there(&app, &people[1].session_id, &acked).await;
    println!(
        "acknowledged before the kill: {total} messages, {} edits, {} reactions; history holds {}",
        acked.edits.len(),
        acked.reactions.len(),
        history.len()
    );

    // A stream resuming from the last id it saw gets what it missed or a
    // resync, and new ids keep rising past every id from before.
    let mut resumed = app
        .stream(&people[0].session_id, Some(&seen_before.to_string()))
        .await;
    resumed.opening().await;
    let sent = app.send(&people[2].session_id, "after the restart").await;
    let (mut resynced, mut replayed) = (false, 0);
    let new_id = loop {
        let event = resumed.next().await;
        if event.data["type"] == "resync" {
            resynced = true;
            continue;
        }
        let id: u64 = event.id.parse().unwrap();
        assert!(id > seen_before, "ids rise past {seen_before}: {id}");
        if event.data["data"]["messageId"] == sent["messageId"] {
            break id;
        }
        replayed += 1;
    };
    let nothing_missed = history
        .last()
        .is_some_and(|m| m["messageId"] == last_seen_id.as_str());
    assert!(
        resynced || replayed > 0 || nothing_missed,
        "a resumed stream gets what it missed or a resync"
    );
    assert!(new_id > seen_before);

    // Stopped gracefully, storage holds every message in one object.
    let mut process = process;
    let status = terminate(&mut process.0, Duration::from_secs(60)).await;
    assert!(status.success(), "{status:?}");
    let stored = stored_ids(app.data_dir.path(), &conversation);
    let mut stored_count: HashMap<&str, usize> = HashMap::new();
    for id in &stored {
        *stored_count.entry(id.as_str()).or_default() += 1;
    }
    for id in acked.messages.iter().flatten() {
        assert_eq!(
            stored_count.get(id.as_str()),
            Some(&1),
            "{id} is in exactly one stored object"
        );
    }
    assert!(
        stored_count.values().all(|n| *n == 1),
        "no message is stored twice"
    );
}

#[tokio::test]
async fn past_its_bound_the_log_refuses_messages_with_503_and_stores_none_of_them() {
    let envs = [
        ("CHATS3_ACTORS__FLUSH_INTERVAL", "1h"),
        ("CHATS3_DURABILITY__MAX_BYTES", "131072"),
        ("CHATS3_DURABILITY__SEGMENT_BYTES", "32768"),
    ];
    let (_process, app) = start(tempfile::tempdir().unwrap(), &envs);
    let (_, people) = app.room_with(&["Ann"]).await;
    let session = &people[0].session_id;
    let mut accepted = Vec::new();
    let refused = loop {
        let body = format!("{:0>600}", accepted.len());
        let response = app
            .post_as(
                session,
                "/api/v1/messages",
                &json!({ "body": body, "clientTimestamp": "2025-01-01T00:00:00Z" }),
            )
            .await;
        if response.status() != 200 {
            break response;
        }
        accepted.push(body);
        assert!(accepted.len() < 1000, "the log's bound was never reached");
    };
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let (status, message, _) = failure(refused).await;
    assert_eq!(status, 503);
    assert!(!message.is_empty());
    let history = full_history(&app, session).await;
    let texts: Vec<&str> = history.iter().filter_map(|m| m["body"].as_str()).collect();
    for body in &accepted {
        assert!(texts.contains(&body.as_str()));
    }
    assert_eq!(
        texts.iter().filter(|t| t.len() == 600).count(),
        accepted.len(),
        "nothing refused is kept"
    );
}

#[tokio::test]
async fn conversations_created_and_closed_survive_a_kill_9() {
    let (mut process, app) = start(tempfile::tempdir().unwrap(), &[]);
    let (open, code) = app.create_conversation(Some("kept-open")).await;
    let (closed, _) = app.create_conversation(Some("kept-closed")).await;
    let answer = app
        .post_json(
            &format!("/api/v1/admin/conversations/{closed}/close"),
            &json!({ "adminPassword": ADMIN_PASSWORD }),
        )
        .await;
    assert_eq!(answer.status(), 200);
    process.0.kill().unwrap();
    process.0.wait().unwrap();
    let data_dir = app.stop().await;

    let (_process, app) = start(data_dir, &[]);
    let status_of = |id: String| {
        let app = &app;
        async move {
            let answer = app
                .post_json(
                    &format!("/api/v1/admin/conversations/{id}"),
                    &json!({ "adminPassword": ADMIN_PASSWORD }),
                )
                .await;
            assert_eq!(answer.status(), 200, "{id} is still there");
            envelope(answer).await["details"]["status"].clone()
        }
    };
    assert_eq!(status_of(open.clone()).await, "active");
    assert_eq!(status_of(closed).await, "closed");
    assert_eq!(app.try_join(&open, &code, "Ann").await.status(), 200);
}
