//! The envelope every JSON answer uses (`{success, message, details?,
//! meta}`), and the success answers in it.

use super::validate::Issue;
use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, BytesMut};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// Room for a whole envelope in one allocation: a stored message in its
/// envelope is about 500 bytes (axum's `Json` starts at 128 bytes and
/// copies the answer each time it grows it, twice for a message).
const ANSWER_CAPACITY: usize = 1024;

tokio::task_local! {
    /// The id of the request being served, set by the request-context layer.
    pub static REQUEST_ID: String;
}

/// `meta` of the envelope.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// The request's id, also sent as `x-request-id`.
    #[schema(format = "uuid")]
    request_id: String,
    /// When the answer was made (UTC, milliseconds, `Z`).
    #[schema(format = DateTime)]
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

/// The envelope of one answer: `details` holds what a success answers, or
/// the offending fields of a 400.
#[derive(Serialize, ToSchema)]
pub struct Envelope<'a, T: Serialize> {
    /// `true` for a 200, `false` for an error.
    success: bool,
    /// What happened, in words.
    message: &'a str,
    /// The answer's data.
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<T>,
    /// The request's id and the answer's time.
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

/// The envelope of a success without `details` (what `ok_empty`
/// answers), by its name in the OpenAPI document.
#[derive(ToSchema)]
pub struct Done(pub Envelope<'static, Absent>);

/// The envelope of every error answer, by its name in the OpenAPI
/// document: `details` lists the offending fields of a 400 and is absent
/// otherwise.
#[derive(ToSchema)]
pub struct ErrorEnvelope(pub Envelope<'static, Vec<Issue<'static>>>);

/// The `details` of [`Done`]: never sent.
#[derive(Serialize)]
pub struct Absent;

impl utoipa::PartialSchema for Absent {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Null)
            .description(Some("Not sent"))
            .into()
    }
}

impl ToSchema for Absent {}

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
