//! The HTTP layer (axum): handlers validate input, send actor messages
//! through typed handles and shape the replies. They hold no state of their
//! own beyond [`AppState`].
//!
//! Layout:
//! - the router ([`router`]) and the paths other layers recognise;
//! - [`state`]: [`AppState`] and the parts layers take of it;
//! - [`layers`]: what every request passes before a handler;
//! - handlers, one file per API area, none importing another:
//!   [`admin`], [`participation`] (join, leave, session, presence),
//!   [`embed`], [`messages`], [`signaling`] (event stream and relay),
//!   [`system_message`], [`attachments`], [`metrics`], [`views`] (pages,
//!   health, 404/405); and [`ws`] (the WebSocket), whose commands call the
//!   functions the other areas' handlers call, so a command and its HTTP
//!   route share one validation path;
//! - what handlers share: [`extract`] and [`query`] (typed requests),
//!   [`validate`] (bodies into values), [`envelope`], [`error`] and
//!   [`redirect`] (answers), [`event_stream`] (the SSE body),
//!   [`ticket`] (embed ticket rules), [`cookies`], [`sanitize`],
//!   [`origin`], [`client_addr`], [`counters`], [`log_throttle`].

pub mod admin;
pub mod attachments;
pub mod client_addr;
pub mod client_config;
pub mod cookies;
pub mod counters;
pub mod embed;
pub mod envelope;
pub mod error;
pub mod event_stream;
pub mod extract;
pub mod layers;
pub mod log_throttle;
pub mod messages;
pub mod metrics;
pub mod origin;
pub mod participation;
pub mod query;
pub mod redirect;
pub mod rules;
pub mod sanitize;
pub mod signaling;
pub mod state;
pub mod system_message;
pub mod ticket;
pub mod validate;
pub mod views;
pub mod ws;

pub use state::AppState;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, patch, post};
use layers::{admission, context, cors, rate_limit};
use tower::ServiceBuilder;

/// The event stream's path (`GET` opens a stream, `POST` relays a
/// signal): the route here, and what the serve layer's fresh-connection
/// writer recognises.
pub const EVENT_STREAM_PATH: &str = "/api/v1/signaling";

/// The WebSocket's path: the route here, and the upgrade the serve layer's
/// fresh-connection writer recognises.
pub const WEBSOCKET_PATH: &str = "/api/v1/ws";

/// The upload route: the route here, and the one request whose body
/// admission lets take longer than `request_timeout`.
pub const UPLOAD_PATH: &str = "/api/v1/attachments";

/// The whole router, used by `main` and by tests.
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/conversations", post(admin::create))
        .route("/conversations/{id}", post(admin::get_one))
        .route("/conversations/{id}/close", post(admin::close));
    #[cfg(feature = "fault-injection")]
    let admin = admin.route("/conversations/{id}/crash", post(admin::crash));
    let admin = admin.route_layer(middleware::from_fn_with_state(
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
        .route("/attachments/{id}", get(attachments::get_one))
        .route("/files/{conversation}/{id}", get(attachments::download));
    let upload_limit = state.config.limits.max_upload + admission::MULTIPART_OVERHEAD;
    let routes = Router::new()
        .nest("/api/v1", api)
        .route(
            EVENT_STREAM_PATH,
            get(signaling::stream).post(signaling::signal),
        )
        .route(WEBSOCKET_PATH, get(ws::open))
        .route(UPLOAD_PATH, post(attachments::upload))
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
            error::panic_response,
        ))
        .layer(cors::layer(&state.config))
        .with_state(state.clone());
    // The request context wraps the routed router once rather than each
    // route: as a route layer, every request cloned the whole boxed route
    // stack beneath it twice (with the route, then for `Next`), allocating
    // at each layer; over a `Router` the clone is a reference count. It
    // reads only the method and path, so it may run before routing. The
    // other layers stay route layers, so what routing adds to their answers
    // (the `Allow` of a CORS preflight's method fallback) stays the same.
    let layered = ServiceBuilder::new()
        .layer(middleware::from_fn_with_state(
            state.clone(),
            context::request_context,
        ))
        .service(routes);
    Router::new().fallback_service(layered)
}
