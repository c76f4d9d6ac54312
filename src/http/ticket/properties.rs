//! Properties of ticket checking: arbitrary text never panics, a ticket
//! that passes grants exactly what it says within the bounds, and any
//! change to a signed ticket or its signature is refused.

use super::{TicketError, check_ticket};
use crate::config::Integrator;
use crate::signing::sign;
use chats3_actors::time::iso_from_ms;
use proptest::prelude::*;
use serde_json::json;

const NOW: i64 = 1_800_000_000_000;
const SECRET: &str = "s3cret";

fn integrators() -> Vec<Integrator> {
    vec![Integrator {
        id: "acme".into(),
        secret: SECRET.into(),
        allowed_origins: vec!["https://*.acme.test".into()],
        auto_create: false,
    }]
}

/// What a generated ticket says.
#[derive(Debug, Clone)]
struct Claims {
    conversation_id: String,
    user_id: String,
    display_name: String,
    nonce: String,
    issued_offset: i64,
    expires_offset: i64,
}

fn claims() -> impl Strategy<Value = Claims> {
    (
        "[A-Za-z0-9_-]{1,100}",
        "\\PC{1,100}",
        "[^\\s]\\PC{0,48}[^\\s]|[^\\s]",
        "\\PC{1,300}",
        -60_000i64..=60_000,
        0i64..=600_000,
    )
        .prop_map(
            |(conversation_id, user_id, display_name, nonce, issued, expires)| Claims {
                conversation_id,
                user_id,
                display_name,
                nonce,
                issued_offset: issued,
                expires_offset: expires,
            },
        )
}

fn text_of(claims: &Claims) -> String {
    json!({
        "integratorId": "acme",
        "conversationId": claims.conversation_id,
        "userId": claims.user_id,
        "displayName": claims.display_name,
        "role": "user",
        "origin": "https://app.acme.test",
        "issuedAt": iso_from_ms(NOW + claims.issued_offset),
        "expiresAt": iso_from_ms(NOW + claims.expires_offset),
        "nonce": claims.nonce,
    })
    .to_string()
}

/// A base64url character other than `c`.
fn other_base64url(c: char, pick: u8) -> char {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut replacement = ALPHABET[usize::from(pick) % ALPHABET.len()] as char;
    if replacement == c {
        replacement = if c == 'A' { 'B' } else { 'A' };
    }
    replacement
}

proptest! {
    #[test]
    fn arbitrary_text_and_signatures_never_panic(text in "\\PC{0,400}", signature in "\\PC{0,60}") {
        let _ = check_ticket(&integrators(), &text, &signature, NOW);
    }

    #[test]
    fn arbitrary_json_objects_never_panic(
        fields in proptest::collection::btree_map("[a-zA-Z]{1,14}", "\\PC{0,40}", 0..12),
    ) {
        let text = serde_json::to_string(&fields).unwrap_or_default();
        let signature = sign(SECRET.as_bytes(), text.as_bytes());
        let _ = check_ticket(&integrators(), &text, &signature, NOW);
    }

    #[test]
    fn a_signed_ticket_within_the_rules_grants_what_it_says(claims in claims()) {
        let text = text_of(&claims);
        let signature = sign(SECRET.as_bytes(), text.as_bytes());
        let granted = check_ticket(&integrators(), &text, &signature, NOW);
        let granted = match granted {
            Ok(granted) => granted,
            Err(refused) => return Err(TestCaseError::fail(format!("{refused:?}"))),
        };
        prop_assert_eq!(granted.conversation_id.as_str(), claims.conversation_id.as_str());
        prop_assert_eq!(granted.user.user_id, claims.user_id);
        prop_assert_eq!(granted.user.display_name, claims.display_name.trim());
        prop_assert!(granted.nonce.chars().count() <= 200);
        prop_assert!(claims.nonce.starts_with(&granted.nonce));
    }

    #[test]
    fn a_changed_byte_of_a_signed_ticket_is_refused(claims in claims(), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let text = text_of(&claims);
        let signature = sign(SECRET.as_bytes(), text.as_bytes());
        let mut bytes = text.into_bytes();
        let at = at.index(bytes.len());
        bytes[at] ^= flip;
        // Only text that is still UTF-8 reaches the check (it arrives as a JSON string).
        if let Ok(tampered) = String::from_utf8(bytes) {
            prop_assert!(check_ticket(&integrators(), &tampered, &signature, NOW).is_err());
        }
    }

    #[test]
    fn a_changed_signature_is_refused(claims in claims(), at in any::<prop::sample::Index>(), pick in any::<u8>()) {
        let text = text_of(&claims);
        let signature = sign(SECRET.as_bytes(), text.as_bytes());
        let at = at.index(signature.len());
        let tampered: String = signature
            .chars()
            .enumerate()
            .map(|(i, c)| if i == at { other_base64url(c, pick) } else { c })
            .collect();
        prop_assert_eq!(
            check_ticket(&integrators(), &text, &tampered, NOW).err(),
            Some(TicketError::Refused("Invalid signature"))
        );
    }

    #[test]
    fn a_ticket_is_refused_outside_its_time_window(claims in claims(), late in 1i64..10_000_000) {
        let text = text_of(&claims);
        let signature = sign(SECRET.as_bytes(), text.as_bytes());
        let issued = NOW + claims.issued_offset;
        let expires = NOW + claims.expires_offset;
        let after_window = expires.min(issued + 60_000) + late;
        let before_window = issued - 60_000 - late;
        prop_assert!(check_ticket(&integrators(), &text, &signature, after_window).is_err());
        prop_assert!(check_ticket(&integrators(), &text, &signature, before_window).is_err());
    }
}
