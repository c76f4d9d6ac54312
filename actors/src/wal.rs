//! The write-ahead log: what the service acknowledges is made durable here
//! before its answer. One log per instance, in segment files of at most
//! `segment_bytes`; every record carries its length and a CRC32C; one
//! writer thread does group commit (see [`writer`]). At open the records
//! still held are handed back for replay and a torn tail is cut; the caller
//! releases segments once storage holds what they cover, and the log's
//! size is bounded (past it an append answers [`WalError::Full`]).
//!
//! Records are opaque bytes here: what they mean is the caller's.
//!
//! - `frame`: one record's bytes on disk;
//! - `inbox`: the queue to the writer, waking it only when it waits;
//! - `segments`: the files, recovery and replay;
//! - `spare`: the next segment, made ahead of time;
//! - `writer`: the writer thread.

mod frame;
mod inbox;
mod segments;
mod spare;
mod writer;

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;
use writer::{Command, Completion, Shared, Writer};

/// How an append is made durable before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// `write` then `fdatasync`: survives a power loss.
    Fsync,
    /// `write` only: survives the process being killed, not the machine
    /// losing power.
    Write,
}

/// Where and how the log is kept.
#[derive(Debug, Clone)]
pub struct WalConfig {
    /// Directory of the segment files.
    pub dir: PathBuf,
    /// How long the writer gathers appends after a sync before the next.
    pub commit_interval: Duration,
    /// How appends are made durable.
    pub sync: SyncMode,
    /// Size a segment grows to before the next one starts.
    pub segment_bytes: u64,
    /// Size of all segments at most; past it appends are refused.
    pub max_bytes: u64,
}

/// Why an append was not made durable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WalError {
    /// The log is at its size bound until storage catches up.
    #[error("the write-ahead log is full")]
    Full,
    /// A record larger than a frame can hold.
    #[error("a write-ahead log record is too large")]
    TooLarge,
    /// A write or sync failed; the log accepts nothing more.
    #[error("the write-ahead log failed")]
    Failed(#[source] Arc<io::Error>),
    /// The writer is gone (the log was closed).
    #[error("the write-ahead log is closed")]
    Closed,
}

/// A handle to the log; clones share one writer.
#[derive(Clone)]
pub struct Wal {
    inbox: Arc<inbox::Inbox>,
    /// Closes the inbox when the last handle goes.
    _closer: Arc<inbox::Closer>,
    shared: Arc<Shared>,
    dir: PathBuf,
    segment_bytes: u64,
    max_bytes: u64,
}

/// An append the log took: resolves to the record's log position once it
/// is durable, or to the failure that keeps it from being so.
#[must_use = "an append is acknowledged only once this resolves"]
pub struct Durable(oneshot::Receiver<Result<u64, WalError>>);

impl Durable {
    /// The outcome if it is known already, without waiting.
    pub fn outcome_now(&mut self) -> Option<Result<u64, WalError>> {
        match self.0.try_recv() {
            Ok(outcome) => Some(outcome),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(WalError::Closed)),
        }
    }
}

impl Future for Durable {
    type Output = Result<u64, WalError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(WalError::Closed)))
    }
}

/// Awaits an append whether or not the log took it: its position once
/// durable, or why it is not.
pub async fn durable(append: Result<Durable, WalError>) -> Result<u64, WalError> {
    append?.await
}

/// The records a log held when it was opened, in order.
pub struct Recovered(segments::Replay);

impl Recovered {
    /// The next record and its log position, `None` after the last.
    pub fn next_record(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        self.0.next_record()
    }
}

