//! `thumbnail`: a 12-megapixel photo-like JPEG (4,000 x 3,000, made here,
//! never stored in the repository) uploaded through `POST
//! /api/v1/attachments`; the time until its answer, the time until its
//! `thumbnail` variant is listed, and the server's peak RSS over its own
//! RSS before the upload.

use crate::Args;
use crate::client::Api;
use crate::report::Run;
use crate::server::rss_kib;
use anyhow::Context;
use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder};
use serde_json::json;
use std::time::{Duration, Instant};

/// The photo's size: 12 megapixels.
const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;

/// Longest wait for the variant.
const VARIANT_WAIT: Duration = Duration::from_secs(30);

pub async fn run(api: &Api, args: &Args) -> anyhow::Result<Run> {
    let pid = args
        .pid
        .first()
        .copied()
        .context("thumbnail needs --spawn or --pid to read the server's memory")?;
    let room = super::rooms(api, 1, 1).await?.remove(0);
    let user = &room.users[0];
    let jpeg = tokio::task::spawn_blocking(photo).await??;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib(pid).context("reading RSS")?;
    let boundary = "chats3-bench-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"photo.jpg\"\r\n\
         Content-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&jpeg);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let started = Instant::now();
    let response = api
        .http
        .post(api.url("/api/v1/attachments"))
        .header("x-session-id", &user.session_id)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await?;
    let upload = started.elapsed();
    anyhow::ensure!(status.is_success(), "upload answered {status}: {answer}");
    let id = answer["details"]["attachmentId"]
        .as_str()
        .context("attachmentId")?
        .to_owned();
    let variant = loop {
        let details = api
            .get_details(user, &format!("/api/v1/attachments/{id}"))
            .await?;
        let thumbnail = &details["metadata"]["variants"]["thumbnail"];
        if thumbnail.is_object() {
            break thumbnail.clone();
        }
        anyhow::ensure!(
            started.elapsed() < VARIANT_WAIT,
            "no thumbnail within {VARIANT_WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let until_variant = started.elapsed();
    let peak = peak_rss_kib(pid).context("reading peak RSS")?;
    let mut run = Run::new("thumbnail", &api.base);
    run.set("image", json!(format!("{WIDTH}x{HEIGHT}")));
    run.set("jpeg_bytes", json!(jpeg.len()));
    run.set("upload_ms", json!(millis(upload)));
    run.set("until_variant_ms", json!(millis(until_variant)));
    run.set("thumbnail", variant);
    run.set("rss_before_kib", json!(rss_before));
    run.set("rss_peak_kib", json!(peak));
    run.set(
        "peak_over_before_kib",
        json!(peak.saturating_sub(rss_before)),
    );
    run.set(
        "decoded_rgb_kib",
        json!(u64::from(WIDTH) * u64::from(HEIGHT) * 3 / 1024),
    );
    Ok(run)
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// The process's peak resident set size in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A photo-like picture (smooth gradients with grain, so it compresses
/// like a photo rather than like a flat image), as a quality-85 JPEG.
fn photo() -> anyhow::Result<Vec<u8>> {
    let mut pixels = Vec::with_capacity((WIDTH * HEIGHT * 3) as usize);
    let mut seed: u32 = 0x9e37_79b9;
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let grain = seed % 4;
            pixels.push(((x * 255 / WIDTH + grain) % 256) as u8);
            pixels.push(((y * 255 / HEIGHT + grain) % 256) as u8);
            pixels.push((((x + y) * 128 / (WIDTH + HEIGHT)) + grain) as u8);
        }
    }
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, 85).write_image(
        &pixels,
        WIDTH,
        HEIGHT,
        ExtendedColorType::Rgb8,
    )?;
    Ok(jpeg)
}
