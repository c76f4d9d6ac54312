//! Write-ahead log record decoding and torn-tail recovery: any bytes as
//! the log's segment files open without a panic (or are refused as
//! damaged), every replayed record lies within what was on disk, and a
//! recovered log reopens to the same records.
#![no_main]

use chats3_actors::wal::{SyncMode, Wal, WalConfig};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::time::Duration;

fn replay(dir: &Path) -> Option<Vec<(u64, Vec<u8>)>> {
    let (wal, mut recovered) = Wal::open(WalConfig {
        dir: dir.to_path_buf(),
        commit_interval: Duration::ZERO,
        sync: SyncMode::Write,
        segment_bytes: 4096,
        max_bytes: 1 << 20,
    })
    .ok()?;
    let mut records = Vec::new();
    while let Some(record) = recovered.next_record().ok()? {
        records.push(record);
    }
    drop(wal);
    Some(records)
}

fuzz_target!(|data: &[u8]| {
    // The log syncs its files: in memory (/dev/shm) a sync costs nothing.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    let Ok(dir) = dir else {
        return;
    };
    // The first byte splits the rest into two segments, the second
    // starting where the first ends, as the writer names them.
    let (split, rest) = data
        .split_first()
        .map_or((0, data), |(s, r)| (*s as usize, r));
    let (first, second) = rest.split_at(split.min(rest.len()));
    let written = std::fs::write(dir.path().join(format!("{:020}.wal", 0)), first).is_ok()
        && (second.is_empty()
            || std::fs::write(dir.path().join(format!("{:020}.wal", first.len())), second).is_ok());
    if !written {
        return;
    }
    let Some(records) = replay(dir.path()) else {
        return;
    };
    let mut end = 0u64;
    for (lsn, payload) in &records {
        assert!(*lsn >= end, "records replay in log order without overlap");
        end = lsn + 8 + payload.len() as u64;
    }
    assert!(end <= data.len() as u64);
    assert_eq!(replay(dir.path()).as_ref(), Some(&records));
});
