//! `GET /api/v1/client-config`: the settings and rules the browser UI works
//! by (ICE servers, embed buttons, limits, upload types, the edit window,
//! signaling types), so the UI follows this server instead of copies of it.

use super::AppState;
use super::envelope::{Envelope, ok};
use super::rules::{ALLOWED_TYPES, SIGNAL_TYPES, SignalType, UploadType};
use crate::config::IceServer;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use chats3_actors::EDIT_WINDOW_MS;
use serde::Serialize;
use utoipa::ToSchema;

/// Browsers may reuse the answer this long: it changes only with a restart.
const CACHE_CONTROL: &str = "public, max-age=60";

/// The settings and rules the browser UI works by.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfig<'a> {
    /// The STUN/TURN servers for calls.
    ice_servers: &'a [IceServer],
    /// What an embedded room shows.
    embed: EmbedButtons,
    /// Input limits.
    limits: Limits,
    /// MIME types that may be uploaded.
    #[schema(value_type = Vec<UploadType>)]
    upload_types: &'static [&'static str],
    /// How long after posting a message its author may edit or delete it.
    edit_window_ms: i64,
    /// Signaling types a client may send.
    #[schema(value_type = Vec<SignalType>)]
    signal_types: &'static [&'static str],
}

/// `[embed]` as the UI reads it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmbedButtons {
    /// Whether an embedded room shows the Leave button.
    show_leave: bool,
    /// Whether an embedded room shows the call buttons.
    show_calls: bool,
}

/// The input limits the UI checks before sending.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Characters of a message body.
    max_message_length: usize,
    /// Bytes of an upload.
    max_upload: usize,
}

/// The settings and rules the browser UI works by.
///
/// Public: the same answer for everyone, no session needed.
#[utoipa::path(
    get,
    path = "/api/v1/client-config",
    tag = "sessions",
    responses((status = 200, description = "The configuration", body = Envelope<ClientConfig>,
        headers(("Cache-Control" = String, description = "`public, max-age=60`"))))
)]
pub async fn client_config(State(state): State<AppState>) -> Response {
    let config = &state.config;
    let mut response = ok(
        "Client configuration",
        ClientConfig {
            ice_servers: &config.webrtc.ice_servers,
            embed: EmbedButtons {
                show_leave: config.embed.show_leave,
                show_calls: config.embed.show_calls,
            },
            limits: Limits {
                max_message_length: config.limits.max_message_len,
                max_upload: config.limits.max_upload,
            },
            upload_types: ALLOWED_TYPES,
            edit_window_ms: EDIT_WINDOW_MS,
            signal_types: SIGNAL_TYPES,
        },
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    response
}
