//! Integrator-created rooms (`[[integrators]] auto_create`): with it, a
//! valid ticket or signed system message for a conversation that does not
//! exist creates it (active, a generated join code), durably (a `kill -9`
//! right after keeps it); without it both are refused as before; a closed
//! conversation is never reopened either way.

use crate::embed::ticket;
use crate::helpers::*;
use crate::system_message::signed;
use chats3::config::Config;
use chats3_actors::time::{iso_from_ms, now_ms};
use serde_json::{Value, json};
use std::process::Stdio;

fn auto_create(config: &mut Config) {
    config.integrators[0].auto_create = true;
}

async fn embed(app: &TestApp, conversation: &str) -> reqwest::Response {
    let (text, signature) = ticket(conversation, |_| {});
    app.post_json(
        "/api/v1/embed",
        &json!({ "ticket": text, "signature": signature }),
    )
    .await
}

async fn system_message(app: &TestApp, conversation: &str, body: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/system-message",
        &signed(
            conversation,
            body,
            &iso_from_ms(now_ms()),
            INTEGRATOR_SECRET,
        ),
    )
    .await
}

/// The admin view of a conversation: its status and details.
async fn admin_view(app: &TestApp, conversation: &str) -> (u16, Value) {
    let response = app
        .post_json(
            &format!("/api/v1/admin/conversations/{conversation}"),
            &json!({ "adminPassword": ADMIN_PASSWORD }),
        )
        .await;
    let status = response.status().as_u16();
    (status, envelope(response).await["details"].clone())
}

/// Checks a conversation the integrator created: active, a fresh join
/// code that works, stored.
async fn is_a_fresh_active_room(app: &TestApp, conversation: &str) {
    let (status, meta) = admin_view(app, conversation).await;
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["conversationId"], conversation);
    assert_eq!(meta["status"], "active");
    assert_eq!(meta["closedAt"], Value::Null);
    let code = meta["joinCode"].as_str().unwrap();
    assert_eq!(code.len(), 6);
    assert!(
        code.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    );
    assert_eq!(
        app.stored_join_code(conversation),
        code,
        "meta.json is stored"
    );
    app.join(conversation, code, "Walk-in").await;
}

#[tokio::test]
async fn with_auto_create_a_ticket_creates_the_missing_conversation() {
    let app = spawn_app_with(auto_create).await;
    let response = embed(&app, "made-by-ticket").await;
    assert_eq!(response.status(), 200);
    let session = envelope(response).await["details"]["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let conversation = envelope(app.get_as(&session, "/api/v1/conversation").await).await;
    assert_eq!(conversation["details"]["status"], "active");
    is_a_fresh_active_room(&app, "made-by-ticket").await;
    let sent = app.send(&session, "hello from the integrator's user").await;
    assert_eq!(sent["conversationId"], "made-by-ticket");

    let again = embed(&app, "made-by-ticket").await;
    assert_eq!(again.status(), 200, "a second ticket enters the same room");
    let (_, meta) = admin_view(&app, "made-by-ticket").await;
    assert_eq!(
        meta["joinCode"],
        app.stored_join_code("made-by-ticket").as_str(),
        "the room is not created twice"
    );
}

#[tokio::test]
async fn with_auto_create_a_system_message_creates_the_missing_conversation() {
    let app = spawn_app_with(auto_create).await;
    let response = system_message(&app, "made-by-message", "Order #7 placed").await;
    assert_eq!(response.status(), 200);
    let message = envelope(response).await["details"].clone();
    assert_eq!(message["conversationId"], "made-by-message");
    assert_eq!(message["senderRole"], "system");
    is_a_fresh_active_room(&app, "made-by-message").await;
    let session = envelope(embed(&app, "made-by-message").await).await["details"]["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let history = app.history(&session).await;
    assert_eq!(history[0], message, "the message is the room's first");
}

#[tokio::test]
async fn without_auto_create_tickets_and_system_messages_for_missing_rooms_are_refused() {
    let app = spawn_app().await;
    let (status, message, _) = failure(embed(&app, "never-made").await).await;
    assert_eq!((status, message.as_str()), (404, "Conversation not found"));
    let (status, message, _) = failure(system_message(&app, "never-made", "hi").await).await;
    assert_eq!((status, message.as_str()), (404, "Conversation not found"));
    assert_eq!(admin_view(&app, "never-made").await.0, 404);
    assert!(
        !app.data_dir
            .path()
            .join("conversations/never-made")
            .exists()
    );
}

#[tokio::test]
async fn a_closed_conversation_is_never_reopened_by_an_integrator() {
    let app = spawn_app_with(auto_create).await;
    let (id, code) = app.create_conversation(Some("closed-room")).await;
    let close = app
        .post_json(
            &format!("/api/v1/admin/conversations/{id}/close"),
            &json!({ "adminPassword": ADMIN_PASSWORD }),
        )
        .await;
    assert_eq!(close.status(), 200);
    let (_, closed) = admin_view(&app, &id).await;

    let (status, message, _) = failure(embed(&app, &id).await).await;
    assert_eq!((status, message.as_str()), (403, "Conversation is closed"));
    let (status, message, _) = failure(system_message(&app, &id, "reopen?").await).await;
    assert_eq!((status, message.as_str()), (403, "Conversation is closed"));

    let (status, after) = admin_view(&app, &id).await;
    assert_eq!(status, 200);
    assert_eq!(after, closed, "still closed, same code and times");
    assert_eq!(after["joinCode"], code.as_str());
}

/// A config file naming the test integrator with `auto_create`.
fn auto_create_config() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[[integrators]]\nid = \"{INTEGRATOR_ID}\"\nsecret = \"{INTEGRATOR_SECRET}\"\n\
         allowed_origins = [\"{INTEGRATOR_ORIGIN}\"]\nauto_create = true\n"
    );
    std::fs::write(dir.path().join("chats3.toml"), text).unwrap();
    dir
}

