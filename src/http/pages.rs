//! The HTML pages under `static/`: read at each request (an edited page
//! shows without a restart) and answered with `Cache-Control: no-cache`.

use super::error::AppError;
use super::state::AppState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// The text of the page `name` in the static directory.
pub async fn read_page(state: &AppState, name: &str) -> Result<String, AppError> {
    tokio::fs::read_to_string(state.static_dir.join(name))
        .await
        .map_err(|e| AppError::internal(format!("page {name}: {e}")))
}

/// A page's answer with `status`.
pub fn html_page(status: StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
