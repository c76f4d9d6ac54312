//! The HTTP layer (axum): handlers validate input, send actor messages
//! through typed handles and shape the replies. They hold no state of their
//! own beyond [`AppState`].

pub mod admin;
pub mod admission;
pub mod attachments;
pub mod client_addr;
pub mod client_config;
pub mod cookies;
pub mod embed;
pub mod error;
pub mod events;
pub mod extract;
pub mod headers;
pub mod log_throttle;
pub mod messages;
pub mod metrics;
pub mod origin;
pub mod participation;
pub mod poll_on_wake;
pub mod rate_limit;
pub mod rules;
pub mod sanitize;
pub mod signing;
pub mod system_message;
pub mod validate;
pub mod views;

use crate::config::Config;
use crate::storage::Storage;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, patch, post};
use chats3_actors::System;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Everything handlers share.
pub struct AppInner {
    pub system: System,
    pub config: Config,
    pub storage: Storage,
    /// Cancelled at shutdown: ends every event stream.
    pub shutdown: CancellationToken,
    pub admin_password: String,
    /// Key of the fs backend's signed download links.
    pub download_key: Vec<u8>,
    /// Base URL of absolute links.
    pub public_url: String,
    pub static_dir: PathBuf,
    pub metrics: metrics::Metrics,
    pub limiter: rate_limit::Limiter,
    /// Headers every answer carries, rendered once at startup.
    pub security_headers: Vec<(axum::http::HeaderName, axum::http::HeaderValue)>,
}

/// Shared state of the router.
#[derive(Clone)]
pub struct AppState(pub Arc<AppInner>);

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// The whole router, used by `main` and by tests.
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/conversations", post(admin::create))
        .route("/conversations/{id}", post(admin::get_one))
        .route("/conversations/{id}/close", post(admin::close))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            rate_limit::admin,
        ));
    let api = Router::new()
        .nest("/admin", admin)
        .route("/join", post(participation::join))
        .route("/leave", post(participation::leave))
        .route("/session", get(participation::session))
        .route("/conversation", get(participation::conversation))
        .route("/embed", post(embed::create_session))
        .route("/messages", get(messages::list).post(messages::create))
        .route(
            "/messages/{id}",
            patch(messages::edit).delete(messages::remove),
        )
        .route("/messages/{id}/read", post(messages::read))
        .route("/messages/{id}/reactions", post(messages::add_reaction))
        .route(
            "/messages/{id}/reactions/{emoji}",
            delete(messages::remove_reaction),
        )
        .route(
            "/presence",
            get(participation::presence).post(participation::set_presence),
        )
        .route("/client-config", get(client_config::client_config))
        .route("/reactions", get(messages::reactions).post(messages::react))
        .route("/system-message", post(system_message::create))
        .route("/signaling", get(events::stream).post(events::signal))
        .route("/attachments", post(attachments::upload))
        .route("/attachments/{id}", get(attachments::get_one))
        .route("/files/{conversation}/{id}", get(attachments::download));
    let upload_limit = state.config.limits.max_upload + admission::MULTIPART_OVERHEAD;
    Router::new()
        .nest("/api/v1", api)
        .route("/health", get(views::health))
        .route("/favicon.ico", get(views::favicon))
        .route("/ready", get(views::ready))
        .route("/metrics", get(metrics::render))
        .route("/", get(views::root))
        .route("/join", get(views::join))
        .route("/admin", get(views::admin))
        .route("/room/{id}", get(views::room))
        .route("/embed", get(embed::landing))
        .nest_service("/static", views::static_files(&state.static_dir))
        .fallback(views::not_found)
        .method_not_allowed_fallback(views::method_not_allowed)
        .layer(DefaultBodyLimit::max(upload_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            admission::admission,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            headers::panic_response,
        ))
        .layer(headers::cors(&state.config))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            headers::request_context,
        ))
        .with_state(state)
}
