//! Attachments: multipart upload checked against the MIME allow-list and by
//! magic numbers (an image must also decode: it gets a thumbnail),
//! metadata lookup with a self-authorising signed URL to the original or
//! its thumbnail (presigned on S3, HMAC-signed on the fs backend), and that
//! URL's download route for the fs backend.

use super::envelope::{Envelope, ok};
use super::error::{ApiResult, AppError, ErrorEnvelope};
use super::extract::{AppPath, AppQuery, CurrentSession};
use super::redirect::found;
use super::rules::{ALLOWED_TYPES, UploadType};
use super::state::AppState;
use super::validate::invalid;
use crate::thumbnails::{THUMBNAIL_TYPE, ThumbnailError};
use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use chats3_actors::domain::{
    AttachmentMeta, AttachmentUpload, AttachmentVariant, ConversationId, is_key_safe_id,
};
use chats3_actors::time::{now_iso, now_ms};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::openapi::{ContentBuilder, ObjectBuilder, RefOr, ResponseBuilder, Type};
use utoipa::{IntoParams, ToSchema};

/// The multipart body of an upload.
#[derive(ToSchema)]
pub struct UploadForm {
    /// The file, with its declared type as the part's `Content-Type` (one
    /// of the allowed types; its content must match it by magic numbers,
    /// `text/plain` exempt); at most `limits.max_upload` bytes (10 MiB by
    /// default).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// What an upload answers.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Uploaded<'a> {
    /// The attachment's id.
    attachment_id: &'a str,
    /// The file name it was uploaded with.
    original_filename: &'a str,
    /// The declared type, echoed.
    #[schema(value_type = UploadType)]
    mime_type: &'a str,
    /// Its size.
    size_bytes: u64,
}

/// An attachment's metadata and a link to its bytes.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentLink {
    /// The metadata.
    metadata: AttachmentMeta,
    /// A link that authorises itself for 15 minutes (absolute, or relative
    /// to the service).
    signed_url: String,
}

/// The answer of the download route: the original bytes, in the type
/// they were uploaded as (one response per allowed type).
pub struct DownloadedBytes;

impl utoipa::IntoResponses for DownloadedBytes {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let response = ALLOWED_TYPES
            .iter()
            .fold(
                ResponseBuilder::new().description("The attachment's bytes"),
                |response, kind| {
                    let bytes = ObjectBuilder::new()
                        .schema_type(Type::String)
                        .content_media_type(*kind);
                    response.content(*kind, ContentBuilder::new().schema(Some(bytes)).build())
                },
            )
            .build();
        BTreeMap::from([("200".to_owned(), response.into())])
    }
}

/// Whether the bytes are what the declared type says, by magic numbers.
/// Plain text has none, so it passes when nothing binary is detected.
pub fn content_matches(declared: &str, data: &[u8]) -> bool {
    match infer::get(data) {
        Some(kind) => kind.mime_type() == declared,
        None => declared == "text/plain" && std::str::from_utf8(data).is_ok(),
    }
}

