//! Attachments: a real PNG accepted and downloaded through its signed URL,
//! spoofed and oversize files refused.

use crate::helpers::*;
use reqwest::multipart::{Form, Part};

/// A valid 1×1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0,
    0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

pub async fn upload(
    app: &TestApp,
    session: &str,
    name: &str,
    mime: &str,
    data: Vec<u8>,
) -> reqwest::Response {
    let part = Part::bytes(data)
        .file_name(name.to_owned())
        .mime_str(mime)
        .unwrap();
    app.client
        .post(app.url("/api/v1/attachments"))
        .header("x-session-id", session)
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .unwrap()
}

/// Uploads the PNG and checks it downloads back through the signed URL.
pub async fn png_round_trip(app: &TestApp, session: &str) {
    let response = upload(app, session, "dot.png", "image/png", PNG.to_vec()).await;
    assert_eq!(response.status(), 200);
    let body = envelope(response).await;
    assert_eq!(body["message"], "Attachment uploaded");
    let details = body["details"].clone();
    assert_eq!(details["originalFilename"], "dot.png");
    assert_eq!(details["mimeType"], "image/png");
    assert_eq!(details["sizeBytes"], PNG.len());
    let id = details["attachmentId"].as_str().unwrap();

    let info = envelope(
        app.get_as(session, &format!("/api/v1/attachments/{id}"))
            .await,
    )
    .await["details"]
        .clone();
    let metadata = &info["metadata"];
    assert_eq!(metadata["attachmentId"], id);
    assert_eq!(metadata["sizeBytes"], PNG.len());
    assert_eq!(metadata["variants"]["thumbnail"]["width"], 1, "{metadata}");
    for field in [
        "conversationId",
        "uploaderUserId",
        "originalFilename",
        "mimeType",
        "createdAt",
    ] {
        assert!(metadata[field].is_string(), "{field}");
    }
    let url = info["signedUrl"].as_str().unwrap();
    let url = if url.starts_with('/') {
        app.url(url)
    } else {
        url.to_owned()
    };
    let anonymous = reqwest::get(&url).await.unwrap();
    assert_eq!(anonymous.status(), 200, "the signed URL authorises itself");
    assert_eq!(anonymous.bytes().await.unwrap().as_ref(), PNG);

    let redirect = app
        .get_as(session, &format!("/api/v1/attachments/{id}?download=true"))
        .await;
    assert!(redirect.status().is_redirection());
}

#[tokio::test]
async fn a_real_png_is_accepted_and_downloaded() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    png_round_trip(&app, &joined[0].session_id).await;
}

#[tokio::test]
async fn spoofed_disallowed_and_oversize_files_are_refused() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann", "Bob"]).await;
    let session = &joined[0].session_id;
    let spoofed = upload(
        &app,
        session,
        "evil.png",
        "image/png",
        b"<script>alert(1)</script>".to_vec(),
    )
    .await;
    assert_eq!(
        failure(spoofed).await.1,
        "Invalid file content (magic number mismatch)"
    );
    let mismatch = upload(&app, session, "dot.jpg", "image/jpeg", PNG.to_vec()).await;
    assert_eq!(
        failure(mismatch).await.0,
        400,
        "any mismatch between declared and detected types"
    );
    let exe = upload(
        &app,
        session,
        "run.exe",
        "application/x-msdownload",
        b"MZ\x90\x00".to_vec(),
    )
    .await;
    assert_eq!(failure(exe).await.1, "File type not allowed");
    let text = upload(
        &app,
        session,
        "notes.txt",
        "text/plain",
        b"just words".to_vec(),
    )
    .await;
    assert_eq!(text.status(), 200);
    let mut big = PNG.to_vec();
    big.resize(10 * 1024 * 1024 + 1, 0);
    let oversize = upload(&app, session, "big.png", "image/png", big).await;
    assert_eq!(failure(oversize).await.0, 413);
    let none = app
        .client
        .post(app.url("/api/v1/attachments"))
        .header("x-session-id", session)
        .multipart(Form::new().text("other", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(failure(none).await.1, "No file uploaded");
    let missing = app
        .get_as(
            session,
            "/api/v1/attachments/00000000-0000-0000-0000-000000000000",
        )
        .await;
    assert_eq!(failure(missing).await.0, 404);
    let escape = app
        .get_as(session, "/api/v1/attachments/..%2F..%2Fmeta.json")
        .await;
    assert_eq!(failure(escape).await.0, 404);
    let forged = app
        .client
        .get(app.url("/api/v1/files/x/y?expires=99999999999999&sig=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(failure(forged).await.0, 403);
}

#[tokio::test]
async fn attachments_are_scoped_to_their_conversation() {
    let app = spawn_app().await;
    let (_, first) = app.room_with(&["Ann"]).await;
    let (_, second) = app.room_with(&["Eve"]).await;
    let response = upload(
        &app,
        &first[0].session_id,
        "dot.png",
        "image/png",
        PNG.to_vec(),
    )
    .await;
    let id = envelope(response).await["details"]["attachmentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app
        .get_as(&second[0].session_id, &format!("/api/v1/attachments/{id}"))
        .await;
    assert_eq!(failure(other).await.0, 404);
}
