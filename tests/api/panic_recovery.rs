//! A conversation actor that panics mid-load (the `fault-injection`
//! feature's admin route makes it fail) is restarted by its supervisor
//! without losing anything acknowledged: with the write-ahead log on and
//! `flush_interval = 1h`, every message, edit and reaction answered 200 is
//! still there after three failures, and stored once after a graceful
//! stop. Run by `.ci/run` with `cargo test --features fault-injection`.

use crate::durable_messages::{Acknowledged, assert_acknowledged_there, start, stored_ids, write};
use crate::helpers::*;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Writers posting at once during the load.
const WRITERS: usize = 3;

#[tokio::test]
async fn a_conversation_that_panics_mid_load_loses_nothing_acknowledged() {
    let envs = [("CHATS3_ACTORS__FLUSH_INTERVAL", "1h")];
    let (mut process, app) = start(tempfile::tempdir().unwrap(), &envs);
    let (conversation, people) = app.room_with(&["Ann", "Bob", "Cyd"]).await;
    let app = Arc::new(app);
    let acked = Arc::new(Mutex::new(Acknowledged {
        messages: vec![Vec::new(); WRITERS],
        ..Acknowledged::default()
    }));
    let stop = tokio_util::sync::CancellationToken::new();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (app, session, acked, stop) = (
                app.clone(),
                people[w].session_id.clone(),
                acked.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                tokio::select! {
                    () = write(app, session, w, acked) => {}
                    () = stop.cancelled() => {}
                }
            })
        })
        .collect();
    let count = || acked.lock().unwrap().message_count();
    for failure in 1..=3 {
        let before = count();
        eventually("the load goes on", || {
            let now = count();
            async move { now >= before + 100 }
        })
        .await;
        let crashed = app
            .post_json(
                &format!("/api/v1/admin/conversations/{conversation}/crash"),
                &json!({ "adminPassword": ADMIN_PASSWORD }),
            )
            .await;
        assert_eq!(crashed.status(), 200, "failure {failure}");
    }
    eventually("the load goes on after the last failure", || {
        let now = count();
        async move { now >= 400 }
    })
    .await;
    stop.cancel();
    for writer in writers {
        writer.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());

    assert_acknowledged_there(&app, &people[0].session_id, &acked).await;
    println!(
        "after 3 failures: {} messages, {} edits, {} reactions acknowledged, all there",
        acked.message_count(),
        acked.edits.len(),
        acked.reactions.len()
    );

    let status = terminate(&mut process.0, Duration::from_secs(60)).await;
    assert!(status.success(), "{status:?}");
    let stored = stored_ids(app.data_dir.path(), &conversation);
    for id in acked.messages.iter().flatten() {
        assert_eq!(
            stored.iter().filter(|s| *s == id).count(),
            1,
            "{id} stored once"
        );
    }
}
