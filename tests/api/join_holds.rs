//! Joins without a stream hold a participant slot, but cannot keep a room full.

use crate::helpers::{failure, spawn_app_with};
use std::time::Duration;

#[tokio::test]
async fn joins_that_never_open_a_stream_cannot_keep_a_room_full() {
    let app = spawn_app_with(|c| {
        c.limits.max_participants = 3;
        c.limits.join_hold_when_full = Duration::from_secs(2);
    })
    .await;
    let (id, code) = app.create_conversation(None).await;
    let ann = app.join(&id, &code, "Ann").await;
    let mut ann_stream = app.stream(&ann.session_id, None).await;
    ann_stream.opening().await;
    app.join(&id, &code, "Bob").await;
    app.join(&id, &code, "Carol").await;
    let (status, message, _) = failure(app.try_join(&id, &code, "Dan").await).await;
    assert_eq!((status, message.as_str()), (403, "Conversation is full"));
    // Once the holds are older than join_hold_when_full, a join reclaims them;
    // Ann's open stream still counts.
    crate::helpers::eventually("a held slot to be reclaimed", || async {
        app.try_join(&id, &code, "Dan").await.status() == 200
    })
    .await;
    // Carol joined a little after Bob, so her hold may outlive his by the
    // time between their joins.
    crate::helpers::eventually("the second held slot to be reclaimed", || async {
        app.try_join(&id, &code, "Eve").await.status() == 200
    })
    .await;
    let (status, _, _) = failure(app.try_join(&id, &code, "Fay").await).await;
    assert_eq!(status, 403, "Dan and Eve hold their slots while fresh");
    app.stop().await;
}
