//! Rate limits. Per client address (governor; the address as
//! [`crate::http::client_addr`] resolves it): one budget over all routes
//! and one per admin route. Per user: a message budget
//! ([`per_user`]), spent by every send, whichever way it comes in
//! ([`Limiter::spend_message`]). A 429 carries `Retry-After` in seconds.

pub mod per_user;

use crate::config::Config;
use crate::http::client_addr::{ProxyNet, client_ip, client_ip_of};
use crate::http::error::AppError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chats3_actors::domain::Session;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use per_user::{MAX_TRACKED_USERS, UserBudget};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

/// The limiters (`None` where the configuration disables one) and the
/// proxies whose `X-Forwarded-For` names the client.
pub struct Limiter {
    global: Option<DefaultKeyedRateLimiter<IpAddr>>,
    admin: Option<DefaultKeyedRateLimiter<(IpAddr, String)>>,
    messages: Option<UserBudget>,
    trusted_proxies: Vec<ProxyNet>,
}

impl Limiter {
    /// Limiters for the configured budgets (0 disables one).
    pub fn new(config: &Config) -> Self {
        Limiter {
            global: keyed(config.rate_limit.per_ip_per_minute),
            admin: keyed(config.rate_limit.admin_per_minute),
            messages: NonZeroU32::new(config.rate_limit.messages_per_user_per_minute)
                .map(|n| UserBudget::new(n, MAX_TRACKED_USERS)),
            trusted_proxies: config.server.trusted_proxies.clone(),
        }
    }

    fn client_ip(&self, request: &Request) -> Option<IpAddr> {
        client_ip(&self.trusted_proxies, request)
    }

    /// Spends one message of the session's user: the 429 when their
    /// budget is spent. Every way of sending a message calls this once
    /// per message, just before it goes to the conversation.
    pub fn spend_message(&self, session: &Session) -> Result<(), AppError> {
        let Some(messages) = &self.messages else {
            return Ok(());
        };
        messages
            .spend(&session.conversation_id, &session.user_id, Instant::now())
            .map_err(|wait| rate_limited(wait.as_secs_f64().ceil() as u64))
    }

    /// The client address the budgets count a request of `parts` against.
    pub fn address_of(&self, parts: &Parts) -> Option<IpAddr> {
        client_ip_of(&self.trusted_proxies, &parts.extensions, &parts.headers)
    }

    /// Forgets addresses and users whose budget is full again, bounding
    /// memory.
    pub fn sweep(&self) {
        if let Some(messages) = &self.messages {
            messages.sweep(Instant::now());
        }
        if let Some(l) = &self.global {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.admin {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// A keyed limiter of `per_minute` (0: none).
fn keyed<K: Clone + Eq + std::hash::Hash>(per_minute: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

/// The 429 of a spent budget, full again in `wait_secs`.
fn rate_limited(wait_secs: u64) -> AppError {
    let seconds = wait_secs.max(1);
    let unit = if seconds == 1 { "second" } else { "seconds" };
    AppError {
        retry_after: Some(seconds),
        ..AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Rate limit exceeded, retry in {seconds} {unit}"),
        )
    }
}

fn too_many(wait_secs: u64) -> Response {
    rate_limited(wait_secs).into_response()
}

fn wait_secs(not_until: &governor::NotUntil<<DefaultClock as Clock>::Instant>) -> u64 {
    not_until
        .wait_time_from(DefaultClock::default().now())
        .as_secs_f64()
        .ceil() as u64
}

/// Paths outside the budget over all routes (probes, metrics, static files).
pub fn exempt(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics") || path.starts_with("/static/")
}

/// The budget over all routes: the 429 answer when the request's address
/// has spent it.
pub fn check_global(limiter: &Limiter, request: &Request) -> Option<Response> {
    if exempt(request.uri().path()) {
        return None;
    }
    check_address(limiter, limiter.client_ip(request)?)
}

/// The budget over all routes, spent by one request of `ip` (a command
/// sent up a WebSocket spends it as its HTTP request would).
pub fn check_address(limiter: &Limiter, ip: IpAddr) -> Option<Response> {
    let global = limiter.global.as_ref()?;
    let not_until = global.check_key(&ip).err()?;
    Some(too_many(wait_secs(&not_until)))
}

/// The budget of each admin route.
pub async fn admin(State(limiter): State<Arc<Limiter>>, request: Request, next: Next) -> Response {
    if let (Some(admin), Some(ip)) = (&limiter.admin, limiter.client_ip(&request)) {
        let route = request.extensions().get::<MatchedPath>().map_or_else(
            || request.uri().path().to_owned(),
            |p| p.as_str().to_owned(),
        );
        if let Err(not_until) = admin.check_key(&(ip, route)) {
            return too_many(wait_secs(&not_until));
        }
    }
    next.run(request).await
}
