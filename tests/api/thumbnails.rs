//! Thumbnails: every allowed image type gets a JPEG of at most 200 x 200
//! (aspect kept, never enlarged), named in `metadata.variants` and served
//! through `?variant=thumbnail`'s signed URL on fs and S3; other types get
//! none; an image that does not decode, or declares too many pixels, is
//! refused and not stored.

use crate::attachments::upload;
use crate::helpers::*;
use crate::s3_server::S3Server;
use crate::storage::use_s3;
use image::{ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use serde_json::Value;

/// An image of `width` x `height` in `format`: a gradient, with alpha
/// where the format has it.
fn encoded(format: ImageFormat, width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut out = std::io::Cursor::new(&mut bytes);
    match format {
        ImageFormat::Jpeg => RgbImage::from_fn(width, height, |x, y| Rgb([x as u8, y as u8, 90]))
            .write_to(&mut out, format),
        _ => RgbaImage::from_fn(width, height, |x, y| Rgba([x as u8, y as u8, 90, 200]))
            .write_to(&mut out, format),
    }
    .unwrap();
    bytes
}

/// Uploads and answers the attachment's id.
async fn uploaded(app: &TestApp, session: &str, name: &str, mime: &str, data: Vec<u8>) -> String {
    let response = upload(app, session, name, mime, data).await;
    assert_eq!(response.status(), 200, "{name}");
    envelope(response).await["details"]["attachmentId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// An absolute URL of a `signedUrl`.
fn absolute(app: &TestApp, url: &str) -> String {
    if url.starts_with('/') {
        app.url(url)
    } else {
        url.to_owned()
    }
}

/// The attachment's metadata and its thumbnail's bytes, fetched without a
/// session through the signed URL; the `download=true` redirect leads to
/// the same bytes.
async fn thumbnail(app: &TestApp, session: &str, id: &str) -> (Value, Vec<u8>) {
    let path = format!("/api/v1/attachments/{id}?variant=thumbnail");
    let response = app.get_as(session, &path).await;
    assert_eq!(response.status(), 200);
    let details = envelope(response).await["details"].clone();
    let url = absolute(app, details["signedUrl"].as_str().unwrap());
    let served = reqwest::get(&url).await.unwrap();
    assert_eq!(served.status(), 200, "the signed URL authorises itself");
    let bytes = served.bytes().await.unwrap().to_vec();
    let redirect = app.get_as(session, &format!("{path}&download=true")).await;
    assert!(redirect.status().is_redirection());
    let location = redirect.headers()["location"].to_str().unwrap();
    let followed = reqwest::get(absolute(app, location)).await.unwrap();
    assert_eq!(followed.bytes().await.unwrap().as_ref(), bytes.as_slice());
    (details["metadata"].clone(), bytes)
}

/// Uploads each allowed image type and checks its thumbnail's metadata
/// and the JPEG its URL serves.
async fn every_image_type_gets_its_thumbnail(app: &TestApp, session: &str) {
    let cases = [
        (ImageFormat::Jpeg, "image/jpeg", (640, 480), (200, 150)),
        (ImageFormat::Png, "image/png", (300, 600), (100, 200)),
        (ImageFormat::Gif, "image/gif", (250, 250), (200, 200)),
        (ImageFormat::WebP, "image/webp", (500, 100), (200, 40)),
    ];
    for (format, mime, (width, height), expected) in cases {
        let data = encoded(format, width, height);
        let id = uploaded(app, session, "picture", mime, data.clone()).await;
        let (metadata, bytes) = thumbnail(app, session, &id).await;
        assert_eq!(metadata["mimeType"], mime, "the original's type stays");
        assert_eq!(metadata["sizeBytes"], data.len());
        let variant = &metadata["variants"]["thumbnail"];
        assert_eq!(variant["mimeType"], "image/jpeg", "{mime}");
        assert_eq!(
            (variant["width"].as_u64(), variant["height"].as_u64()),
            (Some(u64::from(expected.0)), Some(u64::from(expected.1))),
            "{mime}"
        );
        assert_eq!(variant["sizeBytes"], bytes.len(), "{mime}");
        let decoded = image::load_from_memory_with_format(&bytes, ImageFormat::Jpeg)
            .unwrap_or_else(|e| panic!("{mime}: the thumbnail is no JPEG: {e}"));
        assert_eq!((decoded.width(), decoded.height()), expected, "{mime}");

        let original = envelope(
            app.get_as(session, &format!("/api/v1/attachments/{id}"))
                .await,
        )
        .await["details"]["signedUrl"]
            .as_str()
            .unwrap()
            .to_owned();
        let original = reqwest::get(absolute(app, &original)).await.unwrap();
        assert_eq!(
            original.bytes().await.unwrap().as_ref(),
            data.as_slice(),
            "the plain URL still serves the original"
        );
    }
}

#[tokio::test]
async fn each_image_type_gets_a_jpeg_thumbnail_within_200_pixels() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    every_image_type_gets_its_thumbnail(&app, &joined[0].session_id).await;
}

#[tokio::test]
async fn thumbnails_work_on_s3_with_presigned_urls() {
    let server = S3Server::start().await;
    let app = spawn_app_with(|c| use_s3(c, &server.details(), "")).await;
    let (id, joined) = app.room_with(&["Ann"]).await;
    every_image_type_gets_its_thumbnail(&app, &joined[0].session_id).await;
    let stored = walk(&server.object_path(&format!("conversations/{id}/attachments")));
    let thumbnails = stored.iter().filter(|p| p.ends_with("thumbnail")).count();
    assert_eq!(thumbnails, 4, "{stored:?}");
}

#[tokio::test]
async fn a_small_image_is_not_enlarged() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    let id = uploaded(
        &app,
        session,
        "tiny.png",
        "image/png",
        encoded(ImageFormat::Png, 40, 30),
    )
    .await;
    let (metadata, bytes) = thumbnail(&app, session, &id).await;
    assert_eq!(metadata["variants"]["thumbnail"]["width"], 40);
    assert_eq!(metadata["variants"]["thumbnail"]["height"], 30);
    let decoded = image::load_from_memory_with_format(&bytes, ImageFormat::Jpeg).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (40, 30));
}

