//! Several instances on one Redis (`[cluster] backend = "redis"`): three
//! real chats3 processes share a real `redis-server` and one storage
//! directory. What a request did on one instance holds on the others.

use crate::embed::ticket;
use crate::helpers::*;
use crate::redis_server::RedisServer;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;
use tempfile::TempDir;

/// One instance of a cluster: its process and the helpers of a test app.
struct Instance {
    process: KillOnDrop,
    app: TestApp,
}

/// `count` instances on `redis`, sharing `storage`, each with its own
/// write-ahead log.
fn start_cluster(
    redis: &RedisServer,
    storage: &TempDir,
    config: &TempDir,
    count: usize,
) -> Vec<Instance> {
    let root = storage.path().to_string_lossy().into_owned();
    let config = config
        .path()
        .join("chats3.toml")
        .to_string_lossy()
        .into_owned();
    let url = redis.url();
    (0..count)
        .map(|n| {
            let data_dir = tempfile::tempdir().unwrap();
            let wal = data_dir.path().join("wal").to_string_lossy().into_owned();
            let instance_id = format!("instance-{n}");
            let (child, address) = spawn_binary(
                &[
                    ("CHATS3_STORAGE__FS_ROOT", root.as_str()),
                    ("CHATS3_DURABILITY__WAL_DIR", wal.as_str()),
                    ("CHATS3_CONFIG", config.as_str()),
                    ("CHATS3_CLUSTER__BACKEND", "redis"),
                    ("CHATS3_CLUSTER__REDIS_URL", url.as_str()),
                    ("CHATS3_CLUSTER__INSTANCE_ID", instance_id.as_str()),
                    ("CHATS3_ACTORS__CALL_TIMEOUT", "2s"),
                ],
                Stdio::inherit(),
            );
            Instance {
                process: KillOnDrop(child),
                app: TestApp::of_process(address, data_dir),
            }
        })
        .collect()
}

#[tokio::test]
async fn a_session_made_on_one_instance_works_on_every_instance() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (storage, config) = (tempfile::tempdir().unwrap(), integrator_config());
    let cluster = start_cluster(&redis, &storage, &config, 3);
    let (conversation, code) = cluster[0].app.create_conversation(None).await;
    let joined = cluster[0].app.join(&conversation, &code, "Ann").await;
    for instance in &cluster {
        let session = envelope(
            instance
                .app
                .get_as(&joined.session_id, "/api/v1/session")
                .await,
        )
        .await;
        assert_eq!(session["details"]["displayName"], "Ann", "{session}");
        assert_eq!(session["details"]["conversationId"], conversation.as_str());
    }
    let left = cluster[1]
        .app
        .post_as(&joined.session_id, "/api/v1/leave", &json!({}))
        .await;
    assert_eq!(left.status(), 200);
    for instance in &cluster {
        let gone = instance
            .app
            .get_as(&joined.session_id, "/api/v1/session")
            .await;
        assert_eq!(
            gone.status(),
            401,
            "a session left on one instance ends on all"
        );
    }
}

#[tokio::test]
async fn a_ticket_used_on_one_instance_is_refused_on_the_others() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (storage, config) = (tempfile::tempdir().unwrap(), integrator_config());
    let cluster = start_cluster(&redis, &storage, &config, 3);
    let (conversation, _) = cluster[0].app.create_conversation(None).await;
    let (text, signature) = ticket(&conversation, |_| {});
    let body = json!({ "ticket": text, "signature": signature });
    let first = cluster[0].app.post_json("/api/v1/embed", &body).await;
    assert_eq!(first.status(), 200);
    for instance in &cluster[1..] {
        let (status, message, _) =
            failure(instance.app.post_json("/api/v1/embed", &body).await).await;
        assert_eq!(
            (status, message.as_str()),
            (403, "Nonce already used (replay attack)")
        );
    }
}

