//! Uploads are never served so that a browser would run them: only the
//! allow-listed types are accepted (no HTML, SVG or script), a download
//! carries the stored type with `nosniff`, anything but an image is an
//! `attachment`, and a file name cannot break out of its header.

use crate::attachments::{PNG, upload};
use crate::helpers::*;

/// Downloads an uploaded attachment through its signed URL.
async fn download(app: &TestApp, session: &str, id: &str) -> reqwest::Response {
    let info = envelope(
        app.get_as(session, &format!("/api/v1/attachments/{id}"))
            .await,
    )
    .await;
    let url = info["details"]["signedUrl"].as_str().unwrap();
    let url = if url.starts_with('/') {
        app.url(url)
    } else {
        url.to_owned()
    };
    reqwest::get(&url).await.unwrap()
}

async fn uploaded(app: &TestApp, session: &str, name: &str, mime: &str, data: &[u8]) -> String {
    let response = upload(app, session, name, mime, data.to_vec()).await;
    assert_eq!(response.status(), 200, "{name}");
    envelope(response).await["details"]["attachmentId"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn markup_and_script_types_are_refused_at_upload() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    let cases: [(&str, &str, &[u8]); 5] = [
        (
            "page.html",
            "text/html",
            b"<html><script>alert(1)</script></html>",
        ),
        (
            "image.svg",
            "image/svg+xml",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
        ),
        (
            "page.xhtml",
            "application/xhtml+xml",
            b"<html xmlns=\"http://www.w3.org/1999/xhtml\"/>",
        ),
        ("run.js", "application/javascript", b"alert(1)"),
        ("run.js", "text/javascript", b"alert(1)"),
    ];
    for (name, mime, data) in cases {
        let response = upload(&app, session, name, mime, data.to_vec()).await;
        let (status, message, _) = failure(response).await;
        assert_eq!(
            (status, message.as_str()),
            (400, "File type not allowed"),
            "{mime}"
        );
    }
}

#[tokio::test]
async fn a_text_file_that_is_an_html_page_is_refused_at_upload() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let page = b"<html><body><script>alert(document.cookie)</script></body></html>";
    let response = upload(
        &app,
        &joined[0].session_id,
        "page.html",
        "text/plain",
        page.to_vec(),
    )
    .await;
    assert_eq!(failure(response).await.0, 400);
}

#[tokio::test]
async fn text_with_markup_inside_downloads_as_a_plain_text_attachment() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    let text = b"notes: <script>alert(document.cookie)</script>";
    let id = uploaded(&app, session, "page.html", "text/plain", text).await;
    let response = download(&app, session, &id).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/plain");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
}

#[tokio::test]
async fn images_are_inline_with_their_type_and_nosniff() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    let id = uploaded(&app, session, "dot.png", "image/png", PNG).await;
    let response = download(&app, session, &id).await;
    let headers = response.headers();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline;")
    );
}

#[tokio::test]
async fn a_file_name_cannot_inject_headers_or_leave_its_quotes() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    let name = "a\"; filename=evil.html; x=\".txt";
    let id = uploaded(&app, session, name, "text/plain", b"words").await;
    let response = download(&app, session, &id).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert!(headers.get("set-cookie").is_none());
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename*=UTF-8''"),
        "{disposition}"
    );
    assert_eq!(disposition.matches(';').count(), 1, "{disposition}");
    assert!(!disposition.contains('"'), "{disposition}");
}
