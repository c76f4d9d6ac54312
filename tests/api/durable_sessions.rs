//! Sessions and ticket nonces on the write-ahead log: the real binary is
//! killed (SIGKILL, or stopped with SIGTERM) and started again on the same
//! data directory; a session from before still works and a ticket used
//! before is still refused. With the log off a restart ends every session.

use crate::embed::ticket;
use crate::helpers::*;
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use tempfile::TempDir;

/// How the first process ends.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// `kill -9`.
    Kill,
    /// SIGTERM, a graceful shutdown.
    Terminate,
}

/// The binary on `data_dir` (its log in `<data_dir>/wal` unless `envs`
/// say otherwise) with the integrator of `config`, and the helpers of a
/// test app.
fn start(data_dir: TempDir, config: &TempDir, envs: &[(&str, &str)]) -> (KillOnDrop, TestApp) {
    let root = data_dir.path().to_string_lossy().into_owned();
    let config = config.path().join("chats3.toml");
    let config = config.to_string_lossy();
    let mut all = vec![
        ("CHATS3_STORAGE__FS_ROOT", root.as_str()),
        ("CHATS3_CONFIG", &*config),
    ];
    all.extend_from_slice(envs);
    let (child, address) = spawn_binary(&all, Stdio::inherit());
    (KillOnDrop(child), TestApp::of_process(address, data_dir))
}

/// Ends the process as `stop` says and hands back its data directory.
async fn stop(mut process: KillOnDrop, app: TestApp, stop: Stop) -> TempDir {
    match stop {
        Stop::Kill => {
            process.0.kill().unwrap();
            process.0.wait().unwrap();
        }
        Stop::Terminate => {
            let status = terminate(&mut process.0, Duration::from_secs(30)).await;
            assert!(status.success(), "{status:?}");
        }
    }
    app.data_dir
}

/// What a test did before the restart.
struct Before {
    conversation: String,
    joined: Joined,
    embedded_session: String,
    ticket: (String, String),
}

/// Joins with a code and enters with a ticket.
async fn sessions_and_a_used_ticket(app: &TestApp) -> Before {
    let (conversation, code) = app.create_conversation(None).await;
    let joined = app.join(&conversation, &code, "Ann").await;
    let (text, signature) = ticket(&conversation, |_| {});
    let embedded = envelope(
        app.post_json(
            "/api/v1/embed",
            &json!({ "ticket": text, "signature": signature }),
        )
        .await,
    )
    .await;
    let embedded_session = embedded["details"]["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    Before {
        conversation,
        joined,
        embedded_session,
        ticket: (text, signature),
    }
}

async fn a_restart_keeps_sessions_and_used_nonces(how: Stop) {
    let config = integrator_config();
    let (process, app) = start(tempfile::tempdir().unwrap(), &config, &[]);
    let before = sessions_and_a_used_ticket(&app).await;
    let data_dir = stop(process, app, how).await;

    let (_process, app) = start(data_dir, &config, &[]);
    let session = envelope(
        app.get_as(&before.joined.session_id, "/api/v1/session")
            .await,
    )
    .await;
    assert_eq!(session["details"]["userId"], before.joined.user_id.as_str());
    assert_eq!(
        session["details"]["conversationId"],
        before.conversation.as_str()
    );
    let embedded = envelope(
        app.get_as(&before.embedded_session, "/api/v1/session")
            .await,
    )
    .await;
    assert_eq!(embedded["details"]["userId"], "ext-user-1");
    let sent = app
        .send(&before.joined.session_id, "after the restart")
        .await;
    assert_eq!(sent["body"], "after the restart");

    let (text, signature) = &before.ticket;
    let replay = app
        .post_json(
            "/api/v1/embed",
            &json!({ "ticket": text, "signature": signature }),
        )
        .await;
    let (status, message, _) = failure(replay).await;
    assert_eq!(
        (status, message.as_str()),
        (403, "Nonce already used (replay attack)"),
        "after {how:?}"
    );
}

#[tokio::test]
async fn a_session_and_a_used_nonce_survive_a_kill_9() {
    a_restart_keeps_sessions_and_used_nonces(Stop::Kill).await;
}

#[tokio::test]
async fn a_session_and_a_used_nonce_survive_a_graceful_restart() {
    a_restart_keeps_sessions_and_used_nonces(Stop::Terminate).await;
}

#[tokio::test]
async fn with_the_log_off_a_restart_ends_every_session() {
    let off = [("CHATS3_DURABILITY__WAL_DIR", "")];
    let config = integrator_config();
    let (process, app) = start(tempfile::tempdir().unwrap(), &config, &off);
    let before = sessions_and_a_used_ticket(&app).await;
    let data_dir = stop(process, app, Stop::Terminate).await;
    assert!(!data_dir.path().join("wal").exists(), "no log is written");

    let (_process, app) = start(data_dir, &config, &off);
    let (status, _, _) = failure(
        app.get_as(&before.joined.session_id, "/api/v1/session")
            .await,
    )
    .await;
    assert_eq!(status, 401);
}
