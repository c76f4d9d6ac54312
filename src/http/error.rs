//! The one error type, mapped to HTTP in exactly one place: an answer in
//! the envelope, 5xx logged once with their whole cause chain.

use super::envelope::Envelope;
pub use super::envelope::ErrorEnvelope;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chats3_actors::ChatError;
use chats3_actors::error::Report;
use serde_json::Value;

/// Why a 5xx happened: any error, its sources kept.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// An error answer in the envelope.
#[derive(Debug)]
pub struct AppError {
    /// The answer's status.
    pub status: StatusCode,
    /// The envelope's `message`.
    pub message: String,
    /// The envelope's `details` (a 400's issues).
    pub details: Option<Box<Value>>,
    /// Seconds of `Retry-After`.
    pub retry_after: Option<u64>,
    /// The cause, logged for 5xx with its chain and never shown.
    pub cause: Option<Cause>,
}

impl AppError {
    /// An error with a status and a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        AppError {
            status,
            message: message.into(),
            details: None,
            retry_after: None,
            cause: None,
        }
    }

    /// 400 "Validation error" listing the offending fields.
    pub fn validation(issues: Vec<Value>) -> Self {
        AppError {
            details: Some(Box::new(Value::Array(issues))),
            ..AppError::new(StatusCode::BAD_REQUEST, "Validation error")
        }
    }

    /// 401.
    pub fn unauthorized(message: &str) -> Self {
        AppError::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::new(StatusCode::FORBIDDEN, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        AppError::new(StatusCode::NOT_FOUND, message)
    }

    /// 413.
    pub fn too_large(message: impl Into<String>) -> Self {
        AppError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// Adds `details`.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// 503 with `Retry-After`, the cause logged.
    pub fn unavailable(cause: impl Into<Cause>, retry_after: u64) -> Self {
        AppError {
            retry_after: Some(retry_after),
            cause: Some(cause.into()),
            ..AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service temporarily unavailable",
            )
        }
    }

    /// 500 with a plain message; the cause is logged only.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        AppError {
            cause: Some(cause.into()),
            ..AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        }
    }
}

impl From<ChatError> for AppError {
    fn from(e: ChatError) -> Self {
        match e {
            ChatError::NotFound(message) => AppError::not_found(message),
            ChatError::Forbidden(message) => AppError::forbidden(message),
            ChatError::Conflict(message) => AppError::new(StatusCode::CONFLICT, message),
            ChatError::Invalid(message) => AppError::new(StatusCode::BAD_REQUEST, message),
            ChatError::TooLarge(message) => AppError::too_large(message),
            ChatError::TooMany(message) => AppError {
                retry_after: Some(5),
                ..AppError::new(StatusCode::TOO_MANY_REQUESTS, message)
            },
            ChatError::Overloaded {
                message,
                retry_after,
            } => AppError {
                retry_after: Some(retry_after.as_secs().max(1)),
                ..AppError::new(StatusCode::SERVICE_UNAVAILABLE, message)
            },
            ChatError::Storage(_) => AppError {
                message: "Storage unavailable".into(),
                ..AppError::unavailable(e, 5)
            },
            ChatError::Log(_) => AppError::unavailable(e, 5),
            ChatError::Cluster(_) => AppError::unavailable(e, 2),
            ChatError::TimedOut(_) | ChatError::ActorGone(_) | ChatError::SpawnFailed { .. } => {
                AppError::unavailable(e, 2)
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let cause = self
            .cause
            .as_deref()
            .map(|cause| Report(cause).to_string())
            .unwrap_or_default();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Back-pressure and outages are expected and come in bursts.
            if let Some(suppressed) = super::log_throttle::admit(&self.message) {
                tracing::warn!(status = %self.status, cause, suppressed, "{}", self.message);
            }
        } else if self.status.is_server_error() {
            tracing::error!(status = %self.status, cause, "{}", self.message);
        }
        let mut response = (
            self.status,
            Json(Envelope::new(false, &self.message, self.details)),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Result of a handler.
pub type ApiResult = Result<Response, AppError>;

/// A handler panic becomes a plain 500 in the envelope; the cause is logged.
pub fn panic_response(cause: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let text = cause
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| cause.downcast_ref::<&str>().copied())
        .unwrap_or("panic");
    AppError::internal(format!("handler panicked: {text}")).into_response()
}
