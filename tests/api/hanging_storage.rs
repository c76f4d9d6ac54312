//! A store that hangs (the S3 server's process stopped with SIGSTOP)
//! counts as failing: storage calls time out after `operation_timeout`
//! and count as errors, `/ready` answers 503 and comes back by itself once
//! the server resumes, and an upload or create answered with an error
//! leaves nothing stored.

use crate::attachments::{PNG, upload};
use crate::helpers::*;
use crate::s3_server::S3Process;
use crate::storage::use_s3;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_hanging_store_fails_readiness_and_keeps_nothing_answered_with_an_error() {
    let s3 = S3Process::start();
    let details = s3.details();
    let app = spawn_app_with(|c| {
        use_s3(c, &details, "");
        c.storage.operation_timeout = Duration::from_secs(1);
    })
    .await;
    let (id, code) = app.create_conversation(None).await;
    let ann = app.join(&id, &code, "Ann").await;
    eventually("the join notice is stored", || async {
        app.metric("chats3_messages_pending").await == 0
    })
    .await;
    assert_eq!(app.ready_status().await, 200);
    let errors_before = app.metric("chats3_storage_errors_total").await;

    s3.freeze();
    let frozen = Instant::now();
    let response = upload(&app, &ann.session_id, "dot.png", "image/png", PNG.to_vec()).await;
    assert_eq!(response.status(), 503, "an upload to a hung store fails");
    assert!(
        frozen.elapsed() < Duration::from_secs(5),
        "within about the operation timeout, not the 10 s call timeout"
    );
    let created = app
        .post_json(
            "/api/v1/admin/conversations",
            &json!({ "adminPassword": ADMIN_PASSWORD, "conversationId": "ghost" }),
        )
        .await;
    assert_eq!(created.status(), 503, "a create on a hung store fails");
    eventually("/ready reports the hung store", || async {
        app.ready_status().await == 503
    })
    .await;
    assert!(app.metric("chats3_storage_errors_total").await > errors_before);
    assert!(app.metric("chats3_storage_timeouts_total").await >= 2);

    s3.thaw();
    eventually("/ready recovers by itself", || async {
        app.ready_status().await == 200
    })
    .await;
    let attachments = s3.object_path(&format!("conversations/{id}/attachments"));
    let ghost = s3.object_path("conversations/ghost/meta.json");
    let thawed = Instant::now();
    // The writes that timed out may land only now; what was answered 503
    // must be gone again, and stay gone.
    eventually("what was answered 503 is not stored", || async {
        thawed.elapsed() > Duration::from_secs(3)
            && walk(&attachments).is_empty()
            && !ghost.exists()
    })
    .await;
    assert_eq!(
        app.history(&ann.session_id).await.len(),
        1,
        "the room still works"
    );
}

#[tokio::test]
async fn an_upload_answered_with_an_error_while_its_write_was_under_way_is_not_kept() {
    // The store call outlives the request (a long operation timeout): the
    // request gives up after the 10 s call timeout and answers 503, and the
    // write lands when the server resumes. It must be deleted again.
    let s3 = S3Process::start();
    let details = s3.details();
    let app = spawn_app_with(|c| {
        use_s3(c, &details, "");
        c.storage.operation_timeout = Duration::from_secs(60);
    })
    .await;
    let (id, code) = app.create_conversation(None).await;
    let ann = app.join(&id, &code, "Ann").await;
    s3.freeze();
    let response = upload(&app, &ann.session_id, "dot.png", "image/png", PNG.to_vec()).await;
    assert_eq!(response.status(), 503);
    s3.thaw();
    let attachments = s3.object_path(&format!("conversations/{id}/attachments"));
    let thawed = Instant::now();
    eventually("the upload answered 503 is not stored", || async {
        thawed.elapsed() > Duration::from_secs(3) && walk(&attachments).is_empty()
    })
    .await;
}
