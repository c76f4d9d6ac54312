//! `GET /openapi.json` (the document [`super::openapi_document`] builds
//! from the routes) and `GET /docs`, Swagger UI for it, served entirely by
//! this service from files built into the binary: no script, style or
//! font from another host, and no call to a validator.

use super::error::{AppError, ErrorEnvelope};
use super::extract::AppPath;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::sync::{Arc, LazyLock};
use utoipa_swagger_ui::Config;

/// Where the document is served; the page loads it from here.
const DOCUMENT_PATH: &str = "/openapi.json";

/// The page's folder: its files are at `/docs/{file}`.
const PAGE_BASE: &str = "/docs/";

/// The document as JSON, rendered once.
static DOCUMENT: LazyLock<Bytes> = LazyLock::new(|| {
    super::openapi_document()
        .to_json()
        .map(Bytes::from)
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "the OpenAPI document does not serialize");
            Bytes::from_static(b"{}")
        })
});

/// Swagger UI's settings: this document, and no validator (the default
/// sends the document to a validator on another host).
static PAGE_CONFIG: LazyLock<Arc<Config<'static>>> =
    LazyLock::new(|| Arc::new(Config::new([DOCUMENT_PATH]).validator_url("none")));

/// Answers `bytes` as `content_type`, revalidated on each use (the page
/// and the document change with the binary).
fn file(content_type: &str, bytes: Bytes) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// One file of Swagger UI (`""` is its page), or `None`.
fn page_file(name: &str) -> Option<(String, Bytes)> {
    match utoipa_swagger_ui::serve(name, PAGE_CONFIG.clone()) {
        Ok(Some(found)) => Some((found.content_type, Bytes::from(found.bytes.into_owned()))),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, file = name, "Swagger UI file unusable");
            None
        }
    }
}

/// The OpenAPI 3.1 document of this service.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi_document",
    tag = "documentation",
    responses((status = 200, description = "This document", body = Object))
)]
pub async fn document() -> Response {
    file("application/json", DOCUMENT.clone())
}

/// The interactive page for the document (Swagger UI).
///
/// Its files come from `/docs/{file}`; it calls no other host.
#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "docs_page",
    tag = "documentation",
    responses((status = 200, description = "The page", content_type = "text/html", body = String))
)]
pub async fn page() -> Result<Response, AppError> {
    let (content_type, html) =
        page_file("").ok_or_else(|| AppError::internal("Swagger UI page missing"))?;
    // The page names its files relative to itself; served at `/docs`
    // rather than `/docs/`, they resolve under `/docs/` only with a base.
    let html = String::from_utf8_lossy(&html).replacen(
        "<head>",
        &format!("<head>\n    <base href=\"{PAGE_BASE}\">"),
        1,
    );
    Ok(file(&content_type, Bytes::from(html)))
}

/// A file of the page: its scripts, styles and icons.
#[utoipa::path(
    get,
    path = "/docs/{file}",
    operation_id = "docs_file",
    tag = "documentation",
    params(("file" = String, Path, description = "e.g. `swagger-ui-bundle.js`")),
    responses(
        (status = 200, description = "The file",
            content(("text/javascript"), ("text/css"), ("image/png"), ("text/html"))),
        (status = 404, description = "No such file", body = ErrorEnvelope),
    )
)]
pub async fn page_asset(AppPath(name): AppPath<String>) -> Result<Response, AppError> {
    let (content_type, bytes) = page_file(&name)
        .filter(|_| !name.is_empty())
        .ok_or_else(|| AppError::not_found("File not found"))?;
    Ok(file(&content_type, bytes))
}