fn start(data_dir: tempfile::TempDir, config: &tempfile::TempDir) -> (KillOnDrop, TestApp) {
    let root = data_dir.path().to_string_lossy().into_owned();
    let config = config.path().join("chats3.toml");
    let config = config.to_string_lossy();
    let envs = [
        ("CHATS3_STORAGE__FS_ROOT", root.as_str()),
        ("CHATS3_CONFIG", &*config),
        // Nothing reaches storage by itself: only what is durable stays.
        ("CHATS3_ACTORS__FLUSH_INTERVAL", "1h"),
    ];
    let (child, address) = spawn_binary(&envs, Stdio::inherit());
    (KillOnDrop(child), TestApp::of_process(address, data_dir))
}

#[tokio::test]
async fn rooms_an_integrator_created_survive_a_kill_9_with_the_log_on() {
    let config = auto_create_config();
    let (mut process, app) = start(tempfile::tempdir().unwrap(), &config);
    let sent =
        envelope(system_message(&app, "durable-by-message", "first words").await).await["details"]
            .clone();
    let session = envelope(embed(&app, "durable-by-ticket").await).await["details"]["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let codes: Vec<Value> = [
        admin_view(&app, "durable-by-message").await.1,
        admin_view(&app, "durable-by-ticket").await.1,
    ]
    .into_iter()
    .map(|meta| meta["joinCode"].clone())
    .collect();
    process.0.kill().unwrap();
    process.0.wait().unwrap();

    let (_process, app) = start(app.data_dir, &config);
    for (room, code) in ["durable-by-message", "durable-by-ticket"]
        .iter()
        .zip(&codes)
    {
        let (status, meta) = admin_view(&app, room).await;
        assert_eq!(status, 200, "{room} is still there");
        assert_eq!(meta["status"], "active");
        assert_eq!(&meta["joinCode"], code, "{room} keeps its code");
    }
    let conversation = envelope(app.get_as(&session, "/api/v1/conversation").await).await;
    assert_eq!(
        conversation["details"]["conversationId"],
        "durable-by-ticket"
    );
    let reader = envelope(embed(&app, "durable-by-message").await).await["details"]["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.history(&reader).await[0], sent);
}
