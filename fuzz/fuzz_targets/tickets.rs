//! Ticket parsing and verification: any text and signature is refused or
//! granted without a panic, and a grant stays within the ticket bounds.
//! The first byte chooses a valid signature over the text, so the fuzzer
//! also reaches the rules after the signature check.
#![no_main]

use chats3::config::Integrator;
use chats3::http::ticket::check_ticket;
use chats3::signing::sign;
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_800_000_000_000;
const SECRET: &str = "fuzz-secret";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (ticket_text, signature) = if mode & 1 == 0 {
        (text, sign(SECRET.as_bytes(), text.as_bytes()))
    } else {
        let (ticket_text, signature) = text.split_once('\u{0}').unwrap_or((text, ""));
        (ticket_text, signature.to_owned())
    };
    let integrators = [Integrator {
        id: "acme".into(),
        secret: SECRET.into(),
        allowed_origins: vec!["https://*.acme.test".into(), "http://localhost:4000".into()],
        auto_create: false,
    }];
    if let Ok(granted) = check_ticket(&integrators, ticket_text, &signature, NOW) {
        assert!(granted.user.user_id.chars().count() <= 100);
        let name = granted.user.display_name.chars().count();
        assert!((1..=50).contains(&name));
        assert!(granted.nonce.chars().count() <= 200);
        assert!(!granted.nonce.is_empty());
    }
});
