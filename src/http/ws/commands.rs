//! What a client sends up a WebSocket: `{"op", "ref", "body"}` text
//! frames, each answered `{"ack": ref, "status": S, "response": ENVELOPE}`
//! with exactly the status and envelope its HTTP route answers for that
//! body. A command passes what the route's request passes, in the same
//! order, through the same code: the per-address rate limit, the session
//! (looked up again, as each request does), the body's validation and
//! the actor call (the function the route's handler calls), within
//! `request_timeout`. Each command has its own request id.

use crate::http::envelope::REQUEST_ID;
use crate::http::error::{ApiResult, AppError};
use crate::http::extract::CurrentSession;
use crate::http::layers::rate_limit;
use crate::http::state::AppState;
use crate::http::validate::{Choice, Fields, Text, invalid};
use crate::http::{messages, participation, signaling};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chats3_actors::Origin;
use serde_json::Value;
use std::net::IpAddr;
use tracing::Instrument;

/// Longest `ref`, in characters.
const MAX_REF: usize = 64;

/// Largest answer read back from a route: an envelope holds at most one
/// message or a few ids.
const MAX_ANSWER: usize = 1024 * 1024;

/// What a command does: the route whose body it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `POST /api/v1/messages`
    Send,
    /// `POST /api/v1/signaling`
    Signal,
    /// `POST /api/v1/reactions`
    React,
    /// `POST /api/v1/presence`
    Presence,
    /// `POST /api/v1/messages/:id/read`, the id as `{"messageId"}`.
    Read,
}

const OPS: &[Op] = &[Op::Send, Op::Signal, Op::React, Op::Presence, Op::Read];

impl Choice for Op {
    fn name(self) -> &'static str {
        match self {
            Op::Send => "send",
            Op::Signal => "signal",
            Op::React => "react",
            Op::Presence => "presence",
            Op::Read => "read",
        }
    }
}

/// Runs one socket's commands as its session, from its client's address.
pub(super) struct Commands {
    state: AppState,
    session_id: String,
    client: Option<IpAddr>,
    /// The socket itself: what it sends is not echoed to it.
    origin: Origin,
}

impl Commands {
    /// Commands of the session `session_id` up its stream `stream_id`,
    /// rate-limited as `client`.
    pub(super) fn new(
        state: AppState,
        session_id: String,
        stream_id: u64,
        client: Option<IpAddr>,
    ) -> Self {
        let origin = Origin::Stream(session_id.as_str().into(), stream_id);
        Commands {
            state,
            session_id,
            client,
            origin,
        }
    }

    /// The service's state.
    pub(super) fn state(&self) -> &AppState {
        &self.state
    }

    /// The ack of a text frame.
    pub(super) async fn answer_text(&self, frame: &str) -> Bytes {
        let command = serde_json::from_str::<Value>(frame)
            .map_err(|e| invalid("", "invalid_json", &format!("Malformed JSON: {e}")));
        self.answer(command).await
    }

    /// The ack of a binary frame: commands are JSON text.
    pub(super) async fn answer_binary(&self) -> Bytes {
        let refused = invalid("", "invalid_type", "Commands are JSON text frames");
        self.answer(Err(refused)).await
    }

    async fn answer(&self, command: Result<Value, AppError>) -> Bytes {
        let reference = command
            .as_ref()
            .ok()
            .and_then(|c| reference(c).ok().flatten());
        let id = uuid::Uuid::new_v4().to_string();
        let span = tracing::info_span!("command", request_id = %id);
        let response = REQUEST_ID
            .scope(id, self.run(command).instrument(span))
            .await
            .unwrap_or_else(IntoResponse::into_response);
        ack(reference.as_deref(), response).await
    }

    async fn run(&self, command: Result<Value, AppError>) -> ApiResult {
        if let Some(refused) = self
            .client
            .and_then(|ip| rate_limit::check_address(&self.state.limiter, ip))
        {
            return Ok(refused);
        }
        let mut command = command?;
        reference(&command)?;
        let body = match &mut command {
            Value::Object(fields) => fields.remove("body"),
            _ => None,
        }
        .unwrap_or(Value::Null);
        let mut fields = Fields::of(&command)?;
        let op = fields.one_of("op", OPS, None);
        let op = fields.finish(op)?;
        let session = CurrentSession::lookup(&self.state, &self.session_id).await?;
        let state = &self.state;
        let call = async {
            match op {
                Op::Send => messages::send(state, &session, self.origin.clone(), body).await,
                Op::Signal => signaling::relay(state, &session, body).await,
                Op::React => messages::set_reaction(state, &session, body).await,
                Op::Presence => participation::update_presence(state, &session, body).await,
                Op::Read => {
                    let id = read_id(&body)?;
                    messages::mark_read(state, &session, self.origin.clone(), &id).await
                }
            }
        };
        tokio::time::timeout(state.config.server.request_timeout, call)
            .await
            .unwrap_or_else(|_| Err(AppError::unavailable("request timed out", 1)))
    }
}

/// The command's `ref`, checked.
fn reference(command: &Value) -> Result<Option<String>, AppError> {
    let mut fields = Fields::of(command)?;
    let reference = fields.optional_text("ref", Text::len(0, MAX_REF));
    fields.finish(reference)
}

/// The id of a `read`: any string, judged as the route judges its path.
fn read_id(body: &Value) -> Result<String, AppError> {
    let mut fields = Fields::of(body)?;
    let id = fields.text("messageId", Text::len(0, usize::MAX));
    fields.finish(id)
}

/// `{"ack": reference, "status": S, "response": ENVELOPE}` of an answer.
async fn ack(reference: Option<&str>, response: Response) -> Bytes {
    let status = response.status().as_u16();
    let envelope = axum::body::to_bytes(response.into_body(), MAX_ANSWER)
        .await
        .unwrap_or_default();
    let reference = serde_json::to_string(&reference).unwrap_or_else(|_| "null".into());
    let envelope = match String::from_utf8_lossy(&envelope) {
        text if text.is_empty() => "null".into(),
        text => text,
    };
    Bytes::from(format!(
        "{{\"ack\":{reference},\"status\":{status},\"response\":{envelope}}}"
    ))
}
