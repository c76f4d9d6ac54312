//! HMAC-SHA256 signatures in base64url, checked in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// base64url (no padding) of HMAC-SHA256(secret, text).
pub fn sign(secret: &[u8], text: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(text);
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Whether `signature` is the signature of `text`, compared in constant time.
/// Padded base64url is accepted too.
pub fn verify(secret: &[u8], text: &[u8], signature: &str) -> bool {
    let expected = sign(secret, text);
    let given = signature.trim_end_matches('=');
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// A UUID that only the holder of `secret` can compute for `text`, the
/// same every time: a signed request's repeat maps to the same id, and the
/// id reveals nothing of the request's signature.
pub fn derived_id(secret: &[u8], text: &[u8]) -> uuid::Uuid {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"chats3 derived id\n");
    mac.update(text);
    let digest = mac.finalize().into_bytes();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Constant-time equality of two secrets.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_differ_by_key() {
        let s = sign(b"k", b"text");
        assert!(verify(b"k", b"text", &s));
        assert!(!verify(b"k2", b"text", &s));
        assert!(!verify(b"k", b"text!", &s));
        assert!(!s.contains('+') && !s.contains('/') && !s.contains('='));
    }

    #[test]
    fn derived_ids_are_stable_per_text_and_key() {
        let id = derived_id(b"k", b"text");
        assert_eq!(id, derived_id(b"k", b"text"));
        assert_ne!(id, derived_id(b"k2", b"text"));
        assert_ne!(id, derived_id(b"k", b"text!"));
    }
}
