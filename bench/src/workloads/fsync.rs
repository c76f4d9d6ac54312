//! `fsync`: the latency of this disk's `fdatasync` after a small append,
//! which is what one group commit of the write-ahead log waits for in
//! `sync = "fsync"` mode (its floor: p99 of a durable answer cannot be
//! below this disk's). One thread appends 4 KiB and syncs, for
//! `--duration`, in a temporary file under `--sync-dir`.

use crate::Args;
use crate::report::{Run, histogram, latency};
use serde_json::json;
use std::io::Write;
use std::time::Instant;

/// Bytes appended before each sync (a group of a few messages).
const APPEND_BYTES: usize = 4096;

pub async fn run(args: &Args) -> anyhow::Result<Run> {
    let dir = args.sync_dir.clone().unwrap_or_else(std::env::temp_dir);
    let duration = args.duration;
    let target = dir.display().to_string();
    tokio::task::spawn_blocking(move || {
        let path = dir.join(format!("chats3-fsync-{}", uuid::Uuid::new_v4()));
        let mut file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        let block = vec![0x5a; APPEND_BYTES];
        let mut syncs = histogram();
        let started = Instant::now();
        while started.elapsed() < duration && syncs.len() < super::MAX_REQUESTS {
            file.write_all(&block)?;
            let before = Instant::now();
            file.sync_data()?;
            syncs.record(before.elapsed().as_micros().max(1) as u64)?;
        }
        drop(file);
        std::fs::remove_file(&path)?;
        let mut run = Run::new("fsync", &target);
        run.set("fdatasync", latency(&syncs));
        run.set(
            "syncs_per_s",
            json!((syncs.len() as f64 / started.elapsed().as_secs_f64()).round()),
        );
        run.set(
            "setup",
            json!({ "append_bytes": APPEND_BYTES, "duration_s": duration.as_secs_f64() }),
        );
        Ok(run)
    })
    .await?
}