/// Uploads a file into the caller's conversation (multipart field `file`).
#[utoipa::path(
    post,
    path = "/api/v1/attachments",
    tag = "attachments",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Stored", body = Envelope<Uploaded>),
        (status = 400, description = "No `file` part, a type outside the allow-list, content that is not the declared type, or a malformed body", body = ErrorEnvelope),
        (status = 413, description = "Larger than the upload limit, or past the conversation's quota", body = ErrorEnvelope),
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    session: CurrentSession,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult {
    let mut multipart = multipart.map_err(|_| {
        AppError::new(
            StatusCode::BAD_REQUEST,
            "Request is not multipart/form-data",
        )
    })?;
    let max = state.config.limits.max_upload;
    let too_large = || AppError::too_large(format!("File too large (max {max} bytes)"));
    let mut found = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(e, max))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let declared = field
            .content_type()
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_else(|| "text/plain".into());
        let filename: String = field
            .file_name()
            .unwrap_or("file")
            .chars()
            .filter(|c| !c.is_control() && !matches!(c, '/' | '\\'))
            .take(255)
            .collect();
        let mut data = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, max))? {
            if data.len() + chunk.len() > max {
                return Err(too_large());
            }
            data.extend_from_slice(&chunk);
        }
        found = Some((declared, filename, data));
        break;
    }
    let (declared, filename, data) =
        found.ok_or_else(|| AppError::new(StatusCode::BAD_REQUEST, "No file uploaded"))?;
    if !ALLOWED_TYPES.contains(&declared.as_str()) {
        return Err(AppError::new(
            StatusCode::BAD_REQUEST,
            "File type not allowed",
        ));
    }
    if !content_matches(&declared, &data) {
        return Err(AppError::new(
            StatusCode::BAD_REQUEST,
            "Invalid file content (magic number mismatch)",
        ));
    }
    let data = bytes::Bytes::from(data);
    let thumbnail = state
        .thumbnails
        .make(&declared, data.clone())
        .await
        .map_err(thumbnail_error)?;
    let variants = thumbnail.as_ref().map(|t| {
        serde_json::json!({ "thumbnail": {
            "mimeType": THUMBNAIL_TYPE,
            "width": t.width,
            "height": t.height,
            "sizeBytes": t.bytes.len(),
        }})
    });
    let meta = AttachmentMeta {
        attachment_id: uuid::Uuid::new_v4().to_string(),
        conversation_id: session.0.conversation_id.to_string(),
        uploader_user_id: session.0.user_id.clone(),
        original_filename: if filename.is_empty() {
            "file".into()
        } else {
            filename
        },
        mime_type: declared,
        size_bytes: data.len() as u64,
        created_at: now_iso(),
        variants,
    };
    let upload = AttachmentUpload {
        meta,
        data,
        thumbnail: thumbnail.map(|t| t.bytes),
    };
    let meta = session.conversation(&state).put_attachment(upload).await?;
    Ok(ok(
        "Attachment uploaded",
        Uploaded {
            attachment_id: &meta.attachment_id,
            original_filename: &meta.original_filename,
            mime_type: &meta.mime_type,
            size_bytes: meta.size_bytes,
        },
    ))
}

fn thumbnail_error(e: ThumbnailError) -> AppError {
    match e {
        ThumbnailError::Undecodable(_) | ThumbnailError::TooManyPixels { .. } => {
            AppError::new(StatusCode::BAD_REQUEST, e.to_string())
        }
        ThumbnailError::Busy => AppError {
            retry_after: Some(1),
            ..AppError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        },
    }
}

/// The form `?variant=` names (the original when absent).
fn variant_of(query: Option<&str>) -> Result<AttachmentVariant, AppError> {
    match query {
        None => Ok(AttachmentVariant::Original),
        Some(name) => AttachmentVariant::parse(name).ok_or_else(|| {
            invalid(
                "variant",
                "invalid_enum_value",
                "Expected 'original' | 'thumbnail'",
            )
        }),
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError, max: usize) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::too_large(format!("File too large (max {max} bytes)"))
    } else {
        AppError::new(
            StatusCode::BAD_REQUEST,
            format!("Malformed multipart body: {}", e.body_text()),
        )
    }
}

/// Query of `GET /api/v1/attachments/:id`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttachmentQuery {
    /// `true` redirects to the signed link.
    download: Option<String>,
    /// `thumbnail` for the thumbnail of an image; the original when absent.
    variant: Option<String>,
}

