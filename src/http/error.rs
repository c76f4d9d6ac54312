//! The envelope every JSON answer uses, and the one error type that maps to
//! HTTP in exactly one place.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chats3_actors::ChatError;
use serde::Serialize;
use serde_json::Value;

tokio::task_local! {
    /// The id of the request being served, set by the request-id middleware.
    pub static REQUEST_ID: String;
}

/// `meta` of the envelope.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    request_id: String,
    timestamp: String,
}

fn meta() -> Meta {
    Meta {
        request_id: REQUEST_ID
            .try_with(Clone::clone)
            .unwrap_or_else(|_| uuid::Uuid::new_v4().to_string()),
        timestamp: chats3_actors::time::now_iso(),
    }
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    success: bool,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<T>,
    meta: Meta,
}

/// A successful answer: status 200 with `details`.
pub fn ok<T: Serialize>(message: &str, details: T) -> Response {
    Json(Envelope {
        success: true,
        message,
        details: Some(details),
        meta: meta(),
    })
    .into_response()
}

/// A successful answer without `details`.
pub fn ok_empty(message: &str) -> Response {
    Json(Envelope::<()> {
        success: true,
        message,
        details: None,
        meta: meta(),
    })
    .into_response()
}

/// An error answer in the envelope.
#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub message: String,
    pub details: Option<Box<Value>>,
    pub retry_after: Option<u64>,
    /// The cause, logged for 5xx and never shown.
    pub cause: Option<String>,
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
    pub fn unavailable(cause: impl Into<String>, retry_after: u64) -> Self {
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
    pub fn internal(cause: impl Into<String>) -> Self {
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
            ChatError::Storage(cause) => AppError {
                message: "Storage unavailable".into(),
                ..AppError::unavailable(cause, 5)
            },
            ChatError::Unavailable(cause) => AppError::unavailable(cause, 2),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let cause = self.cause.as_deref().unwrap_or("");
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
            Json(Envelope {
                success: false,
                message: &self.message,
                details: self.details,
                meta: meta(),
            }),
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