#[tokio::test]
async fn other_types_have_no_variants_and_no_thumbnail() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    let id = uploaded(
        &app,
        session,
        "notes.txt",
        "text/plain",
        b"just words".to_vec(),
    )
    .await;
    let info = envelope(
        app.get_as(session, &format!("/api/v1/attachments/{id}"))
            .await,
    )
    .await;
    assert_eq!(info["details"]["metadata"]["variants"], Value::Null);
    let (status, message, _) = failure(
        app.get_as(
            session,
            &format!("/api/v1/attachments/{id}?variant=thumbnail"),
        )
        .await,
    )
    .await;
    assert_eq!((status, message.as_str()), (404, "Thumbnail not found"));
    let (status, message, body) = failure(
        app.get_as(session, &format!("/api/v1/attachments/{id}?variant=huge"))
            .await,
    )
    .await;
    assert_eq!((status, message.as_str()), (400, "Validation error"));
    assert_eq!(body["details"][0]["path"][0], "variant", "{body}");
}

/// Nothing of the conversation's uploads is stored.
fn no_uploads_stored(app: &TestApp, conversation: &str) {
    let attachments = app
        .data_dir
        .path()
        .join(format!("conversations/{conversation}/attachments"));
    assert!(walk(&attachments).is_empty(), "{:?}", walk(&attachments));
}

#[tokio::test]
async fn an_image_that_does_not_decode_is_refused_and_not_stored() {
    let app = spawn_app().await;
    let (id, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    let mut truncated = encoded(ImageFormat::Png, 300, 300);
    truncated.truncate(truncated.len() / 2);
    let mut garbled = b"\x89PNG\r\n\x1a\n".to_vec();
    garbled.extend(std::iter::repeat_n(0x5a, 500));
    let mut broken_jpeg = encoded(ImageFormat::Jpeg, 300, 300);
    broken_jpeg.truncate(200);
    let cases = [
        ("half.png", "image/png", truncated),
        ("garbled.png", "image/png", garbled),
        ("broken.jpg", "image/jpeg", broken_jpeg),
    ];
    for (name, mime, data) in cases {
        let (status, message, _) = failure(upload(&app, session, name, mime, data).await).await;
        assert_eq!(status, 400, "{name}");
        assert!(message.starts_with("Invalid image"), "{name}: {message}");
    }
    no_uploads_stored(&app, &id);
}

/// CRC-32 (IEEE) of PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    let mut typed = kind.to_vec();
    typed.extend_from_slice(data);
    out.extend_from_slice(&typed);
    out.extend_from_slice(&crc32(&typed).to_be_bytes());
    out
}

/// A valid PNG of about 1 KiB whose header declares `side` x `side` RGBA
/// pixels (10 GB decoded): its one IDAT holds the start of a zlib stream
/// of zero rows.
fn bomb(side: u32) -> Vec<u8> {
    let mut header = side.to_be_bytes().to_vec();
    header.extend_from_slice(&side.to_be_bytes());
    header.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut zlib = vec![0x78, 0x01, 0x00];
    let stored = 900u16;
    zlib.extend_from_slice(&stored.to_le_bytes());
    zlib.extend_from_slice(&(!stored).to_le_bytes());
    zlib.extend(std::iter::repeat_n(0, usize::from(stored)));
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &header));
    png.extend(chunk(b"IDAT", &zlib));
    png.extend(chunk(b"IEND", &[]));
    png
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_from_its_header_and_not_stored() {
    let app = spawn_app().await;
    let (id, joined) = app.room_with(&["Ann"]).await;
    let data = bomb(50_000);
    assert!(data.len() < 1100, "{}", data.len());
    let response = upload(&app, &joined[0].session_id, "bomb.png", "image/png", data).await;
    let (status, message, _) = failure(response).await;
    assert_eq!(status, 400);
    assert!(
        message.starts_with("Image too large: 50000 x 50000 pixels"),
        "refused from the declared size, before decoding: {message}"
    );
    no_uploads_stored(&app, &id);
}