/// An attachment of the caller's conversation: its metadata and a signed link.
#[utoipa::path(
    get,
    path = "/api/v1/attachments/{id}",
    operation_id = "get_attachment",
    tag = "attachments",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "The attachment's id"), AttachmentQuery),
    responses(
        (status = 200, description = "The metadata and a link valid 15 minutes", body = Envelope<AttachmentLink>),
        (status = 302, description = "With `download=true`: to the signed link",
            headers(("Location" = String, description = "The signed link"))),
        (status = 400, description = "Unusable query", body = ErrorEnvelope),
        (status = 404, description = "Unknown here (or in another conversation)", body = ErrorEnvelope),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    session: CurrentSession,
    AppPath(id): AppPath<String>,
    AppQuery(query): AppQuery<AttachmentQuery>,
) -> ApiResult {
    let variant = variant_of(query.variant.as_deref())?;
    if !is_key_safe_id(&id, 100) {
        return Err(AppError::not_found("Attachment not found"));
    }
    let (meta, signed_url) = session
        .conversation(&state)
        .attachment_link(&id, variant)
        .await?;
    if query.download.as_deref() == Some("true") {
        return Ok(found(&signed_url));
    }
    Ok(ok(
        "Attachment retrieved",
        AttachmentLink {
            metadata: meta,
            signed_url,
        },
    ))
}

/// Query of the fs download route.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// `thumbnail` for the thumbnail of an image; the original when absent.
    variant: Option<String>,
    /// When the link expires, in milliseconds since the epoch.
    expires: i64,
    /// The link's signature.
    sig: String,
}

/// The bytes behind a signed link of the fs backend (no session needed).
///
/// `signedUrl` points here when storage is a local directory; the link
/// expires 15 minutes after it was made.
#[utoipa::path(
    get,
    path = "/api/v1/files/{conversation}/{id}",
    tag = "attachments",
    params(
        ("conversation" = String, Path, description = "The conversation's id"),
        ("id" = String, Path, description = "The attachment's id"),
        DownloadQuery,
    ),
    responses(
        DownloadedBytes,
        (status = 400, description = "Unusable query", body = ErrorEnvelope),
        (status = 403, description = "Wrong signature, or the link expired", body = ErrorEnvelope),
        (status = 404, description = "No such attachment", body = ErrorEnvelope),
    )
)]
pub async fn download(
    State(state): State<AppState>,
    AppPath((conversation, id)): AppPath<(String, String)>,
    AppQuery(query): AppQuery<DownloadQuery>,
) -> ApiResult {
    let variant = variant_of(query.variant.as_deref())?;
    if !state
        .download_links
        .verify(&conversation, &id, variant, query.expires, &query.sig)
    {
        return Err(AppError::forbidden("Invalid signature"));
    }
    if now_ms() > query.expires {
        return Err(AppError::forbidden("Link expired"));
    }
    let conversation_id = ConversationId::parse(&conversation)
        .ok_or_else(|| AppError::not_found("Attachment not found"))?;
    if !is_key_safe_id(&id, 100) {
        return Err(AppError::not_found("Attachment not found"));
    }
    let (meta, data) = state
        .system
        .conversation(conversation_id)
        .attachment_data(&id, variant)
        .await?;
    let mime_type = meta.mime_type_of(variant);
    let mut response = Response::new(axum::body::Body::from(data));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(mime_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    let disposition = if mime_type.starts_with("image/") {
        "inline"
    } else {
        "attachment"
    };
    let filename = match variant {
        AttachmentVariant::Original => meta.original_filename.clone(),
        other => format!("{}-{}.jpg", other.name(), meta.attachment_id),
    };
    let encoded: String = url::form_urlencoded::byte_serialize(filename.as_bytes()).collect();
    if let Ok(value) = HeaderValue::from_str(&format!("{disposition}; filename*=UTF-8''{encoded}"))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=900"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::content_matches;

    #[test]
    fn magic_numbers_must_match_the_declared_type() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert!(content_matches("image/png", png));
        assert!(!content_matches("image/jpeg", png));
        assert!(!content_matches("image/png", b"not an image"));
        assert!(content_matches("text/plain", b"hello"));
        assert!(!content_matches("text/plain", png));
    }
}
