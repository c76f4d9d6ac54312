//! HTML pages, static files, health and readiness, and the envelope 404/405.

use super::error::{AppError, ErrorEnvelope};
use super::extract::AppPath;
use super::pages::{html_page, read_page};
use super::redirect::found;
use super::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use std::path::Path as FsPath;
use tower_http::services::ServeDir;
use utoipa::ToSchema;

/// What `/health` answers (no envelope).
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    status: &'static str,
    /// `chats3`.
    service: &'static str,
}

/// What `/ready` answers while storage answers (no envelope).
#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    status: &'static str,
}

/// What `/ready` answers while storage fails (no envelope).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Degraded {
    /// `degraded`.
    status: &'static str,
    /// Whether the latest storage call failed or timed out.
    storage_failing: bool,
    /// Whether the cluster's Redis did not answer a `PING` (in a cluster).
    redis_failing: bool,
    /// Conversations whose flusher is retrying.
    failing_conversations: usize,
    /// Accepted messages not yet stored.
    pending_messages: usize,
}

/// What a 503 of `/ready` carries: the degradation, or the envelope when
/// the service could not even ask.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum NotReady {
    /// Storage is failing.
    Degraded(Degraded),
    /// The actor system did not answer.
    Unanswered(ErrorEnvelope),
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Health))
)]
pub async fn health() -> Response {
    axum::Json(Health {
        status: "ok",
        service: "chats3",
    })
    .into_response()
}

/// Readiness: 200 while storage answers, 503 while storage calls fail or
/// time out, a flusher is retrying, or (in a cluster) Redis does not
/// answer a `PING`.
///
/// Never waits on storage itself: a probe runs in the background when
/// needed (see `storage::guard`).
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "Storage is failing", body = NotReady),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Response {
    let storage_ok = state.storage.ready();
    let cluster_ok = match state.system.cluster() {
        Some(link) => link.ping().await,
        None => true,
    };
    match state.system.stats().await {
        Ok(stats) if stats.failing_flushers == 0 && storage_ok && cluster_ok => {
            axum::Json(Ready { status: "ready" }).into_response()
        }
        Ok(stats) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(Degraded {
                status: "degraded",
                storage_failing: !storage_ok,
                redis_failing: !cluster_ok,
                failing_conversations: stats.failing_flushers,
                pending_messages: stats.pending_messages,
            }),
        )
            .into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

/// The icon, at `/static/favicon.svg`.
#[utoipa::path(
    get,
    path = "/favicon.ico",
    tag = "pages",
    responses((status = 308, description = "To the icon",
        headers(("Location" = String, description = "`/static/favicon.svg`"))))
)]
pub async fn favicon() -> Redirect {
    Redirect::permanent("/static/favicon.svg")
}

/// Static files under `/static`.
pub fn static_files(dir: &FsPath) -> ServeDir {
    ServeDir::new(dir)
}

/// The start page: to `/join`.
#[utoipa::path(
    get,
    path = "/",
    tag = "pages",
    responses((status = 302, description = "To the join page",
        headers(("Location" = String, description = "`/join`"))))
)]
pub async fn root() -> Response {
    found("/join")
}

/// The join page.
#[utoipa::path(
    get,
    path = "/join",
    operation_id = "join_page",
    tag = "pages",
    responses((status = 200, description = "The page", content_type = "text/html", body = String))
)]
pub async fn join(State(state): State<AppState>) -> Result<Response, AppError> {
    Ok(html_page(
        StatusCode::OK,
        read_page(&state, "join.html").await?,
    ))
}

/// Where the admin password comes from, as the admin page says under its field.
const PASSWORD_GENERATED: &str = "No admin password is configured, so the server generated one \
    for this run: it is in the server's log from startup (the line with admin_password). \
    Set auth.admin_password (or CHATS3_AUTH__ADMIN_PASSWORD) to choose one that lasts.";
/// The note when the configuration names the password.
const PASSWORD_CONFIGURED: &str =
    "The password set in the server's configuration (auth.admin_password).";

/// The admin page, saying where its password comes from.
#[utoipa::path(
    get,
    path = "/admin",
    operation_id = "admin_page",
    tag = "pages",
    responses((status = 200, description = "The page", content_type = "text/html", body = String))
)]
pub async fn admin(State(state): State<AppState>) -> Result<Response, AppError> {
    let note = if state.config.auth.admin_password.is_empty() {
        PASSWORD_GENERATED
    } else {
        PASSWORD_CONFIGURED
    };
    Ok(html_page(
        StatusCode::OK,
        read_page(&state, "admin.html")
            .await?
            .replace("{{ADMIN_PASSWORD_NOTE}}", note),
    ))
}

/// A room's page: any id, HTML-escaped into the page.
#[utoipa::path(
    get,
    path = "/room/{id}",
    operation_id = "room_page",
    tag = "pages",
    params(("id" = String, Path, description = "The conversation's id")),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 400, description = "An id that is not UTF-8", body = ErrorEnvelope),
    )
)]
pub async fn room(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<Response, AppError> {
    let escaped = html_escape::encode_double_quoted_attribute(&id);
    let escaped = escaped.replace('\'', "&#x27;");
    Ok(html_page(
        StatusCode::OK,
        read_page(&state, "room.html")
            .await?
            .replace("{{CONVERSATION_ID}}", &escaped),
    ))
}

/// Unknown routes.
pub async fn not_found() -> AppError {
    AppError::not_found("Route not found")
}

/// Known routes with the wrong method.
pub async fn method_not_allowed() -> AppError {
    AppError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}
