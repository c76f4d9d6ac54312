//! The fs backend's download links: the service's own download route,
//! HMAC-signed and expiring, so a link authorises itself as a presigned S3
//! URL does.

use crate::signing::{sign, verify};
use chats3_actors::domain::ConversationId;
use chats3_actors::time::now_ms;
use std::time::Duration;

/// Signs and checks links to `GET /api/v1/files/{conversation}/{id}`.
pub struct DownloadLinks {
    key: Vec<u8>,
    public_url: String,
}

/// The signed text of a link.
fn signed_text(conversation: &str, attachment_id: &str, expires_ms: i64) -> String {
    format!("{conversation}/{attachment_id}/{expires_ms}")
}

impl DownloadLinks {
    /// Links signed with `key`, absolute under `public_url`.
    pub fn new(key: Vec<u8>, public_url: String) -> Self {
        DownloadLinks { key, public_url }
    }

    /// A link to the attachment that works for `ttl` from now.
    pub fn link(
        &self,
        conversation: &ConversationId,
        attachment_id: &str,
        ttl: Duration,
    ) -> String {
        let expires = now_ms() + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let text = signed_text(conversation.as_str(), attachment_id, expires);
        let sig = sign(&self.key, text.as_bytes());
        format!(
            "{}/api/v1/files/{conversation}/{attachment_id}?expires={expires}&sig={sig}",
            self.public_url
        )
    }

    /// Whether `sig` signs the link with these parts (its expiry is the
    /// caller's to check).
    pub fn verify(
        &self,
        conversation: &str,
        attachment_id: &str,
        expires_ms: i64,
        sig: &str,
    ) -> bool {
        let text = signed_text(conversation, attachment_id, expires_ms);
        verify(&self.key, text.as_bytes(), sig)
    }
}

#[cfg(test)]
mod tests {
    use super::DownloadLinks;
    use chats3_actors::domain::ConversationId;
    use std::time::Duration;

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
        let link = links.link(&conversation, "att-1", Duration::from_secs(60));
        assert!(link.starts_with("http://chat.test/api/v1/files/room-1/att-1?expires="));
        let (expires, sig) = parts(&link);
        assert!(links.verify("room-1", "att-1", expires, &sig));
        assert!(!links.verify("room-1", "att-2", expires, &sig));
        assert!(!links.verify("room-2", "att-1", expires, &sig));
        assert!(!links.verify("room-1", "att-1", expires + 1, &sig));
        let other = DownloadLinks::new(b"other".to_vec(), "http://chat.test".into());
        assert!(!other.verify("room-1", "att-1", expires, &sig));
    }
}
