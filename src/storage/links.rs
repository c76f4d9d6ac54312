//! The fs backend's download links: the service's own download route,
//! HMAC-signed and expiring, so a link authorises itself as a presigned S3
//! URL does. A link names one form of an attachment; a link to the
//! original reads as it always did (no `variant` in it or its signature).

use crate::signing::{sign, verify};
use chats3_actors::domain::{AttachmentVariant, ConversationId};
use chats3_actors::time::now_ms;
use std::time::Duration;

/// Signs and checks links to
/// `GET /api/v1/files/{conversation}/{id}[?variant=…]`.
pub struct DownloadLinks {
    key: Vec<u8>,
    public_url: String,
}

/// The signed text of a link.
fn signed_text(
    conversation: &str,
    attachment_id: &str,
    variant: AttachmentVariant,
    expires_ms: i64,
) -> String {
    match variant {
        AttachmentVariant::Original => format!("{conversation}/{attachment_id}/{expires_ms}"),
        other => format!(
            "{conversation}/{attachment_id}/{}/{expires_ms}",
            other.name()
        ),
    }
}

impl DownloadLinks {
    /// Links signed with `key`, absolute under `public_url`.
    pub fn new(key: Vec<u8>, public_url: String) -> Self {
        DownloadLinks { key, public_url }
    }

    /// A link to one form of the attachment that works for `ttl` from now.
    pub fn link(
        &self,
        conversation: &ConversationId,
        attachment_id: &str,
        variant: AttachmentVariant,
        ttl: Duration,
    ) -> String {
        let expires = now_ms() + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let text = signed_text(conversation.as_str(), attachment_id, variant, expires);
        let sig = sign(&self.key, text.as_bytes());
        let variant = match variant {
            AttachmentVariant::Original => String::new(),
            other => format!("variant={}&", other.name()),
        };
        format!(
            "{}/api/v1/files/{conversation}/{attachment_id}?{variant}expires={expires}&sig={sig}",
            self.public_url
        )
    }

    /// Whether `sig` signs the link with these parts (its expiry is the
    /// caller's to check).
    pub fn verify(
        &self,
        conversation: &str,
        attachment_id: &str,
        variant: AttachmentVariant,
        expires_ms: i64,
        sig: &str,
    ) -> bool {
        let text = signed_text(conversation, attachment_id, variant, expires_ms);
        verify(&self.key, text.as_bytes(), sig)
    }
}

#[cfg(test)]
mod tests {
    use super::DownloadLinks;
    use chats3_actors::domain::{AttachmentVariant, ConversationId};
    use std::time::Duration;

    const ORIGINAL: AttachmentVariant = AttachmentVariant::Original;
    const THUMBNAIL: AttachmentVariant = AttachmentVariant::Thumbnail;

    fn parts(link: &str) -> (i64, String) {
        let query = link.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let mut expires = 0;
        let mut sig = String::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("expires", v)) => expires = v.parse().unwrap_or_default(),
                Some(("sig", v)) => sig = v.to_owned(),
                _ => {}
            }
        }
        (expires, sig)
    }

    #[test]
    fn a_link_verifies_for_its_own_parts_only() {
        let links = DownloadLinks::new(b"key".to_vec(), "http://chat.test".into());
        let conversation = ConversationId::parse("room-1").unwrap();
        let link = links.link(&conversation, "att-1", ORIGINAL, Duration::from_secs(60));
        assert!(link.starts_with("http://chat.test/api/v1/files/room-1/att-1?expires="));
        let (expires, sig) = parts(&link);
        assert!(links.verify("room-1", "att-1", ORIGINAL, expires, &sig));
        assert!(!links.verify("room-1", "att-2", ORIGINAL, expires, &sig));
        assert!(!links.verify("room-2", "att-1", ORIGINAL, expires, &sig));
        assert!(!links.verify("room-1", "att-1", ORIGINAL, expires + 1, &sig));
        assert!(!links.verify("room-1", "att-1", THUMBNAIL, expires, &sig));
        let other = DownloadLinks::new(b"other".to_vec(), "http://chat.test".into());
        assert!(!other.verify("room-1", "att-1", ORIGINAL, expires, &sig));
    }

    #[test]
    fn a_thumbnail_link_names_its_variant_and_opens_nothing_else() {
        let links = DownloadLinks::new(b"key".to_vec(), "http://chat.test".into());
        let conversation = ConversationId::parse("room-1").unwrap();
        let link = links.link(&conversation, "att-1", THUMBNAIL, Duration::from_secs(60));
        assert!(
            link.starts_with(
                "http://chat.test/api/v1/files/room-1/att-1?variant=thumbnail&expires="
            )
        );
        let (expires, sig) = parts(&link);
        assert!(links.verify("room-1", "att-1", THUMBNAIL, expires, &sig));
        assert!(!links.verify("room-1", "att-1", ORIGINAL, expires, &sig));
    }
}
