//! Edits and soft deletes, kept as `revisions.json` (messageId → revision)
//! and laid over messages wherever they are read, so batches stay
//! append-only and Chats3's layout is untouched.

use crate::domain::Message;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The latest change to one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
}

/// Every revision of a conversation.
pub type Revisions = HashMap<String, Revision>;

/// How long after sending its author may change a message.
pub const EDIT_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Applies a message's revision, if any.
pub fn overlay(revisions: &Revisions, message: &mut Message) {
    if let Some(r) = revisions.get(&message.message_id) {
        apply(r, message);
    }
}

/// Writes a revision into a message.
pub fn apply(revision: &Revision, message: &mut Message) {
    message.body = revision.body.clone();
    message.edited_at = revision.edited_at.clone();
    message.deleted = revision.deleted_at.as_ref().map(|_| true);
    message.deleted_at = revision.deleted_at.clone();
}
