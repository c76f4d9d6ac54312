//! `GET /api/v1/ws[?cursor=]`: the event stream and the commands over one
//! WebSocket. Before the upgrade the request is checked like the SSE
//! stream's (session, then the handshake, then the stream is opened, each
//! failure an envelope); after it, [`connection`] runs the socket.
//!
//! - [`handshake`]: the upgrade request checked, the 101 answer;
//! - [`frames`]: what the server sends, one text frame per event;
//! - [`commands`]: what the client sends, answered as its HTTP route
//!   answers;
//! - [`connection`]: the socket's life (events out, commands in, pings,
//!   bounds, the close).

mod commands;
mod connection;
mod frames;
pub mod handshake;

use super::counters::Transport;
use super::error::ApiResult;
use super::event_stream::feed::Feed;
use super::extract::CurrentSession;
use super::query::ResumeFrom;
use super::signaling::subscribe;
use super::state::AppState;
use axum::extract::State;
use commands::Commands;
use handshake::Upgrade;

/// The conversation's events over WebSocket, and commands sent up it.
///
/// The session as for the SSE stream (header, `sessionId` query, cookie);
/// no or a bad session answers 401 in the envelope before any upgrade.
/// `?cursor=N` resumes like `Last-Event-ID: N`. A socket counts as an open
/// stream (presence, the participant limit, `peer-leave`) like SSE. After
/// the upgrade the server sends one `WsServerFrame` per event (the opening
/// frames included) with SSE's filtering, order, replay and no-echo rules;
/// the client sends `WsCommand`s, each answered by a `WsAck`. The server
/// pings every `heartbeat_interval` and closes a socket that has not
/// answered within two.
#[utoipa::path(
    get,
    path = "/api/v1/ws",
    tag = "events",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    params(
        ("cursor" = Option<String>, Query, description = "Resume after this event id"),
        ("Upgrade" = String, Header, description = "`websocket`"),
        ("Sec-WebSocket-Version" = String, Header, description = "`13`"),
        ("Sec-WebSocket-Key" = String, Header, description = "The handshake key"),
    ),
    responses(
        (status = 101, description = "Switching Protocols: then `WsServerFrame`s down and `WsCommand`s up, as text frames"),
        (status = 400, description = "Not a WebSocket handshake", body = super::error::ErrorEnvelope),
    )
)]
pub async fn open(
    State(state): State<AppState>,
    session: CurrentSession,
    ResumeFrom(resume_from): ResumeFrom,
    upgrade: Upgrade,
) -> ApiResult {
    let session_id = session.0.session_id.clone();
    let subscription = subscribe(&state, session, resume_from).await?;
    let feed = Feed::new(
        subscription,
        state.config.server.heartbeat_interval,
        state.counters.clone(),
        Transport::Ws,
    );
    let stream_id = feed.viewer().stream_id;
    let commands = Commands::new(state, session_id, stream_id, upgrade.client);
    let task = connection::run(upgrade.pending, feed, commands);
    tokio::spawn(task);
    Ok(upgrade.accepted)
}
