//! Attachments: multipart upload checked against the MIME allow-list and by
//! magic numbers (an image must also decode: it gets a thumbnail),
//! metadata lookup with a self-authorising signed URL to the original or
//! its thumbnail (presigned on S3, HMAC-signed on the fs backend), and that
//! URL's download route for the fs backend.

use super::envelope::ok;
use super::error::{ApiResult, AppError};
use super::extract::{AppPath, AppQuery, CurrentSession};
use super::redirect::found;
use super::rules::ALLOWED_TYPES;
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
use serde::Deserialize;
use serde_json::json;

/// Whether the bytes are what the declared type says, by magic numbers.
/// Plain text has none, so it passes when nothing binary is detected.
pub fn content_matches(declared: &str, data: &[u8]) -> bool {
    match infer::get(data) {
        Some(kind) => kind.mime_type() == declared,
        None => declared == "text/plain" && std::str::from_utf8(data).is_ok(),
    }
}

/// `POST /api/v1/attachments` (multipart field `file`)
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
        json!({ "thumbnail": {
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
        json!({
            "attachmentId": meta.attachment_id,
            "originalFilename": meta.original_filename,
            "mimeType": meta.mime_type,
            "sizeBytes": meta.size_bytes,
        }),
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
#[derive(Deserialize)]
pub struct AttachmentQuery {
    download: Option<String>,
    variant: Option<String>,
}

/// `GET /api/v1/attachments/:id[?download=true][&variant=thumbnail]`
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
        json!({ "metadata": meta, "signedUrl": signed_url }),
    ))
}

/// Query of the fs download route.
#[derive(Deserialize)]
pub struct DownloadQuery {
    variant: Option<String>,
    expires: i64,
    sig: String,
}

/// `GET /api/v1/files/:conversation/:id?[variant=&]expires=&sig=`: the fs
/// backend's signed, expiring link; no session needed.
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
