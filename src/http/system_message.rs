//! `POST /api/v1/system-message`: integrators post system messages, signed
//! with HMAC over the compact JSON of the four fields. The message id is
//! derived from the signed text, so a replayed or retried request is the
//! same message: stored and broadcast once, answered with the first.

use super::envelope::{Envelope, ok};
use super::error::{ApiResult, AppError, ErrorEnvelope};
use super::extract::JsonBody;
use super::sanitize::strip_html;
use super::state::AppState;
use super::validate::{DATETIME, Fields, Text};
use crate::config::Integrator;
use crate::signing::{derived_id, verify};
use axum::extract::State;
use chats3_actors::ConversationHandle;
use chats3_actors::domain::{ConversationId, Message, MessageType, NewMessage, Sender};
use chats3_actors::time::now_ms;
use serde::Serialize;
use utoipa::ToSchema;

/// Body of `POST /api/v1/system-message`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct SystemMessageBody {
    /// The integrator's id.
    #[schema(min_length = 1, max_length = 100)]
    pub integrator_id: String,
    /// The conversation to post into.
    #[schema(min_length = 1, max_length = 100)]
    pub conversation_id: String,
    /// The text (HTML tags are removed after the signature is checked).
    #[schema(min_length = 1, max_length = 12000)]
    pub body: String,
    /// When the request was made: within 60 s of the server's clock.
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// base64url(HMAC-SHA256(secret, `{"integratorId":…,"conversationId":…,"body":…,"timestamp":…}`)),
    /// over compact JSON in exactly that key order.
    #[schema(min_length = 1, max_length = 200)]
    pub signature: String,
}

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

/// The conversation the message goes to. It must exist, unless its
/// integrator has `auto_create`: then a missing one is created first
/// (stored before the message is posted; a closed one stays closed and
/// refuses the message).
async fn target(
    state: &AppState,
    id: ConversationId,
    integrator: &Integrator,
) -> Result<ConversationHandle, AppError> {
    if !integrator.auto_create {
        return Ok(state.system.existing_conversation(id));
    }
    let conversation = state.system.conversation(id);
    conversation.create_if_absent().await?;
    Ok(conversation)
}

/// Posts an integrator's system message, signed with the integrator's secret.
///
/// A repeat of an accepted request answers the first stored message and
/// stores nothing new.
#[utoipa::path(
    post,
    path = "/api/v1/system-message",
    operation_id = "create_system_message",
    tag = "integrators",
    request_body = SystemMessageBody,
    responses(
        (status = 200, description = "The stored message", body = Envelope<Message>),
        (status = 403, description = "Unknown integrator, invalid signature, a timestamp too far from now, or a closed conversation", body = ErrorEnvelope),
        (status = 404, description = "No such conversation", body = ErrorEnvelope),
    )
)]
pub async fn create(State(state): State<AppState>, JsonBody(body): JsonBody) -> ApiResult {
    let mut fields = Fields::of(&body)?;
    let integrator_id = fields.text("integratorId", Text::len(1, 100));
    let conversation_id = fields.text("conversationId", Text::len(1, 100));
    let text = fields.text("body", Text::len(1, 12_000));
    let timestamp = fields.parsed("timestamp", &DATETIME);
    let signature = fields.text("signature", Text::len(1, 200));
    let (integrator_id, conversation_id, text, timestamp, signature) =
        fields.finish((integrator_id, conversation_id, text, timestamp, signature))?;
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
        timestamp: &timestamp.text,
    })
    .map_err(|e| AppError::internal(e.to_string()))?;
    if !verify(integrator.secret.as_bytes(), signed.as_bytes(), &signature) {
        return Err(AppError::forbidden("Invalid signature"));
    }
    if (now_ms() - timestamp.ms).abs() > MAX_SKEW_MS {
        return Err(AppError::forbidden(
            "Request timestamp too old or in future",
        ));
    }
    let id = ConversationId::parse(&conversation_id)
        .ok_or_else(|| AppError::not_found("Conversation not found"))?;
    let message = NewMessage {
        message_id: Some(derived_id(integrator.secret.as_bytes(), signed.as_bytes()).to_string()),
        kind: MessageType::System,
        body: strip_html(&text),
        client_timestamp: timestamp.text,
        attachment_id: None,
        filename: None,
        mimetype: None,
        url: None,
    };
    let stored = target(&state, id, integrator)
        .await?
        .post(&Sender::system(), message)
        .await?;
    state.counters.message_accepted();
    Ok(ok("System message sent", stored))
}
