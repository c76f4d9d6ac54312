//! The input rules that handlers enforce and `GET /api/v1/client-config`
//! publishes, defined once so the browser UI never keeps copies of its own.

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
