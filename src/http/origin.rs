//! Origins parsed as scheme, host and port, and integrator patterns
//! (exact, or `scheme://*.domain[:port]` for subdomains only) that allow
//! them.

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
        /// `http` or `https`.
        scheme: String,
        /// The domain, lowercase, whose subdomains match.
        domain: String,
        /// The port (the scheme's default when the pattern names none).
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

/// Parsed allowed-origin patterns (patterns that do not parse match
/// nothing; config loading refuses them).
#[derive(Debug, Clone, Default)]
pub struct AllowList(Vec<Pattern>);

impl AllowList {
    /// The patterns among `texts` that parse.
    pub fn parse<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        AllowList(texts.into_iter().filter_map(Pattern::parse).collect())
    }

    /// Whether `origin` matches one of the patterns.
    pub fn allows(&self, origin: &Origin) -> bool {
        self.0.iter().any(|p| p.matches(origin))
    }

    /// Whether the origin text parses and matches one of the patterns.
    pub fn allows_text(&self, origin: &str) -> bool {
        Origin::parse(origin).is_some_and(|origin| self.allows(&origin))
    }
}

/// Whether the origin text matches one of the pattern texts.
pub fn origin_allowed(patterns: &[String], origin: &str) -> bool {
    AllowList::parse(patterns.iter().map(String::as_str)).allows_text(origin)
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