impl Wal {
    /// Opens the log in `config.dir` (made if needed): cuts a torn tail,
    /// starts the writer after the last intact record and hands back what
    /// the log holds, to be replayed before new appends are answered.
    pub fn open(config: WalConfig) -> io::Result<(Wal, Recovered)> {
        std::fs::create_dir_all(&config.dir)?;
        let lock = segments::lock(&config.dir)?;
        let found = segments::recover(&config.dir)?;
        let recovered = Recovered(segments::Replay::new(found.clone()));
        let shared = Arc::new(Shared::default());
        let (segment_bytes, max_bytes) = (config.segment_bytes, config.max_bytes);
        let dir = config.dir.clone();
        let writer = Writer::new(config, shared.clone(), found, lock)?;
        let inbox = Arc::new(inbox::Inbox::default());
        let for_writer = inbox.clone();
        std::thread::Builder::new()
            .name("chats3-wal".into())
            .spawn(move || writer.run(for_writer))?;
        Ok((
            Wal {
                _closer: Arc::new(inbox::Closer(inbox.clone())),
                inbox,
                shared,
                dir,
                segment_bytes,
                max_bytes,
            },
            recovered,
        ))
    }

    /// Queues a record; the answer resolves to its log position once it is
    /// durable. A record the log cannot take (past the size bound, too
    /// large, the log closed) is refused here, before anything is queued,
    /// so a caller can refuse its request before changing anything.
    ///
    /// Records are logged in the order of the calls, so an actor that
    /// appends in its handler logs its changes in the order it made them
    /// and may await durability elsewhere. Dropping the answer still logs
    /// the record, unacknowledged.
    pub fn append(&self, payload: Vec<u8>) -> Result<Durable, WalError> {
        let (done, answer) = oneshot::channel();
        self.append_then(payload, move |outcome| {
            let _ = done.send(outcome);
        })?;
        Ok(Durable(answer))
    }

    /// Queues a record like [`Wal::append`], and calls `tell` with its
    /// outcome on the writer thread, at once after the group's sync: no
    /// task in between. `tell` must be quick and must not block.
    pub fn append_then(
        &self,
        payload: Vec<u8>,
        tell: impl FnOnce(Result<u64, WalError>) + Send + 'static,
    ) -> Result<(), WalError> {
        if payload.len() > frame::MAX_PAYLOAD {
            return Err(WalError::TooLarge);
        }
        let size = frame::framed_len(&payload);
        let reserved = self.shared.reserved.fetch_add(size, Ordering::AcqRel) + size;
        if self.shared.bytes.load(Ordering::Acquire) + reserved > self.max_bytes {
            self.shared.reserved.fetch_sub(size, Ordering::AcqRel);
            return Err(WalError::Full);
        }
        let command = Command::Append {
            payload,
            size,
            done: Completion::new(tell),
        };
        if let Err(refused) = self.inbox.push(command) {
            // Refused: the caller hears it from the error, not from `tell`.
            if let Command::Append { done, .. } = refused {
                done.dismiss();
            }
            self.shared.reserved.fetch_sub(size, Ordering::AcqRel);
            return Err(WalError::Closed);
        }
        Ok(())
    }

    /// The records from the segment holding `from` on, read beside the
    /// writer (records before `from` in that segment come too; the caller
    /// skips them). What the caller still needs is never released under
    /// it; what is being written is not read. Blocking file reads.
    pub fn read_from(&self, from: u64) -> io::Result<Recovered> {
        let segments = segments::list_from(&self.dir, from)?;
        Ok(Recovered(segments::Replay::new(segments)))
    }

    /// Lets the log delete the segments that end at or before `lsn`: the
    /// caller no longer needs any record before it. They are gone once an
    /// append made after this call is answered.
    pub fn release_before(&self, lsn: u64) {
        let _ = self.inbox.push(Command::Release(lsn));
    }

    /// Bytes of the log on disk.
    pub fn bytes(&self) -> u64 {
        self.shared.bytes.load(Ordering::Acquire)
    }

    /// Log position just past the last record written.
    pub fn end(&self) -> u64 {
        self.shared.end.load(Ordering::Acquire)
    }

    /// Size a segment grows to before the next one starts.
    pub fn segment_bytes(&self) -> u64 {
        self.segment_bytes
    }

    /// Group commits done since the log was opened.
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// Records written since the log was opened.
    pub fn records(&self) -> u64 {
        self.shared.records.load(Ordering::Relaxed)
    }

