//! The registries on the write-ahead log: what they acknowledge comes back
//! after a reopen, and checkpoints let the log shrink.

use crate::domain::Session;
use crate::log_records::LogStart;
use crate::nonces::{ActorNonces, NonceRegistry};
use crate::retention::Owner;
use crate::sessions::{ActorSessions, SessionRegistry};
use crate::settings::Settings;
use crate::time::now_ms;
use crate::wal::{SyncMode, Wal, WalConfig};
use std::path::Path;
use std::time::Duration;

fn open(dir: &Path) -> LogStart {
    let opened = Wal::open(WalConfig {
        dir: dir.to_path_buf(),
        commit_interval: Duration::from_millis(1),
        sync: SyncMode::Write,
        segment_bytes: 4096,
        max_bytes: 64 << 20,
    })
    .unwrap();
    LogStart::open(Some(opened)).unwrap()
}

fn session(id: &str, at: i64) -> Session {
    Session::sample(id, at)
}

/// Both registries started on `logs`, each checking for a checkpoint
/// every `checkpoint_every`.
async fn registries(
    mut logs: LogStart,
    checkpoint_every: Duration,
) -> (ActorSessions, ActorNonces, Wal) {
    let settings = Settings::default();
    // No conversations run here: they need nothing of the log.
    if let Some((_, retention)) = &logs.conversations {
        retention.needs_from(Owner::Conversations, u64::MAX);
    }
    for log in logs.sessions.iter_mut() {
        log.checkpoint_every = checkpoint_every;
    }
    for log in logs.nonces.iter_mut() {
        log.checkpoint_every = checkpoint_every;
    }
    let wal = logs.sessions.as_ref().unwrap().wal.clone();
    let sessions = ActorSessions::start(
        &settings,
        logs.sessions,
        logs.restored.sessions.into_values().collect(),
    )
    .await
    .unwrap();
    let nonces = ActorNonces::start(
        &settings,
        logs.nonces,
        logs.restored.nonces.into_iter().collect(),
    )
    .await
    .unwrap();
    (sessions, nonces, wal)
}

/// Stops both registries and waits until they are gone (with them their
/// handles of the log, so the directory can be opened again).
async fn stop(sessions: ActorSessions, nonces: ActorNonces) {
    let _ = sessions.actor.stop_and_wait(None, None).await;
    let _ = nonces.actor.stop_and_wait(None, None).await;
}

#[tokio::test]
async fn acknowledged_sessions_and_nonces_come_back_and_expired_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let (sessions, nonces, _) = registries(open(dir.path()), Duration::from_secs(3600)).await;
    let now = now_ms();
    sessions.create(session("kept", now)).await.unwrap();
    sessions.create(session("left", now)).await.unwrap();
    let day = 24 * 3600 * 1000;
    sessions
        .create(session("stale", now - 2 * day))
        .await
        .unwrap();
    sessions.delete("left").await.unwrap();
    assert!(nonces.check_and_store("n-1").await.unwrap());
    stop(sessions, nonces).await;

    let (sessions, nonces, _) = registries(open(dir.path()), Duration::from_secs(3600)).await;
    let kept = sessions.get("kept").await.unwrap().expect("kept survives");
    assert_eq!(kept.user_id, "u-kept");
    assert!(
        sessions.get("left").await.unwrap().is_none(),
        "a leave is logged"
    );
    assert!(
        sessions.get("stale").await.unwrap().is_none(),
        "expired stays gone"
    );
    assert!(
        !nonces.check_and_store("n-1").await.unwrap(),
        "a used nonce stays used"
    );
    assert!(nonces.check_and_store("n-2").await.unwrap());
}

#[tokio::test]
async fn checkpoints_let_the_log_shrink_and_keep_what_is_live() {
    let dir = tempfile::tempdir().unwrap();
    let every = Duration::from_millis(20);
    let (sessions, nonces, wal) = registries(open(dir.path()), every).await;
    let now = now_ms();
    for n in 0..300 {
        sessions
            .create(session(&format!("s-{n}"), now))
            .await
            .unwrap();
        if n % 10 != 0 {
            sessions.delete(&format!("s-{n}")).await.unwrap();
        }
    }
    assert!(nonces.check_and_store("early").await.unwrap());
    let written = wal.end();
    assert!(
        written > 20 * 4096,
        "the log spans many segments: {written}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while wal.bytes() > 4 * 4096 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log still holds {} bytes",
            wal.bytes()
        );
        // Appends let the writer finish the releases it was asked for.
        nonces
            .check_and_store(&uuid::Uuid::new_v4().to_string())
            .await
            .unwrap();
        tokio::time::sleep(every).await;
    }
    stop(sessions, nonces).await;
    drop(wal);

    let (sessions, nonces, _) = registries(open(dir.path()), Duration::from_secs(3600)).await;
    for n in 0..300 {
        let found = sessions.get(&format!("s-{n}")).await.unwrap();
        assert_eq!(found.is_some(), n % 10 == 0, "session s-{n}");
    }
    assert!(!nonces.check_and_store("early").await.unwrap());
}

#[tokio::test]
async fn a_session_used_after_a_minute_restarts_its_ttl_from_that_use_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (sessions, nonces, _) = registries(open(dir.path()), Duration::from_secs(3600)).await;
    let hour_ago = now_ms() - 3600 * 1000;
    sessions.create(session("used", hour_ago)).await.unwrap();
    sessions.create(session("idle", hour_ago)).await.unwrap();
    let used_at = sessions.get("used").await.unwrap().unwrap().last_active_at;
    assert!(used_at > hour_ago);
    // The touch is not awaited; a create queued after it is.
    sessions.create(session("barrier", used_at)).await.unwrap();
    stop(sessions, nonces).await;

    let restored = open(dir.path()).restored.sessions;
    assert!(
        restored["used"].last_active_at >= used_at,
        "the logged use is kept"
    );
    assert_eq!(restored["idle"].last_active_at, hour_ago);
}
