//! The headers every answer carries, rendered once at startup: nosniff,
//! the Content-Security-Policy, the referrer policy, X-XSS-Protection (as
//! Chats3 sends it) and, in production, HSTS.

use crate::config::Config;
use axum::http::{HeaderName, HeaderValue, header};
use std::sync::Arc;

/// The rendered headers, shared by every answer.
#[derive(Clone)]
pub struct SecurityHeaders(Arc<[(HeaderName, HeaderValue)]>);

impl SecurityHeaders {
    /// The headers for `config`.
    pub fn new(config: &Config) -> Self {
        let mut headers = vec![
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("strict-origin-when-cross-origin"),
            ),
            (
                header::X_XSS_PROTECTION,
                HeaderValue::from_static("1; mode=block"),
            ),
        ];
        if let Ok(csp) = HeaderValue::from_str(&content_security_policy(config)) {
            headers.push((header::CONTENT_SECURITY_POLICY, csp));
        }
        if config.server.production {
            headers.push((
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            ));
        }
        SecurityHeaders(headers.into())
    }

    /// Each header and its value.
    pub fn iter(&self) -> impl Iterator<Item = &(HeaderName, HeaderValue)> {
        self.0.iter()
    }
}

/// The Content-Security-Policy, with `frame-ancestors 'self'` plus every
/// integrator origin.
fn content_security_policy(config: &Config) -> String {
    let mut ancestors = String::from("'self'");
    for origin in config.all_origins() {
        ancestors.push(' ');
        ancestors.push_str(origin);
    }
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https:; \
         media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors {ancestors};"
    )
}
