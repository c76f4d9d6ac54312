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

use super::error::ApiResult;
use super::event_stream::feed::Feed;
use super::extract::CurrentSession;
use super::query::ResumeFrom;
use super::signaling::subscribe;
use super::state::AppState;
use axum::extract::State;
use commands::Commands;
use handshake::Upgrade;

/// `GET /api/v1/ws[?cursor=]` with optional `Last-Event-ID`.
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
    );
    let commands = Commands::new(state, session_id, upgrade.client);
    let pending = upgrade.pending;
    let task = async move {
        match pending.connection().await {
            Ok(socket) => connection::run(socket, feed, commands).await,
            Err(e) => tracing::debug!(error = %e, "the WebSocket upgrade did not complete"),
        }
    };
    tokio::spawn(task);
    Ok(upgrade.accepted)
}
