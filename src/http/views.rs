//! HTML pages, static files, health and readiness, and the envelope 404/405.

use super::error::AppError;
use super::extract::AppPath;
use super::redirect::found;
use super::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::json;
use std::path::Path as FsPath;
use tower_http::services::ServeDir;

/// `GET /health`
pub async fn health() -> Response {
    axum::Json(json!({"status": "ok", "service": "chats3"})).into_response()
}

/// `GET /ready`: 200 while storage answers, 503 while storage calls fail
/// or time out, a flusher is retrying, or (in a cluster) Redis does not
/// answer a `PING`. Never waits on storage itself:
/// a probe runs in the background when needed (see `storage::guard`).
pub async fn ready(State(state): State<AppState>) -> Response {
    let storage_ok = state.storage.ready();
    let cluster_ok = match state.system.cluster() {
        Some(link) => link.ping().await,
        None => true,
    };
    match state.system.stats().await {
        Ok(stats) if stats.failing_flushers == 0 && storage_ok && cluster_ok => axum::Json(json!({"status": "ready"})).into_response(),
        Ok(stats) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "degraded", "storageFailing": !storage_ok, "redisFailing": !cluster_ok, "failingConversations": stats.failing_flushers, "pendingMessages": stats.pending_messages})),
        )
            .into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

/// `GET /favicon.ico`
pub async fn favicon() -> Redirect {
    Redirect::permanent("/static/favicon.svg")
}

/// Static files under `/static`.
pub fn static_files(dir: &FsPath) -> ServeDir {
    ServeDir::new(dir)
}

async fn page(state: &AppState, name: &str) -> Result<String, AppError> {
    tokio::fs::read_to_string(state.static_dir.join(name))
        .await
        .map_err(|e| AppError::internal(format!("page {name}: {e}")))
}

fn html(body: String) -> Response {
    let mut response = Html(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /` → `/join`
pub async fn root() -> Response {
    found("/join")
}

/// `GET /join`
pub async fn join(State(state): State<AppState>) -> Result<Response, AppError> {
    Ok(html(page(&state, "join.html").await?))
}

/// `GET /admin`
pub async fn admin(State(state): State<AppState>) -> Result<Response, AppError> {
    Ok(html(page(&state, "admin.html").await?))
}

/// `GET /room/:id`: any id, HTML-escaped into the page.
pub async fn room(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<Response, AppError> {
    let escaped = html_escape::encode_double_quoted_attribute(&id);
    let escaped = escaped.replace('\'', "&#x27;");
    Ok(html(
        page(&state, "room.html")
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
