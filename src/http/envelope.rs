//! The envelope every JSON answer uses (`{success, message, details?,
//! meta}`), and the success answers in it.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

tokio::task_local! {
    /// The id of the request being served, set by the request-context layer.
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

/// The envelope of one answer.
#[derive(Serialize)]
pub(super) struct Envelope<'a, T: Serialize> {
    success: bool,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<T>,
    meta: Meta,
}

impl<'a, T: Serialize> Envelope<'a, T> {
    /// A success (`true`) or failure envelope, stamped now.
    pub(super) fn new(success: bool, message: &'a str, details: Option<T>) -> Self {
        Envelope {
            success,
            message,
            details,
            meta: meta(),
        }
    }
}

/// A successful answer: status 200 with `details`.
pub fn ok<T: Serialize>(message: &str, details: T) -> Response {
    Json(Envelope::new(true, message, Some(details))).into_response()
}

/// A successful answer without `details`.
pub fn ok_empty(message: &str) -> Response {
    Json(Envelope::<()>::new(true, message, None)).into_response()
}
