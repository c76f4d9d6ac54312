//! The input rules that handlers enforce, `GET /api/v1/client-config`
//! publishes and the OpenAPI document lists, defined once so neither the
//! browser UI nor the document keeps copies of its own.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// Declared types that may be uploaded.
pub const ALLOWED_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
];

/// Signaling types a client may send.
pub const SIGNAL_TYPES: &[&str] = &[
    "peer-join",
    "peer-leave",
    "offer",
    "answer",
    "ice-candidate",
    "new-message",
    "end-call",
    "typing-start",
    "typing-stop",
    "message-read",
    "presence-update",
    "message-edited",
    "message-deleted",
    "reaction-added",
    "reaction-removed",
];

/// Presence statuses a client may announce.
pub const PRESENCE_STATUSES: &[&str] = &["online", "away", "offline"];

/// A string schema whose values are one of these rules' lists.
macro_rules! one_of_schema {
    ($(#[$doc:meta])* $name:ident = $values:expr, $description:literal) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some($values.iter().copied()))
                    .description(Some($description))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

one_of_schema!(
    /// The schema of [`SIGNAL_TYPES`].
    SignalType = SIGNAL_TYPES,
    "A signaling event type"
);
one_of_schema!(
    /// The schema of [`PRESENCE_STATUSES`].
    PresenceStatus = PRESENCE_STATUSES,
    "A presence status"
);
one_of_schema!(
    /// The schema of [`ALLOWED_TYPES`].
    UploadType = ALLOWED_TYPES,
    "A MIME type that may be uploaded"
);
