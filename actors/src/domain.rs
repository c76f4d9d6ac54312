//! Validated domain types shared by the actors and the HTTP layer.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A conversation id: `^[A-Za-z0-9_-]{1,100}$`, safe inside a storage key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[A-Za-z0-9_-]{1,100}$", examples("conv-6f1c2a4e-0b7d-4c43-9f5e-2d7a1b3c4d5e"))]
pub struct ConversationId(String);

/// True when `text` is 1..=`max` characters of `[A-Za-z0-9_-]`: the shape of
/// every id that may become part of a storage key.
pub fn is_key_safe_id(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl ConversationId {
    /// Accepts only ids that match `^[A-Za-z0-9_-]{1,100}$`.
    pub fn parse(text: &str) -> Option<Self> {
        is_key_safe_id(text, 100).then(|| ConversationId(text.to_owned()))
    }

    /// A fresh `conv-<uuid>` id.
    pub fn generate() -> Self {
        ConversationId(format!("conv-{}", uuid::Uuid::new_v4()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ConversationId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ConversationId::parse(&value).ok_or_else(|| format!("invalid conversation id {value:?}"))
    }
}

impl From<ConversationId> for String {
    fn from(id: ConversationId) -> String {
        id.0
    }
}

impl std::fmt::Display for ConversationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A six-character join code of `A-Z0-9` without the look-alikes I, O, 0 and 1 (as Chats3 makes them).
pub fn generate_join_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Whether a conversation takes new joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConversationStatus {
    /// Takes joins.
    Active,
    /// Refuses joins and embeds; existing sessions go on.
    Closed,
}

/// A conversation's metadata, stored as `meta.json` and returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    /// The conversation's id.
    pub conversation_id: ConversationId,
    /// The six-character code that joins it.
    pub join_code: String,
    /// Open to joins, or closed.
    pub status: ConversationStatus,
    /// When it was created (ISO 8601).
    pub created_at: String,
    /// When it was closed (ISO 8601).
    pub closed_at: Option<String>,
    /// The title its creator gave it; rooms created without one (and by
    /// Chats3) have none and are shown by their id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// Who a session or message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Joined with a code, or embedded as a user.
    User,
    /// Embedded as an admin by an integrator.
    Admin,
    /// The service itself (join/leave/integrator messages).
    System,
}

/// The kind of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    /// Plain text.
    Text,
    /// Join, leave and integrator notices.
    System,
    /// An attachment.
    File,
}

/// A stored chat message, exactly as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Unique within the conversation, whoever sent it.
    pub message_id: String,
    /// The conversation it belongs to.
    pub conversation_id: String,
    /// Who sent it.
    pub sender_user_id: String,
    /// The sender's display name when sent.
    pub sender_display_name: String,
    /// The sender's avatar, when they have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_avatar_url: Option<String>,
    /// user, admin, or system (only the service writes system).
    pub sender_role: Role,
    /// text, file or system.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// The text, HTML stripped.
    pub body: String,
    /// When the client says it was sent.
    pub client_timestamp: String,
    /// When the service accepted it (ISO 8601).
    pub server_received_at: String,
    /// The attachment it carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_id: Option<String>,
    /// The attachment's file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// The attachment's MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mimetype: Option<String>,
    /// A link the sender gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Set when the author edited the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    /// `true` once the author deleted it (soft delete: the entry stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
    /// When it was soft-deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
}

/// One NDJSON line as this service writes it: the message plus its
/// per-conversation sequence, which fixes history order. Chats3's lines have
/// no `seq`; [`crate::history`] derives one for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Its sequence number (absent in Chats3's lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The message.
    #[serde(flatten)]
    pub message: Message,
}

/// A message as held in memory: with its sequence always known.
#[derive(Debug, Clone, PartialEq)]
pub struct SequencedMessage {
    /// Its sequence number: its event id on streams.
    pub seq: u64,
    /// The message.
    pub message: Message,
}

#[cfg(test)]
impl SequencedMessage {
    /// A text message of user `u` saying "original", for tests.
    pub(crate) fn sample(seq: u64, id: &str, role: Role) -> Self {
        SequencedMessage {
            seq,
            message: Message {
                message_id: id.into(),
                conversation_id: "c".into(),
                sender_user_id: "u".into(),
                sender_display_name: "U".into(),
                sender_avatar_url: None,
                sender_role: role,
                kind: MessageType::Text,
                body: "original".into(),
                client_timestamp: String::new(),
                server_received_at: String::new(),
                attachment_id: None,
                filename: None,
                mimetype: None,
                url: None,
                edited_at: None,
                deleted: None,
                deleted_at: None,
            },
        }
    }
}

/// What a sender provides for a new message; the actor fills in the rest.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// An id the client chose, for idempotent retries.
    pub message_id: Option<String>,
    /// text, file or system.
    pub kind: MessageType,
    /// The text.
    pub body: String,
    /// When the client says it was sent.
    pub client_timestamp: String,
    /// The attachment it carries.
    pub attachment_id: Option<String>,
    /// The attachment's file name.
    pub filename: Option<String>,
    /// The attachment's MIME type.
    pub mimetype: Option<String>,
    /// A link the sender gave.
    pub url: Option<String>,
}

/// The author of a message or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// The user's id.
    pub user_id: String,
    /// The name shown for them.
    pub display_name: String,
    /// Their avatar, when they have one.
    pub avatar_url: Option<String>,
    /// Their role.
    pub role: Role,
}

impl Sender {
    /// The author of join/leave/integrator messages.
    pub fn system() -> Self {
        Sender {
            user_id: "system".into(),
            display_name: "System".into(),
            avatar_url: None,
            role: Role::System,
        }
    }
}

