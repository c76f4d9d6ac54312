//! `GET /api/v1/client-config`: what the browser UI reads instead of
//! keeping copies of the server's settings and rules.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn the_client_config_exposes_ice_servers_and_embed_buttons() {
    let app = spawn_app_with(|c| {
        c.webrtc.ice_servers = vec![chats3::config::IceServer {
            urls: vec!["stun:127.0.0.1:3478".into()],
            username: None,
            credential: None,
        }];
        c.embed.show_calls = true;
    })
    .await;
    let body = envelope(
        app.client
            .get(app.url("/api/v1/client-config"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        body["details"]["iceServers"],
        json!([{ "urls": ["stun:127.0.0.1:3478"] }])
    );
    assert_eq!(
        body["details"]["embed"],
        json!({ "showLeave": false, "showCalls": true })
    );
    assert_eq!(body["details"]["limits"]["maxMessageLength"], 10_000);
}

#[tokio::test]
async fn the_client_config_ships_upload_types_edit_window_and_signal_types_without_a_session() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/client-config"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cache.contains("max-age="), "{cache}");
    let body = envelope(response).await;
    assert_eq!(body["success"], true);
    let words = |text: &str| json!(text.split_whitespace().collect::<Vec<_>>());
    assert_eq!(
        body["details"]["uploadTypes"],
        words(
            "image/jpeg image/png image/gif image/webp application/pdf text/plain application/msword \
             application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        )
    );
    assert_eq!(body["details"]["editWindowMs"], 5 * 60 * 1000);
    assert_eq!(
        body["details"]["signalTypes"],
        words(
            "peer-join peer-leave offer answer ice-candidate new-message end-call typing-start \
             typing-stop message-read presence-update message-edited message-deleted \
             reaction-added reaction-removed"
        )
    );
}
