//! Per-client-address rate limits (governor; the address as
//! [`super::client_addr`] resolves it): one budget over all routes and one
//! per admin route. A 429 carries `Retry-After` in seconds.

use super::AppState;
use super::error::AppError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;

/// The limiters; `None` where the configuration disables one.
pub struct Limiter {
    global: Option<DefaultKeyedRateLimiter<IpAddr>>,
    admin: Option<DefaultKeyedRateLimiter<(IpAddr, String)>>,
}

impl Limiter {
    /// Limiters for the given budgets (0 disables one).
    pub fn new(per_ip_per_minute: u32, admin_per_minute: u32) -> Self {
        Limiter {
            global: NonZeroU32::new(per_ip_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            admin: NonZeroU32::new(admin_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
        }
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

fn client_ip(state: &AppState, request: &Request) -> Option<IpAddr> {
    super::client_addr::client_ip(&state.config.server.trusted_proxies, request)
}

fn exempt(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics") || path.starts_with("/static/")
}

/// The budget over all routes: the 429 answer when the request's address
/// has spent it.
pub fn check_global(state: &AppState, request: &Request) -> Option<Response> {
    let (Some(limiter), Some(ip)) = (&state.limiter.global, client_ip(state, request)) else {
        return None;
    };
    if exempt(request.uri().path()) {
        return None;
    }
    let not_until = limiter.check_key(&ip).err()?;
    Some(too_many(wait_secs(&not_until)))
}

/// The budget of each admin route.
pub async fn admin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let (Some(limiter), Some(ip)) = (&state.limiter.admin, client_ip(&state, &request)) {
        let route = request.extensions().get::<MatchedPath>().map_or_else(
            || request.uri().path().to_owned(),
            |p| p.as_str().to_owned(),
        );
        if let Err(not_until) = limiter.check_key(&(ip, route)) {
            return too_many(wait_secs(&not_until));
        }
    }
    next.run(request).await
}
