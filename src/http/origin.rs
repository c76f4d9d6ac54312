//! Origins parsed as scheme, host and port: integrator patterns (exact, or
//! `scheme://*.domain[:port]` for subdomains only), and the CSRF rule that a
//! state-changing request carrying an `Origin` must come from this service
//! or an allowed integrator.

use super::AppState;
use super::error::AppError;
use axum::extract::Request;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};

/// A browser origin: `scheme://host[:port]`, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses an origin; a path, query, fragment or credentials make it no
    /// origin at all (`https://evil.net/.example.com` is not an origin).
    pub fn parse(text: &str) -> Option<Origin> {
        let url = url::Url::parse(text).ok()?;
        let bare = matches!(url.path(), "" | "/")
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        if !bare {
            return None;
        }
        Some(Origin {
            scheme: url.scheme().to_owned(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }

    /// Whether this origin names `authority` (a `Host` header: host, and
    /// the port, which defaults to this origin's scheme's).
    pub fn is_authority(&self, authority: &str) -> bool {
        let Ok(authority) = authority.parse::<axum::http::uri::Authority>() else {
            return false;
        };
        authority.host().eq_ignore_ascii_case(&self.host)
            && authority.port_u16().unwrap_or(self.default_port()) == self.port
    }

    fn default_port(&self) -> u16 {
        if self.scheme == "https" { 443 } else { 80 }
    }
}

/// One allowed-origin pattern of an integrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Exactly this origin.
    Exact(Origin),
    /// A proper subdomain of `domain`, with this scheme and port.
    Subdomains {
        scheme: String,
        domain: String,
        port: u16,
    },
}

impl Pattern {
    /// Parses `https://app.example.com` or `https://*.example.com[:port]`.
    /// A wildcard without a port means the scheme's default port, as in
    /// the CSP `frame-ancestors` these patterns also feed.
    pub fn parse(text: &str) -> Option<Pattern> {
        match text.split_once("://*.") {
            None => Origin::parse(text).map(Pattern::Exact),
            Some((scheme, rest)) => {
                let Origin { scheme, host, port } = Origin::parse(&format!("{scheme}://{rest}"))?;
                Some(Pattern::Subdomains {
                    scheme,
                    domain: host,
                    port,
                })
            }
        }
    }

    /// Whether `origin` matches.
    pub fn matches(&self, origin: &Origin) -> bool {
        match self {
            Pattern::Exact(exact) => exact == origin,
            Pattern::Subdomains {
                scheme,
                domain,
                port,
            } => {
                *scheme == origin.scheme
                    && *port == origin.port
                    && origin
                        .host
                        .strip_suffix(domain.as_str())
                        .and_then(|label| label.strip_suffix('.'))
                        .is_some_and(|label| !label.is_empty())
            }
        }
    }
}

/// Whether the origin text matches one of the pattern texts (patterns
/// that do not parse match nothing; config loading refuses them).
pub fn origin_allowed(patterns: &[String], origin: &str) -> bool {
    let Some(origin) = Origin::parse(origin) else {
        return false;
    };
    patterns
        .iter()
        .filter_map(|p| Pattern::parse(p))
        .any(|p| p.matches(&origin))
}

/// Methods that change state, so a foreign `Origin` on them is refused.
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The CSRF check: a state-changing request whose `Origin` names neither
/// its own `Host`, `public_url` nor an integrator origin answers 403. A
/// request without `Origin` (servers, old clients) passes.
pub fn check(state: &AppState, request: &Request) -> Option<Response> {
    if !changes_state(request.method()) {
        return None;
    }
    let text = request.headers().get(header::ORIGIN)?;
    let allowed = text
        .to_str()
        .ok()
        .and_then(Origin::parse)
        .is_some_and(|origin| {
            let own_host = request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|host| origin.is_authority(host));
            own_host
                || Origin::parse(&state.public_url).is_some_and(|public| public == origin)
                || state
                    .config
                    .integrators
                    .iter()
                    .flat_map(|i| &i.allowed_origins)
                    .filter_map(|p| Pattern::parse(p))
                    .any(|p| p.matches(&origin))
        });
    if allowed {
        None
    } else {
        Some(AppError::forbidden("Origin not allowed").into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_origins_match_subdomains_only() {
        let patterns = vec![
            "https://*.example.com".to_owned(),
            "https://*.ports.test:8443".to_owned(),
            "http://localhost:4000".to_owned(),
        ];
        assert!(origin_allowed(&patterns, "https://a.example.com"));
        assert!(origin_allowed(&patterns, "https://a.b.example.com"));
        assert!(origin_allowed(&patterns, "https://A.Example.com"));
        assert!(origin_allowed(&patterns, "https://a.ports.test:8443"));
        assert!(origin_allowed(&patterns, "http://localhost:4000"));
        assert!(!origin_allowed(&patterns, "https://a.example.com:8443"));
        assert!(!origin_allowed(&patterns, "https://example.com"));
        assert!(!origin_allowed(&patterns, "https://.example.com"));
        assert!(!origin_allowed(&patterns, "https://example.com.evil.net"));
        assert!(!origin_allowed(&patterns, "https://evil.net/.example.com"));
        assert!(!origin_allowed(&patterns, "https://evil.net?.example.com"));
        assert!(!origin_allowed(&patterns, "https://evil.net#.example.com"));
        assert!(!origin_allowed(&patterns, "https://x@evil.net"));
        assert!(!origin_allowed(&patterns, "https://badexample.com"));
        assert!(!origin_allowed(&patterns, "http://a.example.com"));
        assert!(!origin_allowed(&patterns, "http://localhost:4001"));
        assert!(!origin_allowed(&patterns, "null"));
    }

    #[test]
    fn an_origin_names_its_host_header_with_default_ports() {
        let origin = Origin::parse("http://127.0.0.1:3000").unwrap();
        assert!(origin.is_authority("127.0.0.1:3000"));
        assert!(!origin.is_authority("127.0.0.1:3001"));
        assert!(!origin.is_authority("127.0.0.1"));
        let origin = Origin::parse("https://Chat.Example.org").unwrap();
        assert!(origin.is_authority("chat.example.org"));
        assert!(origin.is_authority("chat.example.org:443"));
        assert!(!origin.is_authority("chat.example.org.evil:443"));
    }
}
