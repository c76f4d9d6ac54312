//! The log's files: segments named by the log position (LSN, a byte
//! offset across the whole log) of their first byte, `{lsn:020}.wal`. A
//! segment holds its records, then zeros up to its made-ahead size (or
//! nothing, for a plain one). At open the last segment's torn tail is cut
//! off; a damaged earlier segment stops the open, since records after it
//! were acknowledged.

use super::frame::{Decoded, decode};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// File name suffix of a segment.
const SUFFIX: &str = ".wal";

/// The highest log position a segment may reach (8 EiB, beyond any real
/// log): a file named past it is damage, and refusing it keeps every
/// position computed from a segment's base clear of overflow.
const MAX_POSITION: u64 = i64::MAX as u64;

/// One segment file.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    /// Log position of its first byte.
    pub(crate) base: u64,
    /// Its file.
    pub(crate) path: PathBuf,
    /// Bytes of intact records in it.
    pub(crate) len: u64,
}

impl Segment {
    /// Log position just past its last record.
    pub(crate) fn end(&self) -> u64 {
        self.base + self.len
    }
}

/// The file of the segment starting at `base`.
pub(crate) fn path_of(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}{SUFFIX}"))
}

/// The lock file that keeps a second process off a log directory.
const LOCK_NAME: &str = "LOCK";

/// How long an open waits for the directory's lock: a log closed in this
/// process lets go once its writer has finished.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Takes the directory's lock (held while the returned file is open); an
/// error if another process holds it.
pub(crate) fn lock(dir: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_NAME))?;
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "the write-ahead log in {} is in use by another process",
                        dir.display()
                    ),
                ));
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// Makes a file's creation or removal durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The segments in `dir`, in log order, each checked and its length set to
/// its intact records; the last one's torn tail (anything but zeros after
/// its records) is truncated away.
pub(crate) fn recover(dir: &Path) -> io::Result<Vec<Segment>> {
    fs::create_dir_all(dir)?;
    let mut segments: Vec<Segment> = fs::read_dir(dir)?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            let base = name.strip_suffix(SUFFIX)?.parse().ok()?;
            Some(Segment {
                base,
                path: entry.path(),
                len: 0,
            })
        })
        .collect();
    segments.sort_by_key(|s| s.base);
    let count = segments.len();
    for (index, segment) in segments.iter_mut().enumerate() {
        let bytes = fs::read(&segment.path)?;
        if segment
            .base
            .checked_add(bytes.len() as u64)
            .is_none_or(|end| end > MAX_POSITION)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "write-ahead log segment {} is named past any log position",
                    segment.path.display()
                ),
            ));
        }
        let intact = intact_len(&bytes);
        segment.len = intact as u64;
        // Zeros after the records: the rest of a segment made ahead.
        if bytes[intact..].iter().any(|&b| b != 0) {
            if index + 1 < count {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "write-ahead log segment {} is damaged at byte {intact} and later segments follow it",
                        segment.path.display()
                    ),
                ));
            }
            tracing::warn!(
                segment = %segment.path.display(),
                kept = intact,
                cut = bytes.len() - intact,
                "cutting the torn tail of the write-ahead log"
            );
            let file = OpenOptions::new().write(true).open(&segment.path)?;
            file.set_len(intact as u64)?;
            file.sync_all()?;
        }
    }
    for pair in segments.windows(2) {
        if pair[0].end() != pair[1].base {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "write-ahead log segment {} does not start where {} ends",
                    pair[1].path.display(),
                    pair[0].path.display()
                ),
            ));
        }
    }
    Ok(segments)
}

/// The segments in `dir` that hold records at or after `from`, for a
/// reader beside the writer: nothing is checked or cut, a reader stops at
/// the first record that is not whole (the one being written).
pub(crate) fn list_from(dir: &Path, from: u64) -> io::Result<Vec<Segment>> {
    let mut segments: Vec<Segment> = fs::read_dir(dir)?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            let base = name.strip_suffix(SUFFIX)?.parse().ok()?;
            let len = entry.metadata().ok()?.len();
            Some(Segment {
                base,
                path: entry.path(),
                len,
            })
        })
        .filter(|s| s.end() > from)
        .collect();
    segments.sort_by_key(|s| s.base);
    Ok(segments)
}

