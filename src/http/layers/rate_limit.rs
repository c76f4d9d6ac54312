//! Per-client-address rate limits (governor; the address as
//! [`crate::http::client_addr`] resolves it): one budget over all routes
//! and one per admin route. A 429 carries `Retry-After` in seconds.

use crate::config::Config;
use crate::http::client_addr::{ProxyNet, client_ip};
use crate::http::error::AppError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

/// The limiters (`None` where the configuration disables one) and the
/// proxies whose `X-Forwarded-For` names the client.
pub struct Limiter {
    global: Option<DefaultKeyedRateLimiter<IpAddr>>,
    admin: Option<DefaultKeyedRateLimiter<(IpAddr, String)>>,
    trusted_proxies: Vec<ProxyNet>,
}

impl Limiter {
    /// Limiters for the configured budgets (0 disables one).
    pub fn new(config: &Config) -> Self {
        Limiter {
            global: keyed(config.rate_limit.per_ip_per_minute),
            admin: keyed(config.rate_limit.admin_per_minute),
            trusted_proxies: config.server.trusted_proxies.clone(),
        }
    }

    fn client_ip(&self, request: &Request) -> Option<IpAddr> {
        client_ip(&self.trusted_proxies, request)
    }

    /// Forgets addresses whose budget is full again, bounding memory.
    pub fn sweep(&self) {
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

fn too_many(wait_secs: u64) -> Response {
    let seconds = wait_secs.max(1);
    let unit = if seconds == 1 { "second" } else { "seconds" };
    AppError {
        retry_after: Some(seconds),
        ..AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Rate limit exceeded, retry in {seconds} {unit}"),
        )
    }
    .into_response()
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
    let (Some(global), Some(ip)) = (&limiter.global, limiter.client_ip(request)) else {
        return None;
    };
    if exempt(request.uri().path()) {
        return None;
    }
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
