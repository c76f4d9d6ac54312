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

/// What a cluster test runs on: its `redis-server`, the storage directory
/// the instances share, the integrators' config they read, and the
/// instances.
type Cluster = (RedisServer, TempDir, TempDir, Vec<Instance>);

/// `count` instances on `redis` (`None`: no `redis-server` here, the test
/// is skipped), sharing one storage directory and the integrators'
/// config, each with its own write-ahead log and `extra` environment.
fn cluster_on(redis: Option<RedisServer>, count: usize, extra: &[(&str, &str)]) -> Option<Cluster> {
    let redis = redis?;
    let (storage, config) = (tempfile::tempdir().unwrap(), integrator_config());
    let root = storage.path().to_string_lossy().into_owned();
    let config_file = config
        .path()
        .join("chats3.toml")
        .to_string_lossy()
        .into_owned();
    let url = redis.url();
    let instances = (0..count)
        .map(|n| {
            let data_dir = tempfile::tempdir().unwrap();
            let wal = data_dir.path().join("wal").to_string_lossy().into_owned();
            let instance_id = format!("instance-{n}");
            let mut envs = vec![
                ("CHATS3_STORAGE__FS_ROOT", root.as_str()),
                ("CHATS3_DURABILITY__WAL_DIR", wal.as_str()),
                ("CHATS3_CONFIG", config_file.as_str()),
                ("CHATS3_CLUSTER__BACKEND", "redis"),
                ("CHATS3_CLUSTER__REDIS_URL", url.as_str()),
                ("CHATS3_CLUSTER__INSTANCE_ID", instance_id.as_str()),
                ("CHATS3_ACTORS__CALL_TIMEOUT", "2s"),
            ];
            envs.extend_from_slice(extra);
            let (child, address) = spawn_binary(&envs, Stdio::inherit());
            Instance {
                process: KillOnDrop(child),
                app: TestApp::of_process(address, data_dir),
            }
        })
        .collect();
    Some((redis, storage, config, instances))
}

