//! The router's state: [`AppState`], what handlers share, and the parts a
//! layer takes on its own (`State<Arc<Counters>>`, `State<Arc<Admission>>`,
//! `State<Arc<Limiter>>`, `State<SecurityHeaders>`) through [`FromRef`].

use super::counters::Counters;
use super::layers::admission::Admission;
use super::layers::rate_limit::Limiter;
use super::layers::security_headers::SecurityHeaders;
use crate::config::Config;
use crate::storage::Storage;
use crate::storage::links::DownloadLinks;
use crate::thumbnails::Thumbnailer;
use axum::extract::FromRef;
use chats3_actors::System;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Everything handlers share.
pub struct AppInner {
    /// The actor system.
    pub system: System,
    /// The configuration the service runs with.
    pub config: Config,
    /// The store, its counters and its health.
    pub storage: Storage,
    /// Cancelled at shutdown: ends every event stream.
    pub shutdown: CancellationToken,
    /// Password of the admin routes (configured or generated).
    pub admin_password: String,
    /// The fs backend's signed download links (checked by its route).
    pub download_links: Arc<DownloadLinks>,
    /// Base URL of absolute links.
    pub public_url: String,
    /// Directory of the browser UI.
    pub static_dir: PathBuf,
    /// Requests, messages and streams counted.
    pub counters: Arc<Counters>,
    /// The rate limiters (swept periodically).
    pub limiter: Arc<Limiter>,
    /// What admission checks against.
    pub admission: Arc<Admission>,
    /// Headers every answer carries, rendered once at startup.
    pub security_headers: SecurityHeaders,
    /// Makes the thumbnails of uploaded images, a few at a time.
    pub thumbnails: Thumbnailer,
}

/// Shared state of the router.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

impl AppState {
    /// The state over `inner`.
    pub fn new(inner: AppInner) -> Self {
        AppState(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl FromRef<AppState> for Arc<Counters> {
    fn from_ref(state: &AppState) -> Self {
        state.counters.clone()
    }
}

impl FromRef<AppState> for Arc<Admission> {
    fn from_ref(state: &AppState) -> Self {
        state.admission.clone()
    }
}

impl FromRef<AppState> for Arc<Limiter> {
    fn from_ref(state: &AppState) -> Self {
        state.limiter.clone()
    }
}

impl FromRef<AppState> for SecurityHeaders {
    fn from_ref(state: &AppState) -> Self {
        state.security_headers.clone()
    }
}
