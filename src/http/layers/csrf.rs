//! The CSRF rule: a state-changing request whose `Origin` names neither
//! its own `Host`, `public_url` nor an integrator origin answers 403. A
//! WebSocket upgrade counts as state-changing (commands go up the socket,
//! and browsers send cookies with it from any page). A request without
//! `Origin` (servers, old clients) passes.

use crate::config::Config;
use crate::http::error::AppError;
use crate::http::origin::{AllowList, Origin};
use axum::extract::Request;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};

/// The origins a state-changing request may come from besides its own
/// `Host`, parsed once.
pub struct AllowedOrigins {
    public: Option<Origin>,
    integrators: AllowList,
}

impl AllowedOrigins {
    /// `public_url`'s origin and every integrator's patterns.
    pub fn new(config: &Config, public_url: &str) -> Self {
        AllowedOrigins {
            public: Origin::parse(public_url),
            integrators: AllowList::parse(config.all_origins()),
        }
    }

    fn allow(&self, request: &Request, origin: &Origin) -> bool {
        let own_host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|host| origin.is_authority(host));
        own_host || self.public.as_ref() == Some(origin) || self.integrators.allows(origin)
    }
}

/// Requests that may change state, so a foreign `Origin` on them is
/// refused: methods other than reads, and upgrades.
fn changes_state(request: &Request) -> bool {
    !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || request.headers().contains_key(header::UPGRADE)
}

/// The 403 answer when `request` breaks the rule.
pub fn check(allowed: &AllowedOrigins, request: &Request) -> Option<Response> {
    if !changes_state(request) {
        return None;
    }
    let text = request.headers().get(header::ORIGIN)?;
    let passes = text
        .to_str()
        .ok()
        .and_then(Origin::parse)
        .is_some_and(|origin| allowed.allow(request, &origin));
    if passes {
        None
    } else {
        Some(AppError::forbidden("Origin not allowed").into_response())
    }
}