#[tokio::test]
async fn a_session_made_on_one_instance_works_on_every_instance() {
    let Some((_redis, _storage, _config, cluster)) = cluster_on(RedisServer::start(), 3, &[])
    else {
        return;
    };
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
    let Some((_redis, _storage, _config, cluster)) = cluster_on(RedisServer::start(), 3, &[])
    else {
        return;
    };
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
    let Some((mut redis, _storage, _config, cluster)) = cluster_on(RedisServer::start(), 1, &[])
    else {
        return;
    };
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

/// Waits until storage holds every one of `acknowledged`, then checks
/// that it holds each message once.
async fn stored_exactly_once(storage: &TempDir, conversation: &str, acknowledged: &[String]) {
    eventually("storage holds every acknowledged message", || async {
        let stored: HashSet<String> = stored_ids(storage, conversation).into_iter().collect();
        acknowledged.iter().all(|a| stored.contains(a))
    })
    .await;
    let stored = stored_ids(storage, conversation);
    let once: HashSet<&String> = stored.iter().collect();
    assert_eq!(once.len(), stored.len(), "each stored once");
}

#[tokio::test]
async fn messages_sent_to_every_instance_reach_every_stream_in_one_order_with_the_same_ids() {
    let Some((_redis, storage, _config, cluster)) = cluster_on(RedisServer::start(), 3, &[]) else {
        return;
    };
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
    let Some((_redis, storage, _config, cluster)) = cluster_on(RedisServer::start(), 3, &[]) else {
        return;
    };
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
    let Some((_redis, _storage, _config, cluster)) = cluster_on(RedisServer::start(), 3, &[])
    else {
        return;
    };
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
    let Some((_redis, storage, _config, cluster)) = cluster_on(RedisServer::start(), 3, &[]) else {
        return;
    };
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

    stored_exactly_once(&storage, &conversation, &acknowledged).await;
}

#[tokio::test]
async fn redis_stopped_and_restarted_mid_load_refuses_writes_and_loses_nothing_acknowledged() {
    let Some((mut redis, storage, _config, cluster)) =
        cluster_on(RedisServer::start_persistent(), 3, &[])
    else {
        return;
    };
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
    stored_exactly_once(&storage, &conversation, &acknowledged).await;
}

#[tokio::test]
async fn a_read_mark_and_a_close_made_on_one_instance_hold_on_every_instance() {
    let Some((_redis, _storage, _config, cluster)) = cluster_on(RedisServer::start(), 2, &[])
    else {
        return;
    };
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

/// The index (in the cluster) of the instance holding a conversation's
/// storing lease, if one holds it now.
fn lease_holder(redis: &RedisServer, conversation: &str) -> Option<usize> {
    let holder = redis.get(&format!("chats3:lease:{conversation}"))?;
    holder
        .strip_prefix("instance-")?
        .split(':')
        .next()?
        .parse()
        .ok()
}

/// PUT requests the live instances made to storage, summed.
async fn storage_puts(cluster: &[Instance], alive: &[usize]) -> u64 {
    let mut total = 0;
    for n in alive {
        total += cluster[*n].app.metric("chats3_storage_puts_total").await;
    }
    total
}

/// A stored JSON document of a conversation (`{}` while there is none).
fn stored_document(storage: &TempDir, conversation: &str, name: &str) -> Value {
    let path = storage
        .path()
        .join(format!("conversations/{conversation}/{name}"));
    std::fs::read(path)
        .ok()
        .and_then(|body| serde_json::from_slice(&body).ok())
        .unwrap_or_else(|| json!({}))
}

#[tokio::test]
async fn a_stream_opened_on_one_instance_lists_who_streams_on_every_instance() {
    let Some((_redis, _storage, _config, cluster)) = cluster_on(RedisServer::start(), 3, &[])
    else {
        return;
    };
    let (conversation, code) = cluster[0].app.create_conversation(None).await;
    let ann = cluster[0].app.join(&conversation, &code, "Ann").await;
    let bob = cluster[1].app.join(&conversation, &code, "Bob").await;
    let cy = cluster[2].app.join(&conversation, &code, "Cy").await;
    let mut on_first = cluster[0].app.stream(&ann.session_id, None).await;
    on_first.opening().await;
    let mut on_second = cluster[1].app.stream(&bob.session_id, None).await;
    on_second.opening().await;

    let mut on_third = cluster[2].app.stream(&cy.session_id, None).await;
    let listed = on_third.opening().await;
    let mut names: Vec<(String, bool)> = listed
        .iter()
        .map(|p| {
            (
                p["displayName"].as_str().unwrap().to_owned(),
                p["isMe"].as_bool().unwrap(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("Ann".to_owned(), false),
            ("Bob".to_owned(), false),
            ("Cy".to_owned(), true)
        ],
        "{listed:?}"
    );
    let ids: HashSet<&str> = listed
        .iter()
        .map(|p| p["userId"].as_str().unwrap())
        .collect();
    let expected: HashSet<&str> = [&ann.user_id, &bob.user_id, &cy.user_id]
        .into_iter()
        .map(String::as_str)
        .collect();
    assert_eq!(ids, expected);

    // Bob leaves: a stream opened after it no longer lists him.
    let left = cluster[1]
        .app
        .post_as(&bob.session_id, "/api/v1/leave", &json!({}))
        .await;
    assert_eq!(left.status(), 200);
    let mut again = cluster[2].app.stream(&cy.session_id, None).await;
    let listed = again.opening().await;
    assert!(
        listed.iter().all(|p| p["displayName"] != "Bob"),
        "{listed:?}"
    );
    assert!(
        listed.iter().any(|p| p["displayName"] == "Ann"),
        "{listed:?}"
    );
}

#[tokio::test]
async fn documents_changed_on_every_instance_are_saved_once_per_change_by_the_lease_holder() {
    let Some((redis, storage, _config, cluster)) = cluster_on(RedisServer::start(), 3, &[]) else {
        return;
    };
    let (conversation, code) = cluster[0].app.create_conversation(None).await;
    let users: Vec<_> = futures::future::join_all(
        ["Ann", "Bob", "Cy"]
            .iter()
            .enumerate()
            .map(|(n, name)| cluster[n].app.join(&conversation, &code, name)),
    )
    .await;
    let said = cluster[0].app.send(&users[0].session_id, "hello").await;
    let message_id = said["messageId"].as_str().unwrap().to_owned();
    eventually("the message is stored", || async {
        stored_ids(&storage, &conversation).contains(&message_id)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let react = |n: usize, emoji: &'static str| {
        let (app, session) = (&cluster[n].app, users[n].session_id.clone());
        let path = format!("/api/v1/messages/{message_id}/reactions");
        async move {
            let answer = app
                .post_as(&session, &path, &json!({ "emoji": emoji }))
                .await;
            assert_eq!(answer.status(), 200);
        }
    };

    // Two changes on two instances, each in a storing round of its own:
    // two document writes in all, not one per instance and change.
    let before = storage_puts(&cluster, &[0, 1, 2]).await;
    react(0, "👍").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    react(1, "🎉").await;
    eventually("both reactions are stored", || async {
        let stored = stored_document(&storage, &conversation, "reactions.json");
        stored[&message_id]["🎉"] == json!([users[1].user_id])
            && stored[&message_id]["👍"] == json!([users[0].user_id])
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let writes = storage_puts(&cluster, &[0, 1, 2]).await - before;
    assert!(
        (1..=2).contains(&writes),
        "{writes} storage writes for two reactions"
    );

    // The lease holder is killed mid-way: the changes acknowledged by
    // then and after it reach storage through another instance.
    react(2, "🚀").await;
    let killed = lease_holder(&redis, &conversation).unwrap_or(2);
    let pid = cluster[killed].process.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    let alive: Vec<usize> = (0..3).filter(|n| *n != killed).collect();
    let (first, second) = (alive[0], alive[1]);
    react(first, "👀").await;
    let path = format!("/api/v1/messages/{message_id}/read");
    let read = cluster[second]
        .app
        .post_as(&users[second].session_id, &path, &json!({}))
        .await;
    assert_eq!(read.status(), 200);
    if first == 0 || second == 0 {
        let edit = cluster[0]
            .app
            .client
            .patch(
                cluster[0]
                    .app
                    .url(&format!("/api/v1/messages/{message_id}")),
            )
            .header("x-session-id", &users[0].session_id)
            .json(&json!({ "body": "hello, edited" }))
            .send()
            .await
            .unwrap();
        assert_eq!(edit.status(), 200);
        eventually("the edit is stored", || async {
            stored_document(&storage, &conversation, "revisions.json")[&message_id]["body"]
                == "hello, edited"
        })
        .await;
    }
    let emojis = |n: usize| match n {
        0 => "👍",
        1 => "🎉",
        _ => "🚀",
    };
    eventually(
        "every acknowledged reaction and the read mark are stored",
        || async {
            let stored = stored_document(&storage, &conversation, "reactions.json");
            let reactions_right = (0..3).all(|n| {
                let emoji = if n == first { "👀" } else { emojis(n) };
                stored[&message_id][emoji]
                    .as_array()
                    .is_some_and(|users_of| users_of.contains(&json!(users[n].user_id)))
            });
            let marks = stored_document(&storage, &conversation, "reads.json");
            reactions_right
                && marks[users[second].user_id.as_str()]["messageId"] == message_id.as_str()
        },
    )
    .await;
}

#[tokio::test]
async fn batches_are_compacted_by_the_lease_holder_and_history_stays_whole_across_a_lease_change() {
    let Some((redis, storage, _config, cluster)) = cluster_on(
        RedisServer::start(),
        3,
        &[
            ("CHATS3_ACTORS__FLUSH_INTERVAL", "100ms"),
            ("CHATS3_ACTORS__FLUSH_MAX_BATCH", "10"),
            ("CHATS3_ACTORS__IDLE_TIMEOUT", "3s"),
        ],
    ) else {
        return;
    };
    let (conversation, code) = cluster[0].app.create_conversation(None).await;
    let users: Vec<_> = futures::future::join_all(
        ["U0", "U1", "U2"]
            .iter()
            .enumerate()
            .map(|(n, name)| cluster[n].app.join(&conversation, &code, name)),
    )
    .await;
    let send_round = |round: usize, alive: Vec<usize>| {
        let (cluster, users) = (&cluster, &users);
        async move {
            let sends = alive.into_iter().map(|n| async move {
                let mut ids = Vec::new();
                for i in 0..60 {
                    let said = cluster[n]
                        .app
                        .send(&users[n].session_id, &format!("r{round} u{n} m{i}"))
                        .await;
                    ids.push(said["messageId"].as_str().unwrap().to_owned());
                }
                ids
            });
            futures::future::join_all(sends)
                .await
                .into_iter()
                .flatten()
                .collect::<Vec<String>>()
        }
    };
    let mut acknowledged = send_round(0, vec![0, 1, 2]).await;
    let killed = lease_holder(&redis, &conversation).unwrap_or(0);
    let pid = cluster[killed].process.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    let alive: Vec<usize> = (0..3).filter(|n| *n != killed).collect();
    acknowledged.extend(send_round(1, alive.clone()).await);

    let messages_dir = storage
        .path()
        .join(format!("conversations/{conversation}/messages"));
    eventually_within(
        "storage holds every message, compacted",
        Duration::from_secs(40),
        || async {
            let stored: HashSet<String> = stored_ids(&storage, &conversation).into_iter().collect();
            let objects = walk(&messages_dir).len();
            acknowledged.iter().all(|a| stored.contains(a)) && objects <= 3
        },
    )
    .await;
    let stored = stored_ids(&storage, &conversation);
    let once: HashSet<&String> = stored.iter().collect();
    assert_eq!(once.len(), stored.len(), "no message stored twice");
    assert!(
        storage
            .path()
            .join(format!("conversations/{conversation}/history.json"))
            .exists(),
        "the segments are indexed"
    );

    for n in &alive {
        let app = &cluster[*n].app;
        let mut pages: Vec<Vec<Value>> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/messages?limit=100&cursor={c}"),
                None => "/api/v1/messages?limit=100".to_owned(),
            };
            let page =
                envelope(app.get_as(&users[*n].session_id, &path).await).await["details"].clone();
            pages.push(page["messages"].as_array().unwrap().clone());
            if page["hasMore"] != true {
                break;
            }
            cursor = page["nextCursor"].as_str().map(str::to_owned);
        }
        // Pages go back in time; each lists its messages oldest first.
        let history: Vec<Value> = pages.into_iter().rev().flatten().collect();
        let times: Vec<&str> = history
            .iter()
            .map(|m| m["serverReceivedAt"].as_str().unwrap())
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "history in order on instance {n}"
        );
        let users_messages: Vec<&Value> = history
            .iter()
            .filter(|m| m["senderRole"] != "system")
            .collect();
        let unique: HashSet<&str> = users_messages
            .iter()
            .map(|m| m["messageId"].as_str().unwrap())
            .collect();
        assert_eq!(
            unique.len(),
            users_messages.len(),
            "no message twice in history"
        );
        assert!(
            acknowledged.iter().all(|a| unique.contains(a.as_str())),
            "history is whole on instance {n}"
        );
        for sender in &users {
            let sent: Vec<&str> = users_messages
                .iter()
                .filter(|m| m["senderUserId"] == sender.user_id.as_str())
                .map(|m| m["body"].as_str().unwrap())
                .collect();
            assert!(sent.len() >= 60, "{} messages of a sender", sent.len());
            let mut in_order = sent.clone();
            in_order.sort_by_key(|body| {
                let numbers: Vec<usize> = body
                    .split(' ')
                    .map(|part| part[1..].parse().unwrap())
                    .collect();
                (numbers[0], numbers[2])
            });
            assert_eq!(sent, in_order, "each sender's messages in the order sent");
        }
    }
}

#[tokio::test]
async fn after_redis_lost_its_data_ids_keep_rising_and_a_resume_from_before_gets_resync() {
    // Nothing is stored before Redis restarts: what it held is lost.
    let Some((mut redis, _storage, _config, cluster)) = cluster_on(
        RedisServer::start(),
        3,
        &[("CHATS3_ACTORS__FLUSH_INTERVAL", "60s")],
    ) else {
        return;
    };
    let (first, second, third) = (&cluster[0].app, &cluster[1].app, &cluster[2].app);
    let (conversation, code) = first.create_conversation(None).await;
    let ann = first.join(&conversation, &code, "Ann").await;
    let bob = first.join(&conversation, &code, "Bob").await;
    let mut live = second.stream(&bob.session_id, None).await;
    live.opening().await;
    let mut live_too = first.stream(&ann.session_id, None).await;
    live_too.opening().await;
    for i in 0..3 {
        first.send(&ann.session_id, &format!("before {i}")).await;
    }
    let before = messages_of(&mut live, 3).await;
    let seen: u64 = before[0].0.parse().unwrap();
    let last: u64 = before[2].0.parse().unwrap();

    // Redis restarts empty: sessions, the stream and its marks are gone.
    redis.resume_service();
    for app in [first, second, third] {
        eventually("ready again", || async { app.ready_status().await == 200 }).await;
    }
    eventually("a join answers again", || async {
        third.try_join(&conversation, &code, "Cy").await.status() == 200
    })
    .await;
    let cy = third.join(&conversation, &code, "Cy2").await;
    let dee = third.join(&conversation, &code, "Dee").await;
    let mut after = Vec::new();
    for i in 0..3 {
        let said = third.send(&cy.session_id, &format!("after {i}")).await;
        after.push(said["messageId"].as_str().unwrap().to_owned());
    }

    // The streams open on the instances that saw the old stream end (their
    // clients resume) once those instances meet the new stream.
    for stream in [&mut live, &mut live_too] {
        let ended = loop {
            let waited = std::time::Instant::now();
            match stream.next_within(Duration::from_secs(15)).await {
                Some(_) => continue,
                None => break waited.elapsed() < Duration::from_secs(14),
            }
        };
        assert!(ended, "a stream open during the loss ends");
    }

    // A new stream sees ids above every id from before the loss.
    let mut fresh = second.stream(&dee.session_id, None).await;
    fresh.opening().await;
    third.send(&cy.session_id, "later").await;
    let later = fresh.next_of("new-message").await;
    assert!(later.id.parse::<u64>().unwrap() > last, "ids keep rising");

    // A client that saw only the first message before the loss resumes:
    // the two after it are lost with Redis, so it must be told (resync);
    // it never gets the later messages as if nothing were missing.
    for app in [first, second, third] {
        let mut resumed = app.stream(&dee.session_id, Some(&seen.to_string())).await;
        resumed.opening().await;
        let next = resumed.next().await;
        if next.data["type"] == "resync" {
            continue;
        }
        let mut got = vec![next];
        while got
            .iter()
            .filter(|e| e.data["type"] == "new-message")
            .count()
            < 6
        {
            match resumed.next_within(Duration::from_secs(3)).await {
                Some(event) => got.push(event),
                None => break,
            }
        }
        let ids: Vec<&str> = got
            .iter()
            .filter_map(|e| e.data["data"]["messageId"].as_str())
            .collect();
        let missed = before[1..].iter().map(|(_, id)| id).chain(&after);
        assert!(
            missed.into_iter().all(|a| ids.contains(&a.as_str())),
            "a resume is complete or says resync, never a silent gap: {ids:?} {before:?} {after:?}"
        );
    }
}

#[tokio::test]
async fn an_old_message_id_is_refused_on_every_instance_after_its_claim_expired() {
    let Some((_redis, storage, _config, cluster)) = cluster_on(
        RedisServer::start(),
        3,
        &[
            ("CHATS3_ACTORS__FLUSH_INTERVAL", "100ms"),
            ("CHATS3_ACTORS__IDEMPOTENCY_TTL", "300ms"),
            ("CHATS3_ACTORS__IDEMPOTENCY_MAX", "2"),
            ("CHATS3_ACTORS__HISTORY_TAIL", "3"),
            ("CHATS3_ACTORS__IDLE_TIMEOUT", "1s"),
        ],
    ) else {
        return;
    };
    let (conversation, code) = cluster[0].app.create_conversation(None).await;
    let ann = cluster[0].app.join(&conversation, &code, "Ann").await;
    let mallory = cluster[1].app.join(&conversation, &code, "Mallory").await;
    let id = "0c8e5d2a-7b1f-4e3a-9c6d-5f4e3d2c1b0a";
    let with_id = |message_id: &str, body: &str| json!({ "messageId": message_id, "body": body, "clientTimestamp": "2025-01-01T00:00:00Z" });
    let first = cluster[0]
        .app
        .post_as(&ann.session_id, "/api/v1/messages", &with_id(id, "mine"))
        .await;
    assert_eq!(first.status(), 200);
    let first = envelope(first).await["details"].clone();
    for (n, instance) in cluster.iter().enumerate() {
        for i in 0..4 {
            let later = format!("0c8e5d2a-7b1f-4e3a-9c6d-00000000{n}{i:03}");
            let sent = instance
                .app
                .post_as(
                    &ann.session_id,
                    "/api/v1/messages",
                    &with_id(&later, "later"),
                )
                .await;
            assert_eq!(sent.status(), 200);
        }
    }
    // Past the claim, stored, and out of every instance's memory (trimmed,
    // or the room unloaded and read back).
    eventually("storage holds the first message", || async {
        stored_ids(&storage, &conversation).contains(&id.to_owned())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    for instance in &cluster {
        let (status, message, _) = failure(
            instance
                .app
                .post_as(&mallory.session_id, "/api/v1/messages", &with_id(id, "x"))
                .await,
        )
        .await;
        assert_eq!(
            (status, message.as_str()),
            (409, "Message ID already used by another sender")
        );
    }
    for instance in &cluster {
        let again = instance
            .app
            .post_as(&ann.session_id, "/api/v1/messages", &with_id(id, "mine"))
            .await;
        assert_eq!(again.status(), 200);
        assert_eq!(
            envelope(again).await["details"],
            first,
            "the author's retry"
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stored = stored_ids(&storage, &conversation);
    assert_eq!(stored.iter().filter(|s| *s == id).count(), 1, "{stored:?}");
}
