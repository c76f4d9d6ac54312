//! Persistence: history survives restarts on fs and S3, SIGTERM flushes a
//! long write-behind interval, and Chats3-written layouts read back.

use crate::attachments::png_round_trip;
use crate::helpers::*;
use crate::s3_server::{ACCESS_KEY, S3Details, S3Server, SECRET_KEY};
use chats3::config::{Backend, Config};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;

pub fn use_s3(config: &mut Config, server: &S3Details, prefix: &str) {
    config.storage.backend = Backend::S3;
    config.storage.s3.bucket = server.bucket.clone();
    config.storage.s3.endpoint = server.endpoint.clone();
    config.storage.s3.force_path_style = true;
    config.storage.s3.access_key = ACCESS_KEY.into();
    config.storage.s3.secret_key = SECRET_KEY.into();
    config.storage.s3.prefix = prefix.into();
}

/// Returns the conversation's id.
async fn restart_keeps_history(adjust: impl Fn(&mut Config) + Clone) -> String {
    let app = spawn_app_with(adjust.clone()).await;
    let (id, code) = app.create_conversation(None).await;
    let ann = app.join(&id, &code, "Ann").await;
    for i in 0..5 {
        app.send(&ann.session_id, &format!("m{i}")).await;
    }
    let before = app.history(&ann.session_id).await;
    let data_dir = app.stop().await;

    let app = spawn_app_in(data_dir, adjust).await;
    let bob = app.join(&id, &code, "Bob").await;
    let after = app.history(&bob.session_id).await;
    assert_eq!(after[..before.len()], before[..]);
    assert_eq!(after.last().unwrap()["body"], "Bob joined the conversation");
    let bodies: Vec<&str> = after.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies[1..6], ["m0", "m1", "m2", "m3", "m4"]);
    id
}

#[tokio::test]
async fn history_survives_a_restart_on_fs() {
    restart_keeps_history(|_| {}).await;
}

