//! The envelope every JSON answer uses (`{success, message, details?,
//! meta}`), and the success answers in it.

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, BytesMut};
use serde::Serialize;

/// Room for a whole envelope in one allocation: a stored message in its
/// envelope is about 500 bytes (axum's `Json` starts at 128 bytes and
/// copies the answer each time it grows it, twice for a message).
const ANSWER_CAPACITY: usize = 1024;

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

/// `envelope` as `application/json`, as axum's `Json` answers it, written
/// into a buffer sized for it up front.
fn json_answer<T: Serialize>(envelope: &Envelope<'_, T>) -> Response {
    let mut buffer = BytesMut::with_capacity(ANSWER_CAPACITY).writer();
    match serde_json::to_writer(&mut buffer, envelope) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            buffer.into_inner().freeze(),
        )
            .into_response(),
        // What `Json` answers when serializing fails.
        Err(_) => Json(envelope).into_response(),
    }
}

/// A successful answer: status 200 with `details`.
pub fn ok<T: Serialize>(message: &str, details: T) -> Response {
    json_answer(&Envelope::new(true, message, Some(details)))
}

/// A successful answer without `details`.
pub fn ok_empty(message: &str) -> Response {
    json_answer(&Envelope::<()>::new(true, message, None))
}