#[tokio::test]
async fn without_redis_an_instance_is_not_ready_refuses_with_retry_after_and_recovers_by_itself() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (storage, config) = (tempfile::tempdir().unwrap(), integrator_config());
    let cluster = start_cluster(&redis, &storage, &config, 1);
    let app = &cluster[0].app;
    let (conversation, code) = app.create_conversation(None).await;
    let joined = app.join(&conversation, &code, "Ann").await;
    assert_eq!(app.ready_status().await, 200);
    let trips = app.metric("chats3_redis_round_trips_total").await;
    assert!(trips > 0, "Redis round trips are counted");

    redis.kill();
    assert_eq!(app.ready_status().await, 503);
    let refused = app.get_as(&joined.session_id, "/api/v1/session").await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let refused_join = app.try_join(&conversation, &code, "Bob").await;
    assert_eq!(refused_join.status(), 503);
    assert!(app.metric("chats3_redis_errors_total").await > 0);

    // The sessions lived in Redis, which kept nothing: a restarted Redis
    // is an empty one here (a real deployment persists it).
    redis.resume_service();
    eventually("ready again once Redis is back", || async {
        app.ready_status().await == 200
    })
    .await;
    let again = app.try_join(&conversation, &code, "Bob").await;
    assert_eq!(again.status(), 200);
}

/// The `(id, messageId)` of the next `count` messages users sent (not
/// the service's join notices) a stream receives.
async fn messages_of(stream: &mut EventStream, count: usize) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let event = stream.next_of("new-message").await;
        if event.data["data"]["type"] == "system" {
            continue;
        }
        let id = event.data["data"]["messageId"].as_str().unwrap().to_owned();
        seen.push((event.id, id));
    }
    seen
}

