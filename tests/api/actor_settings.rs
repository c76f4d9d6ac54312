//! Actor settings set in the configuration reach the actors.

use crate::helpers::{failure, spawn_app_with};
use std::time::Duration;

#[tokio::test]
async fn a_session_unused_for_session_ttl_ends_and_each_request_restarts_it() {
    let ttl = Duration::from_secs(2);
    let app = spawn_app_with(|c| c.actors.session_ttl = ttl).await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    // Used every second, the session outlives its TTL from the join.
    for _ in 0..3 {
        tokio::time::sleep(ttl / 2).await;
        app.history(session).await;
    }
    tokio::time::sleep(ttl + Duration::from_millis(500)).await;
    let (status, message, _) = failure(app.get_as(session, "/api/v1/messages").await).await;
    assert_eq!((status, message.as_str()), (401, "Invalid session"));
    app.stop().await;
}

#[tokio::test]
async fn past_max_sessions_a_join_answers_503_with_retry_after() {
    let app = spawn_app_with(|c| c.actors.max_sessions = 1).await;
    let (id, code) = app.create_conversation(None).await;
    app.join(&id, &code, "Ann").await;
    let response = app.try_join(&id, &code, "Bob").await;
    let retry_after = response.headers().get("retry-after").cloned();
    let (status, message, _) = failure(response).await;
    assert_eq!((status, message.as_str()), (503, "Too many sessions"));
    assert_eq!(retry_after.unwrap(), "60");
    app.stop().await;
}
