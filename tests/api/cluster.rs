//! Several instances on one Redis (`[cluster] backend = "redis"`): three
//! real chats3 processes share a real `redis-server` and one storage
//! directory. What a request did on one instance holds on the others.

use crate::embed::ticket;
use crate::helpers::*;
use crate::redis_server::RedisServer;
use serde_json::json;
use std::process::Stdio;
use tempfile::TempDir;

/// One instance of a cluster: its process and the helpers of a test app.
struct Instance {
    _process: KillOnDrop,
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
                _process: KillOnDrop(child),
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