/// The message ids storage holds for a conversation, with repeats.
fn stored_ids(storage: &TempDir, conversation: &str) -> Vec<String> {
    stored_messages(storage.path(), conversation)
        .iter()
        .map(|m| m["messageId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn messages_sent_to_every_instance_reach_every_stream_in_one_order_with_the_same_ids() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (storage, config) = (tempfile::tempdir().unwrap(), integrator_config());
    let cluster = start_cluster(&redis, &storage, &config, 3);
    let (conversation, code) = cluster[0].app.create_conversation(None).await;
    let mut senders = Vec::new();
    let mut streams = Vec::new();
    for (n, instance) in cluster.iter().enumerate() {
        let watcher = instance
            .app
            .join(&conversation, &code, &format!("W{n}"))
            .await;
        let mut stream = instance.app.stream(&watcher.session_id, None).await;
        stream.opening().await;
        streams.push(stream);
        senders.push(
            instance
                .app
                .join(&conversation, &code, &format!("S{n}"))
                .await,
        );
    }
    let sends = cluster
        .iter()
        .zip(&senders)
        .map(|(instance, sender)| async move {
            for i in 0..10 {
                instance
                    .app
                    .send(&sender.session_id, &format!("m{i}"))
                    .await;
            }
        });
    futures::future::join_all(sends).await;
    let mut orders = Vec::new();
    for stream in &mut streams {
        orders.push(messages_of(stream, 30).await);
    }
    assert!(orders.iter().all(|o| *o == orders[0]), "{orders:#?}");
    let ids: Vec<u64> = orders[0]
        .iter()
        .map(|(id, _)| id.parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids rise: {ids:?}");
    eventually("storage holds the 30 messages and the joins", || async {
        stored_messages(storage.path(), &conversation).len() == 36
    })
    .await;
}

#[tokio::test]
async fn the_same_message_id_posted_to_two_instances_is_stored_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (storage, config) = (tempfile::tempdir().unwrap(), integrator_config());
    let cluster = start_cluster(&redis, &storage, &config, 3);
    let (conversation, code) = cluster[0].app.create_conversation(None).await;
    let ann = cluster[0].app.join(&conversation, &code, "Ann").await;
    let id = "9b2f6a62-1f7e-4d43-9a55-1d1f3b1c0f00";
    let body =
        json!({ "messageId": id, "body": "once", "clientTimestamp": "2025-01-01T00:00:00Z" });
    let (first, second) = tokio::join!(
        cluster[0]
            .app
            .post_as(&ann.session_id, "/api/v1/messages", &body),
        cluster[1]
            .app
            .post_as(&ann.session_id, "/api/v1/messages", &body),
    );
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let (first, second) = (envelope(first).await, envelope(second).await);
    assert_eq!(
        first["details"]["serverReceivedAt"], second["details"]["serverReceivedAt"],
        "both answer the one stored message"
    );
    eventually("storage holds the message", || async {
        stored_ids(&storage, &conversation).contains(&id.to_owned())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stored = stored_ids(&storage, &conversation);
    assert_eq!(stored.iter().filter(|s| *s == id).count(), 1, "{stored:?}");
}

#[tokio::test]
async fn sixty_concurrent_joins_over_three_instances_admit_exactly_fifty() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (storage, config) = (tempfile::tempdir().unwrap(), integrator_config());
    let cluster = start_cluster(&redis, &storage, &config, 3);
    let (conversation, code) = cluster[0].app.create_conversation(None).await;
    let joins = (0..60).map(|n| {
        let app = &cluster[n % 3].app;
        let (conversation, code) = (&conversation, &code);
        async move {
            app.try_join(conversation, code, &format!("User {n}"))
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(joins).await;
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    let full = statuses.iter().filter(|s| **s == 403).count();
    assert_eq!((admitted, full), (50, 10), "{statuses:?}");
    let taken = cluster[1]
        .app
        .try_join(&conversation, &code, "One more")
        .await;
    assert_eq!(taken.status(), 403, "still full on every instance");
}

#[tokio::test]
async fn an_instance_killed_mid_load_loses_nothing_it_acknowledged_and_stores_it_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (storage, config) = (tempfile::tempdir().unwrap(), integrator_config());
    let cluster = start_cluster(&redis, &storage, &config, 3);
    let (conversation, code) = cluster[1].app.create_conversation(None).await;
    let ann = cluster[0].app.join(&conversation, &code, "Ann").await;
    let bob = cluster[1].app.join(&conversation, &code, "Bob").await;
    let mut stream = cluster[1].app.stream(&bob.session_id, None).await;
    stream.opening().await;

    let acknowledged = {
        let app = &cluster[0].app;
        let session = ann.session_id.clone();
        let sending = async move {
            let mut acknowledged = Vec::new();
            for i in 0..5000 {
                let body =
                    json!({ "body": format!("m{i}"), "clientTimestamp": "2025-01-01T00:00:00Z" });
                match app
                    .client
                    .post(app.url("/api/v1/messages"))
                    .header("x-session-id", &session)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => {
                        let answer: Value = r.json().await.unwrap();
                        acknowledged
                            .push(answer["details"]["messageId"].as_str().unwrap().to_owned());
                    }
                    _ => break,
                }
            }
            acknowledged
        };
        let pid = cluster[0].process.0.id().to_string();
        let killing = async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status()
                .unwrap();
        };
        tokio::join!(sending, killing).0
    };
    assert!(
        !acknowledged.is_empty() && acknowledged.len() < 5000,
        "killed mid-load"
    );

    // Bob reads some live on instance 1, then moves to instance 2.
    let mut received = messages_of(&mut stream, acknowledged.len().min(5)).await;
    drop(stream);
    let last = received.last().unwrap().0.clone();
    let mut resumed = cluster[2].app.stream(&bob.session_id, Some(&last)).await;
    resumed.opening().await;
    let all_seen = |received: &[(String, String)]| {
        let seen: HashSet<&String> = received.iter().map(|(_, id)| id).collect();
        acknowledged.iter().all(|a| seen.contains(a))
    };
    while !all_seen(&received) {
        let event = resumed.next().await;
        assert_ne!(event.data["type"], "resync", "nothing was trimmed");
        if event.data["type"] == "new-message" {
            let id = event.data["data"]["messageId"].as_str().unwrap().to_owned();
            received.push((event.id, id));
        }
    }
    let ids: Vec<&String> = received.iter().map(|(_, id)| id).collect();
    let unique: HashSet<&String> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "nothing doubled");
    assert!(
        acknowledged.iter().all(|a| unique.contains(a)),
        "nothing lost"
    );

    eventually("storage holds every acknowledged message", || async {
        let stored: HashSet<String> = stored_ids(&storage, &conversation).into_iter().collect();
        acknowledged.iter().all(|a| stored.contains(a))
    })
    .await;
    let stored = stored_ids(&storage, &conversation);
    let once: HashSet<&String> = stored.iter().collect();
    assert_eq!(once.len(), stored.len(), "each stored once");
}

#[tokio::test]
async fn redis_stopped_and_restarted_mid_load_refuses_writes_and_loses_nothing_acknowledged() {
    let Some(mut redis) = RedisServer::start_persistent() else {
        return;
    };
    let (storage, config) = (tempfile::tempdir().unwrap(), integrator_config());
    let cluster = start_cluster(&redis, &storage, &config, 3);
    let (conversation, code) = cluster[0].app.create_conversation(None).await;
    let ann = cluster[0].app.join(&conversation, &code, "Ann").await;
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for i in 0..80 {
        if i == 30 {
            redis.kill();
        }
        if i == 45 {
            redis.resume_service();
        }
        let app = &cluster[i % 3].app;
        let body = json!({ "body": format!("m{i}"), "clientTimestamp": "2025-01-01T00:00:00Z" });
        let answer = app
            .post_as(&ann.session_id, "/api/v1/messages", &body)
            .await;
        match answer.status().as_u16() {
            200 => acknowledged.push(
                envelope(answer).await["details"]["messageId"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
            503 => {
                assert!(answer.headers().contains_key("retry-after"));
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(refused > 0, "writes were refused while Redis was down");
    assert!(
        acknowledged.len() >= 40,
        "{} acknowledged",
        acknowledged.len()
    );
    for instance in &cluster {
        eventually("every instance ready again", || async {
            instance.app.ready_status().await == 200
        })
        .await;
    }
    eventually("storage holds every acknowledged message", || async {
        let stored: HashSet<String> = stored_ids(&storage, &conversation).into_iter().collect();
        acknowledged.iter().all(|a| stored.contains(a))
    })
    .await;
    let stored = stored_ids(&storage, &conversation);
    let once: HashSet<&String> = stored.iter().collect();
    assert_eq!(once.len(), stored.len(), "each stored once");
}

#[tokio::test]
async fn a_read_mark_and_a_close_made_on_one_instance_hold_on_every_instance() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (storage, config) = (tempfile::tempdir().unwrap(), integrator_config());
    let cluster = start_cluster(&redis, &storage, &config, 2);
    let (first, second) = (&cluster[0].app, &cluster[1].app);
    let (conversation, code) = first.create_conversation(None).await;
    let ann = first.join(&conversation, &code, "Ann").await;
    let bob = first.join(&conversation, &code, "Bob").await;
    let mut ann_here = first.stream(&ann.session_id, None).await;
    ann_here.opening().await;
    let mut ann_there = second.stream(&ann.session_id, None).await;
    ann_there.opening().await;
    let mut bob_there = second.stream(&bob.session_id, None).await;
    bob_there.opening().await;

    let said = first.send(&ann.session_id, "hello").await;
    let arrived = bob_there.next_of("new-message").await;
    assert_eq!(arrived.data["data"]["messageId"], said["messageId"]);
    assert_eq!(
        envelope(
            second
                .get_as(&bob.session_id, "/api/v1/messages/unread")
                .await
        )
        .await["details"]["unread"],
        1
    );
    let message_id = said["messageId"].as_str().unwrap();
    let path = format!("/api/v1/messages/{message_id}/read");
    assert_eq!(
        second
            .post_as(&bob.session_id, &path, &json!({}))
            .await
            .status(),
        200
    );
    for stream in [&mut ann_here, &mut ann_there] {
        let read = stream.next_of("message-read").await;
        assert_eq!(read.data["fromUserId"], bob.user_id.as_str());
        assert_eq!(read.data["data"]["messageId"], message_id);
    }
    for instance in [first, second] {
        let unread = envelope(
            instance
                .get_as(&bob.session_id, "/api/v1/messages/unread")
                .await,
        )
        .await["details"]
            .clone();
        assert_eq!(unread["unread"], 0, "{unread}");
        let page = envelope(
            instance
                .get_as(&ann.session_id, "/api/v1/messages?limit=10")
                .await,
        )
        .await;
        assert_eq!(
            page["details"]["readers"][bob.user_id.as_str()],
            message_id,
            "every instance knows the mark"
        );
    }

    let close = format!("/api/v1/admin/conversations/{conversation}/close");
    let password = json!({ "adminPassword": ADMIN_PASSWORD });
    assert_eq!(second.post_json(&close, &password).await.status(), 200);
    for stream in [&mut ann_here, &mut ann_there, &mut bob_there] {
        let closed = stream.next_of("conversation-closed").await;
        assert_eq!(closed.data["data"]["status"], "closed");
    }
    let refused = first.try_join(&conversation, &code, "Cy").await;
    assert_eq!(failure(refused).await.0, 403, "closed on every instance");
}
