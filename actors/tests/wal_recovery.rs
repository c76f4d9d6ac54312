//! Properties of the write-ahead log's recovery, through its public API: a
//! torn or damaged log never panics its open and never replays a record
//! that was not written whole; what comes back is exactly the records
//! before the damage, and the log goes on from there.

use chats3_actors::wal::{SyncMode, Wal, WalConfig};
use proptest::prelude::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bytes before each payload in a segment: its length and checksum.
const HEADER: u64 = 8;

fn config(dir: &Path) -> WalConfig {
    WalConfig {
        dir: dir.to_path_buf(),
        commit_interval: Duration::ZERO,
        sync: SyncMode::Write,
        segment_bytes: 512,
        max_bytes: 1 << 20,
    }
}

/// Records as replayed: each log position and payload.
type Records = Vec<(u64, Vec<u8>)>;

/// Opens the log in `dir` and reads every record it hands back.
fn open_and_replay(dir: &Path) -> std::io::Result<(Wal, Records)> {
    let (wal, mut recovered) = Wal::open(config(dir))?;
    let mut records = Vec::new();
    while let Some(record) = recovered.next_record()? {
        records.push(record);
    }
    Ok((wal, records))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Appends `payloads` to a fresh log in `dir`; their log positions.
fn written(dir: &Path, payloads: &[Vec<u8>]) -> Records {
    let (wal, recovered) = open_and_replay(dir).expect("a fresh log opens");
    assert!(recovered.is_empty());
    let records = runtime().block_on(async {
        let mut records = Vec::new();
        for payload in payloads {
            let lsn = wal
                .append(payload.clone())
                .expect("taken")
                .await
                .expect("appended");
            records.push((lsn, payload.clone()));
        }
        records
    });
    drop(wal);
    records
}

/// The segment files of `dir` by their first log position, in order.
fn segments(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .expect("the log's directory")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let base = path.file_stem()?.to_str()?.parse().ok()?;
            Some((base, path))
        })
        .collect();
    found.sort();
    found
}

fn end_of((lsn, payload): &(u64, Vec<u8>)) -> u64 {
    lsn + HEADER + payload.len() as u64
}

fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..24)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_torn_tail_replays_exactly_the_whole_records_before_it(payloads in payloads(), cut in any::<prop::sample::Index>()) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let records = written(dir.path(), &payloads);
        let (base, last) = segments(dir.path()).pop().expect("a segment");
        let len = fs::metadata(&last).expect("the last segment").len();
        let kept_len = cut.index(len as usize + 1) as u64;
        let file = fs::OpenOptions::new().write(true).open(&last).expect("opened");
        file.set_len(kept_len).expect("cut");
        drop(file);

        let expected: Vec<_> = records.iter().filter(|r| end_of(r) <= base + kept_len).cloned().collect();
        let (wal, replayed) = open_and_replay(dir.path()).expect("a torn tail still opens");
        prop_assert_eq!(&replayed, &expected);
        let next = runtime()
            .block_on(wal.append(b"after".to_vec()).expect("taken"))
            .expect("appended");
        prop_assert_eq!(next, expected.last().map_or(base, end_of));
        drop(wal);
        let (_wal, again) = open_and_replay(dir.path()).expect("reopens");
        prop_assert_eq!(again.len(), expected.len() + 1);
        prop_assert_eq!(&again[..expected.len()], &expected[..]);
    }

    #[test]
    fn a_changed_byte_is_detected_and_nothing_from_it_on_replays(
        payloads in payloads(),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let records = written(dir.path(), &payloads);
        let files = segments(dir.path());
        let which = which.index(files.len());
        let (base, path) = &files[which];
        let mut bytes = fs::read(path).expect("a segment");
        prop_assume!(!bytes.is_empty());
        let at = at.index(bytes.len());
        bytes[at] ^= flip;
        fs::write(path, &bytes).expect("written back");

        let opened = open_and_replay(dir.path());
        if which + 1 < files.len() {
            let error = opened.err().ok_or_else(|| TestCaseError::fail("damage before the last segment opened"))?;
            prop_assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        } else {
            let (_wal, replayed) = opened.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let damaged = base + at as u64;
            let expected: Vec<_> = records.iter().filter(|r| end_of(r) <= damaged).cloned().collect();
            prop_assert_eq!(replayed, expected);
        }
    }

    #[test]
    fn any_bytes_as_a_segment_open_without_panicking(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        base in prop_oneof![Just(0u64), any::<u64>()],
    ) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        fs::write(dir.path().join(format!("{base:020}.wal")), &bytes).expect("written");
        if let Ok((wal, replayed)) = open_and_replay(dir.path()) {
            drop(wal);
            let (_wal, again) = open_and_replay(dir.path()).expect("a recovered log reopens");
            prop_assert_eq!(again, replayed);
        }
    }

    #[test]
    fn whole_records_under_any_segment_name_open_without_panicking(
        payloads in payloads(),
        base in prop_oneof![0u64..(1 << 40), any::<u64>(), (u64::MAX - 600)..=u64::MAX],
    ) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        written(dir.path(), &payloads);
        let (_, first) = segments(dir.path()).remove(0);
        let bytes = fs::read(&first).expect("a segment");
        let elsewhere = tempfile::tempdir().expect("a temporary directory");
        fs::write(elsewhere.path().join(format!("{base:020}.wal")), &bytes).expect("written");
        // Found by this property: a segment named near the top of the log
        // positions overflowed them; it is now refused as damage.
        match open_and_replay(elsewhere.path()) {
            Ok((_wal, replayed)) => {
                prop_assert!(base <= i64::MAX as u64);
                prop_assert!(replayed.len() <= payloads.len());
                prop_assert!(replayed.iter().all(|(lsn, _)| *lsn >= base));
            }
            Err(error) => prop_assert_eq!(error.kind(), std::io::ErrorKind::InvalidData),
        }
    }
}
