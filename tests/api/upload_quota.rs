//! The upload quota of a conversation (`[limits]
//! max_upload_bytes_per_conversation`): uploads past it answer 413 in the
//! envelope, also after a restart (the quota is derived from storage).

use crate::attachments::upload;
use crate::helpers::*;

const QUOTA: u64 = 2_500;

async fn upload_kib(app: &TestApp, session: &str) -> reqwest::Response {
    upload(app, session, "notes.txt", "text/plain", vec![b'a'; 1024]).await
}

#[tokio::test]
async fn a_conversation_holds_no_more_uploads_than_its_quota_across_a_restart() {
    let quota = |c: &mut chats3::config::Config| c.limits.max_upload_bytes_per_conversation = QUOTA;
    let app = spawn_app_with(quota).await;
    let (id, code) = app.create_conversation(None).await;
    let ann = app.join(&id, &code, "Ann").await;
    for _ in 0..2 {
        assert_eq!(upload_kib(&app, &ann.session_id).await.status(), 200);
    }
    let (status, message, _) = failure(upload_kib(&app, &ann.session_id).await).await;
    assert_eq!(status, 413);
    assert!(message.contains("Upload quota"), "{message}");
    let (other, other_code) = app.create_conversation(None).await;
    let bob = app.join(&other, &other_code, "Bob").await;
    assert_eq!(
        upload_kib(&app, &bob.session_id).await.status(),
        200,
        "the quota is per conversation"
    );

    let data_dir = app.stop().await;
    let app = spawn_app_in(data_dir, quota).await;
    let cy = app.join(&id, &code, "Cy").await;
    let (status, _, _) = failure(upload_kib(&app, &cy.session_id).await).await;
    assert_eq!(status, 413, "the quota survives a restart");
}
