//! Path traversal and odd ids in every path segment that reaches a storage
//! key: each is answered with a 4xx in the envelope, never a 500, and
//! nothing is read or written outside the data directory.

use crate::attachments::{PNG, upload};
use crate::helpers::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Segments a client may put where an id goes, as sent on the wire.
const ODD: &[&str] = &[
    "..",
    ".",
    "%2e%2e",
    "..%2F..%2Fmeta.json",
    "..%5C..%5Cmeta.json",
    "%2F",
    "meta.json",
    "a%00b",
    "%E2%80%AE",
    "%F0%9F%98%80",
    "con",
    "-",
    "%20",
    "x%0d%0aSet-Cookie:%20a=b",
];

/// Status of a request sent byte for byte (no client normalises the path).
async fn raw_status(app: &TestApp, method: &str, path: &str, session: &str) -> u16 {
    let host = app.address.trim_start_matches("http://");
    let mut socket = TcpStream::connect(host).await.unwrap();
    let body = if method == "GET" || method == "DELETE" {
        ""
    } else {
        "{\"emoji\":\"x\",\"body\":\"x\",\"adminPassword\":\"test-admin-password\"}"
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nx-session-id: {session}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        host,
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[tokio::test]
async fn odd_ids_in_every_storage_path_segment_are_refused_without_a_500() {
    let app = spawn_app_with(|c| c.auth.download_secret = "download-key".into()).await;
    let (id, joined) = app.room_with(&["Ann"]).await;
    let session = &joined[0].session_id;
    let long = "x".repeat(101);
    let mut checked = 0;
    for odd in ODD.iter().copied().chain([long.as_str()]) {
        let expires = chats3_actors::time::now_ms() + 60_000;
        let signed = |conversation: &str, attachment: &str| {
            let sig = hmac(
                "download-key",
                &format!("{conversation}/{attachment}/{expires}"),
            );
            format!("/api/v1/files/{conversation}/{attachment}?expires={expires}&sig={sig}")
        };
        let requests = [
            ("POST", format!("/api/v1/admin/conversations/{odd}")),
            ("POST", format!("/api/v1/admin/conversations/{odd}/close")),
            ("PATCH", format!("/api/v1/messages/{odd}")),
            ("DELETE", format!("/api/v1/messages/{odd}")),
            ("POST", format!("/api/v1/messages/{odd}/reactions")),
            ("DELETE", format!("/api/v1/messages/{odd}/reactions/{odd}")),
            ("GET", format!("/api/v1/attachments/{odd}")),
            ("GET", format!("/api/v1/attachments/{odd}?download=true")),
            (
                "GET",
                format!("/api/v1/files/{id}/{odd}?expires={expires}&sig=x"),
            ),
            ("GET", signed(&id, odd)),
            ("GET", signed(odd, "00000000-0000-0000-0000-000000000000")),
            ("GET", signed(odd, odd)),
        ];
        // A read mark names a message but is no storage key: any id of
        // at most 100 characters is taken, and must never be a 500.
        let read = format!("/api/v1/messages/{odd}/read");
        let status = raw_status(&app, "POST", &read, session).await;
        assert!(status < 500, "POST {read} answered {status}");
        for (method, path) in requests {
            let status = raw_status(&app, method, &path, session).await;
            assert!(
                (400..500).contains(&status),
                "{method} {path} answered {status}"
            );
            checked += 1;
        }
    }
    assert!(checked > 150);
    // Nothing escaped the data directory: its parent holds only it.
    let parent = app.data_dir.path().parent().unwrap();
    for name in ["meta.json", "con", "x"] {
        assert!(!parent.join(name).exists(), "{name} written outside");
    }
    assert_eq!(
        app.client
            .get(app.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn an_upload_named_like_a_path_keeps_only_its_name() {
    let app = spawn_app().await;
    let (_, joined) = app.room_with(&["Ann"]).await;
    let response = upload(
        &app,
        &joined[0].session_id,
        "../../../etc/dot.png",
        "image/png",
        PNG.to_vec(),
    )
    .await;
    let details = envelope(response).await["details"].clone();
    let name = details["originalFilename"].as_str().unwrap();
    assert!(!name.contains('/') && !name.contains('\\'), "{name}");
    let id = details["attachmentId"].as_str().unwrap();
    assert!(
        id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "{id}"
    );
}

#[tokio::test]
async fn odd_conversation_ids_at_creation_and_join_are_validation_errors() {
    let app = spawn_app().await;
    for odd in ["..", "../meta", "a/b", "a\\b", "a\u{0}b", "é", " x", ""] {
        let created = app
            .post_json(
                "/api/v1/admin/conversations",
                &json!({ "adminPassword": ADMIN_PASSWORD, "conversationId": odd }),
            )
            .await;
        assert_eq!(failure(created).await.0, 400, "create {odd:?}");
        let joined = app.try_join(odd, "ABC123", "Ann").await;
        let status = failure(joined).await.0;
        assert!(status == 400 || status == 403, "join {odd:?}: {status}");
    }
}
