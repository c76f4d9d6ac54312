//! `/api/v1/signaling`: the event stream (`GET`, Server-Sent Events) and
//! the signaling relay (`POST`).

use super::envelope::ok;
use super::error::{ApiResult, AppError};
use super::event_stream;
use super::extract::{CurrentSession, JsonBody};
use super::query::ResumeFrom;
use super::rules::SIGNAL_TYPES;
use super::state::AppState;
use super::validate::{Fields, Text};
use axum::extract::State;
use chats3_actors::{StreamOpen, Subscription};
use serde_json::{Value, json};

/// Largest `data` of a signaling event (an SDP offer is a few KiB), which
/// bounds the replay buffer and every subscriber queue.
pub const MAX_SIGNAL_DATA: usize = 64 * 1024;

/// `POST /api/v1/signaling`
pub async fn signal(
    State(state): State<AppState>,
    session: CurrentSession,
    JsonBody(body): JsonBody,
) -> ApiResult {
    relay(&state, &session, body).await
}

/// Validates and relays a signaling event: `POST /api/v1/signaling` and
/// the WebSocket's `signal`.
pub async fn relay(state: &AppState, session: &CurrentSession, body: Value) -> ApiResult {
    let mut fields = Fields::of(&body)?;
    let kind = fields.one_of("type", SIGNAL_TYPES, None);
    let to = fields.optional_text("toUserId", Text::len(0, 200));
    let data = fields.json("data", MAX_SIGNAL_DATA);
    let (kind, to, data) = fields.finish((kind, to, data))?;
    let to = to.filter(|t| !t.is_empty());
    let event_id = session
        .conversation(state)
        .signal(&session.0.user_id, kind, to.as_deref(), &data)
        .await?;
    Ok(ok("Signaling event added", json!({ "eventId": event_id })))
}

/// `GET /api/v1/signaling[?cursor=]` with optional `Last-Event-ID`.
pub async fn stream(
    State(state): State<AppState>,
    session: CurrentSession,
    ResumeFrom(resume_from): ResumeFrom,
) -> ApiResult {
    let subscription = subscribe(&state, session, resume_from).await?;
    Ok(event_stream::response(
        subscription,
        state.config.server.heartbeat_interval,
        state.counters.clone(),
    ))
}

/// Opens a stream of the session's conversation, resumed after
/// `resume_from`: the SSE stream's and the WebSocket's, counted alike.
pub async fn subscribe(
    state: &AppState,
    session: CurrentSession,
    resume_from: Option<String>,
) -> Result<Subscription, AppError> {
    let conversation = session.conversation(state);
    let CurrentSession(session) = session;
    let subscription = conversation
        .subscribe(StreamOpen {
            user_id: session.user_id,
            display_name: session.display_name,
            session_id: session.session_id,
            resume_from,
            ends_with: state.shutdown.clone(),
        })
        .await?;
    Ok(subscription)
}
