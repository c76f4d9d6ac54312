//! `POST /api/v1/system-message`: integrators post system messages, signed
//! with HMAC over the compact JSON of the four fields. The message id is
//! derived from the signed text, so a replayed or retried request is the
//! same message: stored and broadcast once, answered with the first.

use super::AppState;
use super::error::{ApiResult, AppError, ok};
use super::extract::JsonBody;
use super::sanitize::strip_html;
use super::signing::{derived_id, verify};
use super::validate::{Fields, Text, is_datetime};
use axum::extract::State;
use chats3_actors::domain::{ConversationId, ConversationStatus, MessageType, NewMessage, Sender};
use chats3_actors::time::{now_ms, parse_iso_ms};
use serde::Serialize;

/// The signed text: `JSON.stringify({integratorId, conversationId, body, timestamp})`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Signed<'a> {
    integrator_id: &'a str,
    conversation_id: &'a str,
    body: &'a str,
    timestamp: &'a str,
}

/// How far `timestamp` may be from now.
const MAX_SKEW_MS: i64 = 60_000;

/// `POST /api/v1/system-message`
pub async fn create(State(state): State<AppState>, JsonBody(body): JsonBody) -> ApiResult {
    let mut fields = Fields::of(&body)?;
    let integrator_id = fields.text("integratorId", Text::len(1, 100));
    let conversation_id = fields.text("conversationId", Text::len(1, 100));
    let text = fields.text("body", Text::len(1, 12_000));
    let timestamp = fields.text_matching(
        "timestamp",
        Text::len(1, 64),
        "an ISO-8601 date-time",
        is_datetime,
    );
    let signature = fields.text("signature", Text::len(1, 200));
    fields.finish()?;
    let (Some(integrator_id), Some(conversation_id), Some(text), Some(timestamp), Some(signature)) =
        (integrator_id, conversation_id, text, timestamp, signature)
    else {
        return Err(AppError::internal("validated fields missing"));
    };
    let integrator = state
        .config
        .integrators
        .iter()
        .find(|i| i.id == integrator_id)
        .ok_or_else(|| AppError::forbidden("Unknown integrator"))?;
    let signed = serde_json::to_string(&Signed {
        integrator_id: &integrator_id,
        conversation_id: &conversation_id,
        body: &text,
        timestamp: &timestamp,
    })
    .map_err(|e| AppError::internal(e.to_string()))?;
    if !verify(integrator.secret.as_bytes(), signed.as_bytes(), &signature) {
        return Err(AppError::forbidden("Invalid signature"));
    }
    if parse_iso_ms(&timestamp).is_none_or(|t| (now_ms() - t).abs() > MAX_SKEW_MS) {
        return Err(AppError::forbidden(
            "Request timestamp too old or in future",
        ));
    }
    let id = ConversationId::parse(&conversation_id)
        .ok_or_else(|| AppError::not_found("Conversation not found"))?;
    let conversation = state.system.existing_conversation(id);
    if conversation.get().await?.status == ConversationStatus::Closed {
        return Err(AppError::forbidden("Conversation is closed"));
    }
    let message = NewMessage {
        message_id: Some(derived_id(integrator.secret.as_bytes(), signed.as_bytes()).to_string()),
        kind: MessageType::System,
        body: strip_html(&text),
        client_timestamp: timestamp,
        attachment_id: None,
        filename: None,
        mimetype: None,
        url: None,
    };
    let stored = conversation.post(&Sender::system(), message).await?;
    state.metrics.message_accepted();
    Ok(ok("System message sent", stored))
}
