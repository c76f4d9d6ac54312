//! `GET /api/v1/client-config`: the settings and rules the browser UI works
//! by (ICE servers, embed buttons, limits, upload types, the edit window,
//! signaling types), so the UI follows this server instead of copies of it.

use super::AppState;
use super::envelope::ok;
use super::rules::{ALLOWED_TYPES, SIGNAL_TYPES};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use chats3_actors::EDIT_WINDOW_MS;
use serde_json::json;

/// Browsers may reuse the answer this long: it changes only with a restart.
const CACHE_CONTROL: &str = "public, max-age=60";

/// Public: the same answer for everyone, no session needed.
pub async fn client_config(State(state): State<AppState>) -> Response {
    let config = &state.config;
    let mut response = ok(
        "Client configuration",
        json!({
            "iceServers": config.webrtc.ice_servers,
            "embed": { "showLeave": config.embed.show_leave, "showCalls": config.embed.show_calls },
            "limits": { "maxMessageLength": config.limits.max_message_len, "maxUpload": config.limits.max_upload },
            "uploadTypes": ALLOWED_TYPES,
            "editWindowMs": EDIT_WINDOW_MS,
            "signalTypes": SIGNAL_TYPES,
        }),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    response
}
