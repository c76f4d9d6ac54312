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
//!   [`embed`], [`messages`], [`search`] (of the whole history),
//!   [`signaling`] (event stream and relay),
//!   [`system_message`], [`attachments`], [`metrics`], [`views`] (pages,
//!   health, 404/405), [`docs`] (`/openapi.json`, `/docs`); and [`ws`]
//!   (the WebSocket), whose commands call the functions the other areas'
//!   handlers call, so a command and its HTTP route share one validation
//!   path;
//! - [`openapi`]: the OpenAPI document, from the handlers' annotations;
//! - what handlers share: [`extract`] and [`query`] (typed requests),
//!   [`validate`] (bodies into values), [`envelope`], [`error`] and
//!   [`redirect`] (answers), [`event_stream`] (the SSE body),
//!   [`ticket`] (embed ticket rules), [`pages`] (the HTML pages' files),
//!   [`cookies`], [`sanitize`],
//!   [`origin`], [`client_addr`], [`counters`], [`log_throttle`].

pub mod admin;
pub mod attachments;
pub mod client_addr;
pub mod client_config;
pub mod cookies;
pub mod counters;
pub mod docs;
pub mod embed;
pub mod envelope;
pub mod error;
pub mod event_stream;
pub mod extract;
pub mod layers;
pub mod log_throttle;
pub mod messages;
pub mod metrics;
pub mod openapi;
pub mod origin;
pub mod pages;
pub mod participation;
pub mod query;
pub mod redirect;
pub mod rules;
pub mod sanitize;
pub mod search;
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
use layers::{admission, context, cors, rate_limit};
use tower::ServiceBuilder;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The event stream's path (`GET` opens a stream, `POST` relays a
/// signal): its handlers' route, and what the serve layer's
/// fresh-connection writer recognises.
pub const EVENT_STREAM_PATH: &str = "/api/v1/signaling";

/// The WebSocket's path: its handler's route, and the upgrade the serve
/// layer's fresh-connection writer recognises.
pub const WEBSOCKET_PATH: &str = "/api/v1/ws";

/// The upload route: its handler's route, and the one request whose body
/// admission lets take longer than `request_timeout`.
pub const UPLOAD_PATH: &str = "/api/v1/attachments";

/// The admin routes, which have a rate limit of their own.
fn admin_routes() -> OpenApiRouter<AppState> {
    let admin = OpenApiRouter::new()
        .routes(routes!(admin::create))
        .routes(routes!(admin::get_one))
        .routes(routes!(admin::close));
    #[cfg(feature = "fault-injection")]
    let admin = admin.routes(routes!(admin::crash));
    admin
}

/// Every other route. Routes are added only through `routes!`, which
/// takes each handler's `#[utoipa::path]`: a route is in the OpenAPI
/// document because it is served (a test holds the router to this).
fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(participation::join))
        .routes(routes!(participation::leave))
        .routes(routes!(participation::session))
        .routes(routes!(participation::conversation))
        .routes(routes!(
            participation::presence,
            participation::set_presence
        ))
        .routes(routes!(embed::create_session))
        .routes(routes!(messages::list, messages::create))
        .routes(routes!(messages::edit, messages::remove))
        .routes(routes!(messages::read))
        .routes(routes!(messages::unread))
        .routes(routes!(search::search))
        .routes(routes!(messages::add_reaction))
        .routes(routes!(messages::remove_reaction))
        .routes(routes!(messages::reactions, messages::react))
        .routes(routes!(client_config::client_config))
        .routes(routes!(system_message::create))
        .routes(routes!(signaling::stream, signaling::signal))
        .routes(routes!(ws::open))
        .routes(routes!(attachments::upload))
        .routes(routes!(attachments::get_one))
        .routes(routes!(attachments::download))
        .routes(routes!(views::health))
        .routes(routes!(views::favicon))
        .routes(routes!(views::ready))
        .routes(routes!(metrics::render))
        .routes(routes!(views::root))
        .routes(routes!(views::join))
        .routes(routes!(views::admin))
        .routes(routes!(views::room))
        .routes(routes!(embed::landing))
        .routes(routes!(docs::document))
        .routes(routes!(docs::page))
        .routes(routes!(docs::page_asset))
}

/// The OpenAPI document of [`router`]'s routes.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut routes = admin_routes().into_openapi();
    routes.merge(public_routes().into_openapi());
    openapi::document(routes)
}

/// The whole router, used by `main` and by tests.
pub fn router(state: AppState) -> Router {
    let admin = admin_routes().route_layer(middleware::from_fn_with_state(
        state.clone(),
        rate_limit::admin,
    ));
    let (routes, _) = public_routes().merge(admin).split_for_parts();
    let upload_limit = state.config.limits.max_upload + admission::MULTIPART_OVERHEAD;
    let routes = routes
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
