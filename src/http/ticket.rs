//! Embed tickets: the rules an integrator-signed ticket must pass, in the
//! documented order, each failure a 403 that says which check failed. The
//! nonce is the one rule that needs state: it is checked when the user
//! enters ([`chats3_actors::System::enter_embedded`]).

use super::origin::origin_allowed;
use super::validate::is_url;
use crate::config::Integrator;
use crate::signing::verify;
use chats3_actors::domain::{ConversationId, Role, Sender};
use chats3_actors::time::parse_iso_ms;
use serde_json::Value;

/// How far `issuedAt` may be from the server's clock, either way: a
/// ticket is then usable for at most twice this, within the nonces' memory.
const TICKET_MAX_SKEW_MS: i64 = 60_000;

/// Fields every ticket carries.
const REQUIRED: [&str; 9] = [
    "integratorId",
    "conversationId",
    "userId",
    "displayName",
    "role",
    "origin",
    "issuedAt",
    "expiresAt",
    "nonce",
];

/// Why a ticket was refused: 403, or 404 for a conversation id that
/// cannot exist.
#[derive(Debug, PartialEq, Eq)]
pub enum TicketError {
    /// 403 with this message.
    Refused(&'static str),
    /// 404: the conversation id is not a valid id.
    UnknownConversation,
}

/// What a ticket that passed every rule grants.
#[derive(Debug)]
pub struct Ticket {
    /// The conversation it opens.
    pub conversation_id: ConversationId,
    /// Who enters.
    pub user: Sender,
    /// Its one-time nonce (at most 200 characters).
    pub nonce: String,
    /// Whether a missing conversation is created (its integrator's
    /// `auto_create`).
    pub create_missing: bool,
}

/// Checks a ticket's text and signature against the integrators at `now`
/// (milliseconds since the epoch).
pub fn check_ticket(
    integrators: &[Integrator],
    ticket_text: &str,
    signature: &str,
    now: i64,
) -> Result<Ticket, TicketError> {
    use TicketError::Refused;
    let ticket: Value = serde_json::from_str(ticket_text)
        .map_err(|_| Refused("Validation error: ticket is not valid JSON"))?;
    let field = |name: &str| {
        ticket
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if REQUIRED.iter().any(|name| field(name).is_none()) {
        return Err(Refused("Missing required fields"));
    }
    let text = |name: &str| field(name).unwrap_or_default();
    let integrator = integrators
        .iter()
        .find(|i| i.id == text("integratorId"))
        .ok_or(Refused("Unknown integrator"))?;
    if !verify(
        integrator.secret.as_bytes(),
        ticket_text.as_bytes(),
        signature,
    ) {
        return Err(Refused("Invalid signature"));
    }
    if parse_iso_ms(text("expiresAt")).is_none_or(|t| now > t) {
        return Err(Refused("Ticket expired"));
    }
    let issued_at = parse_iso_ms(text("issuedAt"));
    if issued_at.is_none_or(|t| now - t > TICKET_MAX_SKEW_MS) {
        return Err(Refused("Ticket too old"));
    }
    if issued_at.is_some_and(|t| t - now > TICKET_MAX_SKEW_MS) {
        return Err(Refused("Ticket issued in the future"));
    }
    if !origin_allowed(&integrator.allowed_origins, text("origin")) {
        return Err(Refused("Origin not allowed"));
    }
    let role = match text("role") {
        "user" => Role::User,
        "admin" => Role::Admin,
        _ => return Err(Refused("Invalid role")),
    };
    let conversation_id =
        ConversationId::parse(text("conversationId")).ok_or(TicketError::UnknownConversation)?;
    let (user_id, display_name) = (text("userId"), text("displayName").trim());
    // The same rule as join's avatarUrl: an http(s) URL of at most 500.
    let avatar_url = field("avatarUrl");
    if user_id.chars().count() > 100
        || display_name.is_empty()
        || display_name.chars().count() > 50
        || avatar_url.is_some_and(|u| u.chars().count() > 500 || !is_url(u))
    {
        return Err(Refused("Invalid user in ticket"));
    }
    Ok(Ticket {
        conversation_id,
        user: Sender {
            user_id: user_id.to_owned(),
            display_name: display_name.to_owned(),
            avatar_url: avatar_url.map(str::to_owned),
            role,
        },
        nonce: text("nonce").chars().take(200).collect(),
        create_missing: integrator.auto_create,
    })
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::{Ticket, TicketError, check_ticket};
    use crate::config::Integrator;
    use crate::signing::sign;
    use chats3_actors::time::iso_from_ms;
    use serde_json::{Value, json};

    const NOW: i64 = 1_800_000_000_000;

    fn integrators() -> Vec<Integrator> {
        vec![Integrator {
            id: "acme".into(),
            secret: "s3cret".into(),
            allowed_origins: vec!["https://*.acme.test".into()],
            auto_create: false,
        }]
    }

    fn ticket() -> Value {
        json!({
            "integratorId": "acme",
            "conversationId": "room-1",
            "userId": "u-1",
            "displayName": " Ann ",
            "role": "user",
            "origin": "https://app.acme.test",
            "issuedAt": iso_from_ms(NOW - 1_000),
            "expiresAt": iso_from_ms(NOW + 300_000),
            "nonce": "n-1",
        })
    }

    fn check(ticket: &Value) -> Result<Ticket, TicketError> {
        let text = ticket.to_string();
        check_ticket(
            &integrators(),
            &text,
            &sign(b"s3cret", text.as_bytes()),
            NOW,
        )
    }

    fn with(name: &str, value: Value) -> Value {
        let mut t = ticket();
        t[name] = value;
        t
    }

    #[test]
    fn a_good_ticket_grants_its_user() {
        let granted = check(&ticket()).unwrap();
        assert_eq!(granted.conversation_id.as_str(), "room-1");
        assert_eq!(granted.user.display_name, "Ann");
        assert_eq!(granted.nonce, "n-1");
    }

    #[test]
    fn each_rule_says_which_check_failed() {
        let refused = |t: Value| match check(&t) {
            Err(TicketError::Refused(message)) => message,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(refused(with("nonce", json!(""))), "Missing required fields");
        assert_eq!(
            refused(with("integratorId", json!("other"))),
            "Unknown integrator"
        );
        assert_eq!(
            refused(with("expiresAt", json!(iso_from_ms(NOW - 1)))),
            "Ticket expired"
        );
        assert_eq!(
            refused(with("issuedAt", json!(iso_from_ms(NOW - 61_000)))),
            "Ticket too old"
        );
        assert_eq!(
            refused(with("issuedAt", json!(iso_from_ms(NOW + 61_000)))),
            "Ticket issued in the future"
        );
        assert_eq!(
            refused(with("origin", json!("https://evil.test"))),
            "Origin not allowed"
        );
        assert_eq!(refused(with("role", json!("root"))), "Invalid role");
        assert_eq!(
            refused(with("avatarUrl", json!("javascript:alert(1)"))),
            "Invalid user in ticket"
        );
        assert_eq!(
            check(&with("conversationId", json!("bad id!"))).err(),
            Some(TicketError::UnknownConversation)
        );
    }

    #[test]
    fn a_signature_over_other_text_is_refused() {
        let text = ticket().to_string();
        let signature = sign(b"s3cret", b"something else");
        assert_eq!(
            check_ticket(&integrators(), &text, &signature, NOW).err(),
            Some(TicketError::Refused("Invalid signature"))
        );
        assert_eq!(
            check_ticket(&integrators(), "not json", &signature, NOW).err(),
            Some(TicketError::Refused(
                "Validation error: ticket is not valid JSON"
            ))
        );
    }
}