/// A user session, as `GET /api/v1/session` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The session's id (the cookie's value).
    pub session_id: String,
    /// Its user.
    pub user_id: String,
    /// The user's display name.
    pub display_name: String,
    /// The user's avatar, when they have one.
    pub avatar_url: Option<String>,
    /// The user's role.
    pub role: Role,
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// When it was opened (ISO 8601).
    pub created_at: String,
    /// Last use, in milliseconds since the epoch (the TTL slides from it).
    pub last_active_at: i64,
}

#[cfg(test)]
impl Session {
    /// Ann's session `id` in conversation `room`, last used at `at`, for tests.
    pub(crate) fn sample(id: &str, at: i64) -> Self {
        Session {
            session_id: id.into(),
            user_id: format!("u-{id}"),
            display_name: "Ann".into(),
            avatar_url: None,
            role: Role::User,
            conversation_id: ConversationId::parse("room").unwrap(),
            created_at: "2025-01-01T00:00:00.000Z".into(),
            last_active_at: at,
        }
    }
}

impl Session {
    /// The sender identity this session posts as.
    pub fn sender(&self) -> Sender {
        Sender {
            user_id: self.user_id.clone(),
            display_name: self.display_name.clone(),
            avatar_url: self.avatar_url.clone(),
            role: self.role,
        }
    }
}

/// A participant as `room-state` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    /// Their user id.
    pub user_id: String,
    /// Their display name.
    pub display_name: String,
    /// Whether this is the user the list is sent to.
    pub is_me: bool,
}

/// Attachment metadata, stored beside the original bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentMeta {
    /// The attachment's id.
    pub attachment_id: String,
    /// The conversation it was uploaded to.
    pub conversation_id: String,
    /// Who uploaded it.
    pub uploader_user_id: String,
    /// The file name it was uploaded with.
    pub original_filename: String,
    /// Its checked MIME type.
    pub mime_type: String,
    /// Its size.
    pub size_bytes: u64,
    /// When it was uploaded (ISO 8601).
    pub created_at: String,
    /// Derived versions (thumbnails), when any.
    #[schema(value_type = Option<Object>)]
    pub variants: Option<serde_json::Value>,
}

/// An upload to store: its metadata (naming its thumbnail, if any in
/// `variants`), its bytes and its thumbnail's bytes.
#[derive(Debug, Clone)]
pub struct AttachmentUpload {
    /// What `meta.json` will hold.
    pub meta: AttachmentMeta,
    /// The file as uploaded.
    pub data: bytes::Bytes,
    /// The JPEG thumbnail of an image.
    pub thumbnail: Option<bytes::Bytes>,
}

/// One stored form of an attachment: the upload itself, or a version
/// derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentVariant {
    /// The bytes as uploaded.
    Original,
    /// The JPEG thumbnail of an image (named in `variants.thumbnail`).
    Thumbnail,
}

impl AttachmentVariant {
    /// Its name: the last segment of its storage key, and the value of
    /// `?variant=`.
    pub fn name(self) -> &'static str {
        match self {
            AttachmentVariant::Original => "original",
            AttachmentVariant::Thumbnail => "thumbnail",
        }
    }

    /// The variant of a name, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        [AttachmentVariant::Original, AttachmentVariant::Thumbnail]
            .into_iter()
            .find(|v| v.name() == name)
    }
}

impl AttachmentMeta {
    /// What `variants` says of a variant (`None` when it names none; the
    /// original is always there).
    pub fn variant(&self, variant: AttachmentVariant) -> Option<&serde_json::Value> {
        match variant {
            AttachmentVariant::Original => None,
            _ => self.variants.as_ref()?.get(variant.name()),
        }
    }

    /// Whether this form is stored.
    pub fn has(&self, variant: AttachmentVariant) -> bool {
        variant == AttachmentVariant::Original || self.variant(variant).is_some()
    }

    /// The MIME type of one of its forms.
    pub fn mime_type_of(&self, variant: AttachmentVariant) -> &str {
        self.variant(variant)
            .and_then(|v| v.get("mimeType"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or(&self.mime_type)
    }
}

/// The latest edit or delete of one message, as `revisions.json` keeps
/// it (messageId → revision) and the write-ahead log carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// The body after the edit (empty once deleted).
    pub body: String,
    /// When it was last edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    /// When it was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    /// The revised message's sequence; `None` in files written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_ids_cannot_escape_their_key() {
        assert!(ConversationId::parse("conv-abc_123").is_some());
        assert!(ConversationId::parse(&"a".repeat(100)).is_some());
        for bad in ["", "../x", "a/b", "a b", "é", &"a".repeat(101)] {
            assert!(ConversationId::parse(bad).is_none(), "{bad:?}");
        }
        assert!(ConversationId::generate().as_str().starts_with("conv-"));
    }

    #[test]
    fn join_codes_are_six_uppercase_alphanumerics() {
        for _ in 0..100 {
            let code = generate_join_code();
            assert_eq!(code.len(), 6);
            assert!(
                code.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            );
        }
    }

    #[test]
    fn stored_lines_without_seq_read_as_chats3_messages() {
        let line = r#"{"messageId":"m","conversationId":"c","senderUserId":"u","senderDisplayName":"U","senderRole":"user","type":"text","body":"hi","clientTimestamp":"t","serverReceivedAt":"2024-01-01T00:00:00.000Z"}"#;
        let stored: StoredMessage = serde_json::from_str(line).unwrap();
        assert_eq!(stored.seq, None);
        assert_eq!(stored.message.body, "hi");
        assert_eq!(serde_json::to_string(&stored).unwrap(), line);
    }
}