    /// Whether a write or sync failed (the process should stop).
    pub fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// Resolves once a write or sync failed: from then on nothing more is
    /// acknowledged, and what was queued may be lost. The future does not
    /// keep the log open: once every handle is gone the writer ends (and
    /// the future never resolves).
    pub fn failure(&self) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.shared.clone();
        async move {
            loop {
                // Made before the check, so a failure between the two wakes it.
                let notified = shared.failure.notified();
                if shared.failed.load(Ordering::Acquire) {
                    return;
                }
                notified.await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Recovered, SyncMode, Wal, WalConfig, WalError};
    use std::time::Duration;

    fn config(dir: &std::path::Path) -> WalConfig {
        WalConfig {
            dir: dir.to_path_buf(),
            commit_interval: Duration::from_millis(2),
            sync: SyncMode::Fsync,
            segment_bytes: 4096,
            max_bytes: 1 << 20,
        }
    }

    fn all(mut recovered: Recovered) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(record) = recovered.next_record().unwrap() {
            out.push(record);
        }
        out
    }

    #[tokio::test]
    async fn appends_survive_a_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, recovered) = Wal::open(config(dir.path())).unwrap();
        assert!(all(recovered).is_empty());
        let mut positions = Vec::new();
        for i in 0..100u32 {
            positions.push(
                wal.append(format!("record {i}").into_bytes())
                    .unwrap()
                    .await
                    .unwrap(),
            );
        }
        assert!(positions.windows(2).all(|p| p[0] < p[1]));
        drop(wal);
        let (_wal, recovered) = Wal::open(config(dir.path())).unwrap();
        let records = all(recovered);
        assert_eq!(records.len(), 100);
        assert_eq!(records[42].1, b"record 42");
        assert_eq!(
            records.iter().map(|(lsn, _)| *lsn).collect::<Vec<_>>(),
            positions
        );
    }

    #[tokio::test]
    async fn concurrent_appends_share_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(WalConfig {
            segment_bytes: 1 << 20,
            ..config(dir.path())
        })
        .unwrap();
        let appends: Vec<_> = (0..200)
            .map(|i| {
                let wal = wal.clone();
                tokio::spawn(async move { wal.append(vec![i as u8; 100]).unwrap().await })
            })
            .collect();
        for append in appends {
            append.await.unwrap().unwrap();
        }
        assert!(
            wal.syncs() < 200,
            "200 concurrent appends took {} syncs",
            wal.syncs()
        );
    }

    #[tokio::test]
    async fn released_segments_are_deleted_and_the_rest_replays() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(config(dir.path())).unwrap();
        let mut positions = Vec::new();
        for i in 0..100u32 {
            positions.push(wal.append(vec![i as u8; 200]).unwrap().await.unwrap());
        }
        let files = || std::fs::read_dir(dir.path()).unwrap().count();
        let before = files();
        assert!(before > 3, "4 KiB segments rotate: {before}");
        let keep_from = positions[60];
        wal.release_before(keep_from);
        wal.append(b"after release".to_vec())
            .unwrap()
            .await
            .unwrap();
        assert!(files() < before);
        drop(wal);
        let (_wal, recovered) = Wal::open(config(dir.path())).unwrap();
        let records = all(recovered);
        assert!(records.iter().any(|(lsn, _)| *lsn == keep_from));
        assert_eq!(records.last().unwrap().1, b"after release");
        assert!(records.iter().all(|(lsn, _)| *lsn >= positions[0]));
    }

    #[tokio::test]
    async fn the_segment_made_ahead_is_used_and_reopens_after_its_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let spare = dir.path().join("next-segment.tmp");
        let made = || std::fs::metadata(&spare).is_ok_and(|m| m.len() == 4096);
        let (wal, _) = Wal::open(config(dir.path())).unwrap();
        for _ in 0..500 {
            if made() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(made(), "the next segment is made ahead");
        let mut positions = Vec::new();
        for i in 0..30u32 {
            positions.push(wal.append(vec![i as u8 + 1; 200]).unwrap().await.unwrap());
        }
        let mut segments: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "wal"))
            .collect();
        segments.sort();
        assert!(
            segments.len() >= 2,
            "30 records of 208 bytes rotate 4 KiB segments"
        );
        let made_ahead = segments
            .iter()
            .filter(|s| std::fs::metadata(s).unwrap().len() == 4096)
            .count();
        assert!(
            made_ahead >= 1,
            "the log moved onto the segment made ahead: {segments:?}"
        );
        drop(wal);
        let (wal, recovered) = Wal::open(config(dir.path())).unwrap();
        assert_eq!(all(recovered).len(), 30);
        let after = wal.append(b"after reopen".to_vec()).unwrap().await.unwrap();
        drop(wal);
        let (_wal, recovered) = Wal::open(config(dir.path())).unwrap();
        let records = all(recovered);
        assert_eq!(
            records.len(),
            31,
            "written after the records, not the zeros"
        );
        assert_eq!(records.last().unwrap(), &(after, b"after reopen".to_vec()));
        assert_eq!(
            records
                .iter()
                .map(|(lsn, _)| *lsn)
                .take(30)
                .collect::<Vec<_>>(),
            positions
        );
    }

    #[tokio::test]
    async fn a_log_directory_in_use_is_refused_until_its_writer_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(config(dir.path())).unwrap();
        wal.append(b"first".to_vec()).unwrap().await.unwrap();
        let refused = Wal::open(config(dir.path()))
            .err()
            .expect("the directory is in use");
        assert!(refused.to_string().contains("in use"), "{refused}");
        drop(wal);
        let (_wal, recovered) = Wal::open(config(dir.path())).unwrap();
        assert_eq!(all(recovered).len(), 1);
    }

    #[tokio::test]
    async fn past_its_bound_the_log_refuses_appends() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(WalConfig {
            max_bytes: 1000,
            ..config(dir.path())
        })
        .unwrap();
        let mut refused = None;
        for _ in 0..20 {
            if let Err(e) = super::durable(wal.append(vec![7; 100])).await {
                refused = Some(e);
                break;
            }
        }
        assert!(matches!(refused, Some(WalError::Full)), "{refused:?}");
        assert!(wal.bytes() <= 1000);
    }

    /// Run by [`a_kill_9_loses_no_acknowledged_append`] in a child process:
    /// appends numbered records from several tasks, printing each number
    /// once it is acknowledged, until killed.
    #[tokio::test]
    async fn crash_child() {
        let Ok(dir) = std::env::var("CHATS3_WAL_CRASH_DIR") else {
            return;
        };
        let (wal, _) = Wal::open(WalConfig {
            segment_bytes: 64 << 10,
            max_bytes: 1 << 30,
            ..config(std::path::Path::new(&dir))
        })
        .unwrap();
        let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let (wal, next) = (wal.clone(), next.clone());
                tokio::spawn(async move {
                    loop {
                        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        wal.append(format!("record {n:08}").into_bytes())
                            .unwrap()
                            .await
                            .unwrap();
                        println!("acked {n}");
                    }
                })
            })
            .collect();
        futures::future::join_all(writers).await;
    }

    #[test]
    fn a_kill_9_loses_no_acknowledged_append() {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "wal::tests::crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CHATS3_WAL_CRASH_DIR", dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut acked = Vec::new();
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("acked ") {
                acked.push(n.parse::<u64>().unwrap());
                if acked.len() == 2_000 {
                    // SIGKILL mid-flight: appends are queued and being synced.
                    child.kill().unwrap();
                    break;
                }
            }
        }
        child.wait().unwrap();
        assert_eq!(acked.len(), 2_000, "the child acknowledged appends");
        let (_wal, mut recovered) = Wal::open(config(dir.path())).unwrap();
        let mut stored = std::collections::HashSet::new();
        while let Some((_, payload)) = recovered.next_record().unwrap() {
            let text = String::from_utf8(payload).unwrap();
            let n: u64 = text.strip_prefix("record ").unwrap().parse().unwrap();
            assert!(stored.insert(n), "record {n} replayed twice");
        }
        let lost: Vec<_> = acked.iter().filter(|n| !stored.contains(n)).collect();
        assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    }
}
