//! What `GET /embed` answers a browser when the ticket cannot open the
//! room: a page with a friendly text in place of the service's message
//! (which stays the plain-text answer for clients that do not ask for
//! HTML), whose script tells the embedding page over `postMessage`, only
//! when that page's origin is an integrator's allowed origin.

use axum::http::{HeaderMap, StatusCode, header};

/// The template under `static/`.
pub(super) const TEMPLATE: &str = "embed-failure.html";

/// Why the room did not open, in the terms the person and the embedding
/// page need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// The ticket was used already, expired, or is too old or too new:
    /// a fresh one would work.
    TicketExpired,
    /// The ticket is not acceptable at all (signature, integrator,
    /// fields, origin).
    TicketRefused,
    /// The conversation is closed.
    Closed,
    /// The conversation is at its participant limit.
    Full,
    /// No such conversation.
    NotFound,
    /// An active participant has the ticket's display name.
    NameTaken,
    /// Rate-limited or overloaded: later would work.
    Busy,
    /// Anything else.
    Unavailable,
}

impl Failure {
    /// The failure behind an answer of `status` with `message`.
    pub(super) fn of(status: StatusCode, message: &str) -> Failure {
        match status {
            StatusCode::FORBIDDEN => match message {
                "Ticket expired"
                | "Ticket too old"
                | "Ticket issued in the future"
                | "Nonce already used (replay attack)" => Failure::TicketExpired,
                "Conversation is closed" => Failure::Closed,
                "Conversation is full" => Failure::Full,
                _ => Failure::TicketRefused,
            },
            StatusCode::BAD_REQUEST => Failure::TicketRefused,
            StatusCode::NOT_FOUND => Failure::NotFound,
            StatusCode::CONFLICT => Failure::NameTaken,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => Failure::Busy,
            _ => Failure::Unavailable,
        }
    }

    /// The code the embedding page receives (`reason`).
    pub(super) fn reason(self) -> &'static str {
        match self {
            Failure::TicketExpired => "ticket-expired",
            Failure::TicketRefused => "ticket-refused",
            Failure::Closed => "closed",
            Failure::Full => "full",
            Failure::NotFound => "not-found",
            Failure::NameTaken => "name-taken",
            Failure::Busy => "busy",
            Failure::Unavailable => "unavailable",
        }
    }

    /// The page's heading.
    pub(super) fn title(self) -> &'static str {
        match self {
            Failure::TicketExpired => "This chat link has expired",
            Failure::TicketRefused => "The chat could not be opened",
            Failure::Closed => "This conversation is closed",
            Failure::Full => "This conversation is full",
            Failure::NotFound => "This conversation does not exist",
            Failure::NameTaken => "You are already in this chat",
            Failure::Busy => "The chat is busy",
            Failure::Unavailable => "The chat is unavailable",
        }
    }

    /// What the person can do about it.
    pub(super) fn text(self) -> &'static str {
        match self {
            Failure::TicketExpired => {
                "Chat links work once and for a short time. Try again to open a fresh one."
            }
            Failure::TicketRefused => {
                "This site's chat link was not accepted. Try again; if it keeps happening, let the site know."
            }
            Failure::Closed => "It no longer takes new participants.",
            Failure::Full => "Too many people are in it right now. Try again in a few minutes.",
            Failure::NotFound => {
                "It may have been removed. Let the site know if you expected it here."
            }
            Failure::NameTaken => {
                "Someone in it uses your name: close the chat in your other tabs or windows, then try again."
            }
            Failure::Busy => "Too many requests right now. Try again in a moment.",
            Failure::Unavailable => "Something went wrong on our side. Try again in a moment.",
        }
    }
}

/// Whether the request asks for a page (a browser's navigation does).
pub(super) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// The embedding page's origin, if it is one an integrator allows: the
/// `Referer`'s origin (the iframe's page), else the ticket's `origin`.
pub(super) fn host_origin(
    headers: &HeaderMap,
    ticket: Option<&str>,
    allowed: impl Fn(&str) -> bool,
) -> Option<String> {
    let from_referer = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| u.origin().ascii_serialization());
    let from_ticket = ticket
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|t| t.get("origin")?.as_str().map(str::to_owned));
    [from_referer, from_ticket]
        .into_iter()
        .flatten()
        .find(|origin| allowed(origin))
}

/// The page: `template` with the failure's texts and the origin filled in
/// (each HTML-escaped).
pub(super) fn render(
    template: &str,
    failure: Failure,
    status: StatusCode,
    host: Option<&str>,
) -> String {
    let attr = |s: &str| html_escape::encode_double_quoted_attribute(s).into_owned();
    let text = |s: &str| html_escape::encode_text(s).into_owned();
    template
        .replace("{{REASON}}", &attr(failure.reason()))
        .replace("{{STATUS}}", &attr(status.as_str()))
        .replace("{{HOST_ORIGIN}}", &attr(host.unwrap_or_default()))
        .replace("{{TITLE}}", &text(failure.title()))
        .replace("{{TEXT}}", &text(failure.text()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_used_or_stale_ticket_is_an_expired_link() {
        for message in [
            "Ticket expired",
            "Ticket too old",
            "Ticket issued in the future",
            "Nonce already used (replay attack)",
        ] {
            assert_eq!(
                Failure::of(StatusCode::FORBIDDEN, message),
                Failure::TicketExpired
            );
        }
        assert_eq!(
            Failure::of(StatusCode::FORBIDDEN, "Invalid signature"),
            Failure::TicketRefused
        );
        assert_eq!(
            Failure::of(StatusCode::FORBIDDEN, "Conversation is closed"),
            Failure::Closed
        );
        assert_eq!(
            Failure::of(StatusCode::SERVICE_UNAVAILABLE, "Storage unavailable"),
            Failure::Busy
        );
    }

    #[test]
    fn only_an_allowed_origin_hears_of_the_failure() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::REFERER,
            HeaderValue::from_static("https://evil.test/page"),
        );
        let allowed = |o: &str| o == "https://shop.test";
        let ticket = r#"{"origin":"https://shop.test"}"#;
        assert_eq!(
            host_origin(&headers, Some(ticket), allowed).as_deref(),
            Some("https://shop.test")
        );
        assert_eq!(host_origin(&headers, Some("{}"), allowed), None);
        headers.insert(
            header::REFERER,
            HeaderValue::from_static("https://shop.test/checkout?x=1"),
        );
        assert_eq!(
            host_origin(&headers, None, allowed).as_deref(),
            Some("https://shop.test")
        );
    }

    #[test]
    fn the_page_escapes_what_it_fills_in() {
        let page = render(
            "<main data-host-origin=\"{{HOST_ORIGIN}}\">{{TITLE}}</main>",
            Failure::Closed,
            StatusCode::FORBIDDEN,
            Some("https://a.test\"><script>"),
        );
        assert!(!page.contains("\"><script>"), "{page}");
        assert!(page.contains("This conversation is closed"));
    }
}