#[tokio::test]
async fn history_survives_a_restart_on_s3() {
    let server = S3Server::start().await;
    let (endpoint, bucket) = (server.endpoint.clone(), server.bucket.clone());
    let adjust = move |c: &mut Config| {
        let fake = S3Server::placeholder(&endpoint, &bucket);
        use_s3(c, &fake, "tenant-a/");
        c.actors.flush_max_batch = 1;
    };
    let id = restart_keeps_history(adjust).await;
    let conversations = server.object_path("tenant-a/conversations");
    assert!(
        conversations.is_dir(),
        "objects are under the prefix in the bucket"
    );
    let conversation = format!("tenant-a/conversations/{id}");
    let batches = walk(&server.object_path(&format!("{conversation}/messages")));
    // The first run's six one-message batches (a join and five messages)
    // became one segment at stop; the second run may have added Bob's join.
    assert!(
        batches.len() <= 2,
        "batches were compacted at stop and deleted: {batches:?}"
    );
    let index: Value = serde_json::from_slice(
        &std::fs::read(server.object_path(&format!("{conversation}/history.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(index["segments"].as_array().unwrap().len(), 1, "{index}");
    assert_eq!(index["segments"][0]["count"], 6, "{index}");
}

#[tokio::test]
async fn attachments_work_on_s3_with_presigned_urls() {
    let server = S3Server::start().await;
    let app = spawn_app_with(|c| use_s3(c, &server.details(), "")).await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    png_round_trip(&app, &joined[0].session_id).await;
}

#[tokio::test]
async fn an_s3_outage_loses_nothing_and_back_pressure_answers_503() {
    let mut server = S3Server::start().await;
    let details = server.details();
    let app = spawn_app_with(|c| {
        use_s3(c, &details, "");
        c.actors.max_pending = 5;
    })
    .await;
    let (id, code) = app.create_conversation(None).await;
    let ann = app.join(&id, &code, "Ann").await;
    eventually("join flushed", || async {
        app.metric("chats3_messages_pending").await == 0
    })
    .await;
    server.stop();
    for i in 0..5 {
        app.send(&ann.session_id, &format!("during outage {i}"))
            .await;
    }
    let response = app
        .post_as(
            &ann.session_id,
            "/api/v1/messages",
            &json!({ "body": "one too many", "clientTimestamp": "2025-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    eventually("ready reports degraded", || async {
        app.client
            .get(app.url("/ready"))
            .send()
            .await
            .unwrap()
            .status()
            == 503
    })
    .await;
    assert_eq!(
        app.history(&ann.session_id).await.len(),
        6,
        "accepted messages stay readable"
    );

    server.restart().await;
    eventually("backlog flushed", || async {
        app.metric("chats3_messages_pending").await == 0
    })
    .await;
    assert_eq!(
        app.client
            .get(app.url("/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let data_dir = app.stop().await;
    let app = spawn_app_in(data_dir, |c| use_s3(c, &details, "")).await;
    let bob = app.join(&id, &code, "Bob").await;
    let bodies: Vec<String> = app
        .history(&bob.session_id)
        .await
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bodies.len(), 7);
    assert_eq!(
        bodies[1..6],
        (0..5)
            .map(|i| format!("during outage {i}"))
            .collect::<Vec<_>>()[..]
    );
}

/// Writes a conversation the way Chats3 lays it out: pretty meta.json with
/// `lastAccessedAt`, one message per file named by `Date.now()`, no `seq`.
fn chats3_layout(root: &std::path::Path, id: &str) -> Vec<String> {
    let base = root.join(format!("conversations/{id}"));
    std::fs::create_dir_all(base.join("messages/2025-01-01")).unwrap();
    std::fs::create_dir_all(base.join("messages/2025-01-02")).unwrap();
    let meta = json!({
        "conversationId": id,
        "joinCode": "ABC234",
        "status": "active",
        "createdAt": "2025-01-01T00:00:00.000Z",
        "closedAt": null,
        "lastAccessedAt": 1735689600000u64,
    });
    std::fs::write(
        base.join("meta.json"),
        serde_json::to_string_pretty(&meta).unwrap(),
    )
    .unwrap();
    std::fs::write(base.join("reactions.json"), r#"{"m-1":{"👍":["u-2"]}}"#).unwrap();
    let times = [
        ("2025-01-01", 1_735_700_000_000i64, "first"),
        ("2025-01-01", 1_735_700_000_500, "second"),
        ("2025-01-02", 1_735_800_000_000, "third"),
    ];
    let mut bodies = Vec::new();
    for (index, (day, ms, body)) in times.iter().enumerate() {
        let message = json!({
            "messageId": format!("m-{index}"),
            "conversationId": id,
            "senderUserId": "u-1",
            "senderDisplayName": "Old Timer",
            "senderAvatarUrl": null,
            "senderRole": "user",
            "type": "text",
            "body": body,
            "clientTimestamp": chats3_actors::time::iso_from_ms(*ms),
            "serverReceivedAt": chats3_actors::time::iso_from_ms(*ms),
        });
        let name = format!("{ms}-{}.ndjson", uuid::Uuid::new_v4());
        std::fs::write(
            base.join(format!("messages/{day}/{name}")),
            serde_json::to_string(&message).unwrap(),
        )
        .unwrap();
        bodies.push(body.to_string());
    }
    bodies
}

async fn reads_chats3_layout(app: &TestApp, id: &str) {
    let joined = app.join(id, "ABC234", "Newcomer").await;
    let history = app.history(&joined.session_id).await;
    let bodies: Vec<&str> = history
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        [
            "first",
            "second",
            "third",
            "Newcomer joined the conversation"
        ]
    );
    assert_eq!(history[0]["senderAvatarUrl"], Value::Null);
    let reactions = envelope(app.get_as(&joined.session_id, "/api/v1/reactions").await).await;
    assert_eq!(reactions["details"], json!({"m-1": {"👍": ["u-2"]}}));
    let conversation = envelope(app.get_as(&joined.session_id, "/api/v1/conversation").await).await;
    assert_eq!(conversation["details"]["joinCode"], "ABC234");
}

#[tokio::test]
async fn a_directory_written_by_chats3_reads_back_in_order() {
    let data_dir = tempfile::tempdir().unwrap();
    chats3_layout(data_dir.path(), "legacy");
    let app = spawn_app_in(data_dir, |_| {}).await;
    reads_chats3_layout(&app, "legacy").await;
}

#[tokio::test]
async fn a_bucket_written_by_chats3_reads_back_in_order() {
    let server = S3Server::start().await;
    chats3_layout(&server.root.path().join(&server.bucket), "legacy-s3");
    let app = spawn_app_with(|c| use_s3(c, &server.details(), "")).await;
    reads_chats3_layout(&app, "legacy-s3").await;
}

/// The service as a separate process, so it can receive SIGTERM.
struct ChildServer {
    child: std::process::Child,
    address: String,
}

fn start_binary(data_dir: &std::path::Path) -> ChildServer {
    let (child, address) = crate::helpers::spawn_binary(
        &[
            ("CHATS3_STORAGE__FS_ROOT", &data_dir.to_string_lossy()),
            ("CHATS3_ACTORS__FLUSH_INTERVAL", "1h"),
        ],
        Stdio::inherit(),
    );
    ChildServer { child, address }
}

#[tokio::test]
async fn sigterm_flushes_a_long_write_behind_interval() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut server = start_binary(data_dir.path());
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.address);
    let created: Value = client
        .post(url("/api/v1/admin/conversations"))
        .json(&json!({ "adminPassword": ADMIN_PASSWORD, "conversationId": "durable" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = created["details"]["joinCode"].as_str().unwrap().to_owned();
    let joined: Value = client
        .post(url("/api/v1/join"))
        .json(&json!({ "conversationId": "durable", "joinCode": code, "displayName": "Ann" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = joined["details"]["sessionId"].as_str().unwrap().to_owned();
    let stream = client
        .get(url(&format!("/api/v1/signaling?sessionId={session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    for i in 0..25 {
        let response = client
            .post(url("/api/v1/messages"))
            .header("x-session-id", &session)
            .json(&json!({ "body": format!("m{i}"), "clientTimestamp": "2025-01-01T00:00:00Z" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let batches = data_dir.path().join("conversations/durable/messages");
    let stored_before = walk(&batches).len();
    assert_eq!(
        stored_before, 0,
        "nothing is written before the interval or a shutdown"
    );

    let status = crate::helpers::terminate(&mut server.child, Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}");
    drop(stream);

    let app = spawn_app_in(data_dir, |_| {}).await;
    let bob = app.join("durable", &code, "Bob").await;
    let bodies: Vec<String> = app
        .history(&bob.session_id)
        .await
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = std::iter::once("Ann joined the conversation".to_owned())
        .chain((0..25).map(|i| format!("m{i}")))
        .chain(std::iter::once("Bob joined the conversation".to_owned()))
        .collect();
    assert_eq!(bodies, expected);
}

/// The configured store of `config`, as the server opens it.
async fn open_storage(config: &Config) -> chats3::storage::Storage {
    let links = std::sync::Arc::new(chats3::storage::links::DownloadLinks::new(
        b"key".to_vec(),
        "http://localhost".into(),
    ));
    chats3::storage::Storage::open(&config.storage, true, links)
        .await
        .unwrap()
}

/// A conditional write replaces only the version read; one behind
/// another writer (or creating what exists) replaces nothing, and is
/// counted as `changed`, not as a storage failure.
async fn conditional_writes_replace_only_what_was_read(storage: &chats3::storage::Storage) {
    use bytes::Bytes;
    use chats3_actors::store::{StoreError, Version};
    let store = storage.store();
    let key = "conversations/fenced/history.json";
    let json = "application/json";
    assert_eq!(
        store.get_versioned(key).await.unwrap(),
        (None, Version::Absent)
    );
    let first = store
        .put_if(key, Bytes::from_static(b"1"), json, &Version::Absent)
        .await
        .unwrap();
    let created_again = store
        .put_if(key, Bytes::from_static(b"again"), json, &Version::Absent)
        .await;
    assert!(
        matches!(created_again, Err(StoreError::Changed)),
        "{created_again:?}"
    );
    let (body, read) = store.get_versioned(key).await.unwrap();
    assert_eq!((body.as_deref(), &read), (Some(&b"1"[..]), &first));

    let second = store
        .put_if(key, Bytes::from_static(b"2"), json, &read)
        .await
        .unwrap();
    let stale = store
        .put_if(key, Bytes::from_static(b"stale"), json, &read)
        .await;
    assert!(matches!(stale, Err(StoreError::Changed)), "{stale:?}");
    assert_eq!(
        store.get_versioned(key).await.unwrap(),
        (Some(Bytes::from_static(b"2")), second)
    );

    let metrics = storage.metrics();
    assert_eq!((metrics.errors, metrics.failing), (0, false));
    let mut registry = prometheus_client::registry::Registry::default();
    storage.instruments().register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(r#"chats3_storage_requests_total{operation="put",outcome="changed"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn conditional_writes_replace_only_what_was_read_on_fs() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open_storage(&test_config(dir.path())).await;
    conditional_writes_replace_only_what_was_read(&storage).await;
}

#[tokio::test]
async fn conditional_writes_replace_only_what_was_read_on_s3() {
    let server = S3Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    use_s3(&mut config, &server.details(), "fenced/");
    let storage = open_storage(&config).await;
    conditional_writes_replace_only_what_was_read(&storage).await;
}