/// Bytes of whole, intact records at the start of `bytes`.
fn intact_len(bytes: &[u8]) -> usize {
    let mut at = 0;
    while let Decoded::Record(_, used) = decode(&bytes[at..]) {
        at += used;
    }
    at
}

/// The records of `segments`, each with its log position, read one
/// segment at a time.
pub(crate) struct Replay {
    segments: std::vec::IntoIter<Segment>,
    current: Option<(u64, Vec<u8>, usize)>,
}

impl Replay {
    /// Reads `segments` (as [`recover`] left them) in order.
    pub(crate) fn new(segments: Vec<Segment>) -> Self {
        Replay {
            segments: segments.into_iter(),
            current: None,
        }
    }

    /// The next record and its log position, `None` after the last.
    pub(crate) fn next_record(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        loop {
            if let Some((base, bytes, at)) = &mut self.current
                && let Decoded::Record(payload, used) = decode(&bytes[*at..])
            {
                let record = (*base + *at as u64, payload.to_vec());
                *at += used;
                return Ok(Some(record));
            }
            let Some(segment) = self.segments.next() else {
                return Ok(None);
            };
            let mut bytes = match fs::read(&segment.path) {
                Ok(bytes) => bytes,
                // Released meanwhile: it held nothing a reader beside the
                // writer still needs.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            bytes.truncate(segment.len as usize);
            self.current = Some((segment.base, bytes, 0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Replay, path_of, recover};
    use crate::wal::frame::encode;
    use std::fs;

    fn frames(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode(p, &mut out);
        }
        out
    }

    fn replay_all(dir: &std::path::Path) -> Vec<(u64, Vec<u8>)> {
        let mut replay = Replay::new(recover(dir).unwrap());
        let mut out = Vec::new();
        while let Some(record) = replay.next_record().unwrap() {
            out.push(record);
        }
        out
    }

    #[test]
    fn records_replay_in_log_order_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let first = frames(&[b"a", b"bb"]);
        fs::write(path_of(dir.path(), 0), &first).unwrap();
        fs::write(path_of(dir.path(), first.len() as u64), frames(&[b"ccc"])).unwrap();
        let records = replay_all(dir.path());
        let payloads: Vec<&[u8]> = records.iter().map(|(_, p)| p.as_slice()).collect();
        assert_eq!(payloads, vec![&b"a"[..], b"bb", b"ccc"]);
        assert_eq!(records[0].0, 0);
        assert_eq!(records[2].0, first.len() as u64);
    }

    #[test]
    fn a_torn_tail_is_cut_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = frames(&[b"kept", b"also kept"]);
        let whole = bytes.len();
        let torn = frames(&[b"torn record"]);
        bytes.extend_from_slice(&torn[..torn.len() - 3]);
        fs::write(path_of(dir.path(), 0), &bytes).unwrap();
        assert_eq!(replay_all(dir.path()).len(), 2);
        assert_eq!(
            fs::metadata(path_of(dir.path(), 0)).unwrap().len(),
            whole as u64
        );
    }

    #[test]
    fn zeros_after_the_records_are_the_rest_of_a_made_ahead_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = frames(&[b"one", b"two"]);
        let len = first.len() as u64;
        first.resize(4096, 0);
        fs::write(path_of(dir.path(), 0), &first).unwrap();
        let mut last = frames(&[b"three"]);
        last.resize(4096, 0);
        fs::write(path_of(dir.path(), len), &last).unwrap();
        let segments = recover(dir.path()).unwrap();
        assert_eq!(segments[0].len, len);
        assert_eq!(
            fs::metadata(path_of(dir.path(), len)).unwrap().len(),
            4096,
            "nothing is cut from zeros"
        );
        assert_eq!(replay_all(dir.path()).len(), 3);
    }

    #[test]
    fn a_segment_named_past_any_log_position_stops_the_open() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(path_of(dir.path(), u64::MAX - 3), frames(&[b"one"])).unwrap();
        let error = recover(dir.path()).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    }

    #[test]
    fn damage_before_the_last_segment_stops_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = frames(&[b"one"]);
        let len = first.len() as u64;
        first[9] ^= 0xff;
        fs::write(path_of(dir.path(), 0), &first).unwrap();
        fs::write(path_of(dir.path(), len), frames(&[b"two"])).unwrap();
        assert!(recover(dir.path()).is_err());
    }
}
