//! The log's one writer thread, doing group commit: it takes every append
//! queued (waiting up to `commit_interval` after the previous sync, and no
//! longer than it takes the previous group's writers to come back, so that
//! a burst shares one), writes them with one `write`, makes them durable
//! with one `sync_data` (in `fsync` mode), then completes every waiting
//! append in order. It rotates segments and deletes released ones; the
//! size bound is kept where appends are admitted ([`super::Wal::append`]).
//! After a failed write or sync it fails every later append: what may be
//! lost is never acknowledged.

use super::frame;
use super::inbox::Inbox;
use super::segments::{Segment, path_of, sync_dir};
use super::spare::Spares;
use super::{SyncMode, WalConfig, WalError};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// What the writer is asked.
pub(crate) enum Command {
    /// Make a record durable; answers its log position.
    Append {
        payload: Vec<u8>,
        /// Its framed size, reserved against the bound when it was queued.
        size: u64,
        done: Completion,
    },
    /// Delete the segments wholly before this log position.
    Release(u64),
}

/// What an append's caller is told, once, on the writer thread: the
/// record's log position once it is durable, or why it is not. Dropped
/// untold (the writer gone), it tells [`WalError::Closed`].
pub(crate) struct Completion(Option<Tell>);

/// Told an append's outcome.
type Tell = Box<dyn FnOnce(Result<u64, WalError>) + Send>;

impl Completion {
    pub(crate) fn new(tell: impl FnOnce(Result<u64, WalError>) + Send + 'static) -> Self {
        Completion(Some(Box::new(tell)))
    }

    /// Drops `tell` untold: the caller learned the outcome another way.
    pub(crate) fn dismiss(mut self) {
        self.0 = None;
    }

    fn complete(mut self, outcome: Result<u64, WalError>) {
        if let Some(tell) = self.0.take() {
            tell(outcome);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(tell) = self.0.take() {
            tell(Err(WalError::Closed));
        }
    }
}

/// What the writer shares with handles.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Bytes of the segments on disk.
    pub(crate) bytes: AtomicU64,
    /// Framed bytes of the appends queued and not yet written: the size
    /// bound counts them, so an append refused for size is refused when
    /// it is made.
    pub(crate) reserved: AtomicU64,
    /// Woken when the log fails.
    pub(crate) failure: tokio::sync::Notify,
    /// Log position just past the last record written.
    pub(crate) end: AtomicU64,
    /// Syncs done (group commits).
    pub(crate) syncs: AtomicU64,
    /// Records written.
    pub(crate) records: AtomicU64,
    /// A write or sync failed: the log accepts nothing more.
    pub(crate) failed: AtomicBool,
}

/// The writer's own state.
pub(crate) struct Writer {
    config: WalConfig,
    shared: Arc<Shared>,
    /// Segments before the current one, oldest first.
    closed: Vec<Segment>,
    current: Segment,
    /// The current segment's file, written at `current.len` (a made-ahead
    /// segment is longer than its records: zeros follow them).
    file: File,
    /// The next segment, made ahead.
    spares: Spares,
    /// The current segment grows as it is written (not made ahead).
    plain: bool,
    /// Held while the writer runs: one process per log directory.
    _lock: File,
    /// Set once a write or sync failed.
    broken: Option<Arc<io::Error>>,
}

impl Writer {
    /// Appends to the last of `segments` (made if there is none).
    pub(crate) fn new(
        config: WalConfig,
        shared: Arc<Shared>,
        mut segments: Vec<Segment>,
        lock: File,
    ) -> io::Result<Self> {
        let current = match segments.pop() {
            Some(last) => last,
            None => {
                let segment = Segment {
                    base: 0,
                    path: path_of(&config.dir, 0),
                    len: 0,
                };
                File::create(&segment.path)?.sync_all()?;
                sync_dir(&config.dir)?;
                segment
            }
        };
        let file = OpenOptions::new().write(true).open(&current.path)?;
        let plain = file.metadata()?.len() < config.segment_bytes;
        let spares = Spares::start(&config.dir, config.segment_bytes)?;
        let bytes = segments.iter().map(|s| s.len).sum::<u64>() + current.len;
        shared.bytes.store(bytes, Ordering::Release);
        shared.end.store(current.end(), Ordering::Release);
        Ok(Writer {
            config,
            shared,
            closed: segments,
            current,
            file,
            spares,
            plain,
            _lock: lock,
            broken: None,
        })
    }

    /// Serves commands until every handle is gone.
    ///
    /// A group waits for more appends at most `commit_interval` after the
    /// previous sync, and no longer once it is as large as the previous
    /// group: under a steady load the same writers come back (each waited
    /// for the last sync), so waiting past that only adds latency, while a
    /// trickle still shares syncs.
    pub(crate) fn run(mut self, inbox: Arc<Inbox>) {
        let mut last_sync = Instant::now() - self.config.commit_interval;
        let mut last_group = 1;
        loop {
            let mut batch = Vec::with_capacity(last_group);
            if !inbox.first(&mut batch) {
                return;
            }
            inbox.gather(
                &mut batch,
                last_group,
                last_sync + self.config.commit_interval,
            );
            last_group = batch.len().max(1);
            self.commit(batch);
            last_sync = Instant::now();
        }
    }

    /// Writes and syncs one group, then answers it.
    fn commit(&mut self, batch: Vec<Command>) {
        if self.broken.is_none()
            && let Err(e) = self.adopt_spare()
        {
            self.fail(e);
        }
        let mut buffer = Vec::new();
        let mut waiting = Vec::new();
        let mut released = None;
        let mut reserved = 0;
        for command in batch {
            match command {
                Command::Append {
                    payload,
                    size,
                    done,
                } => {
                    reserved += size;
                    if let Some(e) = &self.broken {
                        done.complete(Err(WalError::Failed(e.clone())));
                        continue;
                    }
                    if self.current.len + buffer.len() as u64 + size > self.config.segment_bytes
                        && self.current.len + buffer.len() as u64 > 0
                        && let Err(e) = self.rotate(&mut buffer)
                    {
                        self.fail(e);
                        done.complete(Err(self.failure()));
                        continue;
                    }
                    let lsn = self.current.end() + buffer.len() as u64;
                    frame::encode(&payload, &mut buffer);
                    waiting.push((lsn, done));
                }
                Command::Release(before) => {
                    released = Some(released.map_or(before, |r: u64| r.max(before)));
                }
            }
        }
        let result = self.write_out(&mut buffer);
        if result.is_ok() {
            self.shared
                .records
                .fetch_add(waiting.len() as u64, Ordering::Relaxed);
        }
        // After `write_out` counted what it wrote in `bytes`.
        self.shared.reserved.fetch_sub(reserved, Ordering::AcqRel);
        // Released before the group is answered: once an append queued
        // after `release_before` returns, the segments are gone.
        if let Some(before) = released {
            self.release(before);
        }
        for (lsn, done) in waiting {
            let answer = match &result {
                Ok(()) => Ok(lsn),
                Err(_) => Err(self.failure()),
            };
            done.complete(answer);
        }
    }

    /// Writes `buffer` to the current segment and syncs it.
    fn write_out(&mut self, buffer: &mut Vec<u8>) -> Result<(), ()> {
        if buffer.is_empty() {
            return if self.broken.is_some() {
                Err(())
            } else {
                Ok(())
            };
        }
        let written = self
            .file
            .write_all_at(buffer, self.current.len)
            .and_then(|()| match self.config.sync {
                SyncMode::Fsync => self.file.sync_data(),
                SyncMode::Write => Ok(()),
            });
        match written {
            Ok(()) => {
                let len = buffer.len() as u64;
                self.current.len += len;
                self.shared.bytes.fetch_add(len, Ordering::AcqRel);
                self.shared.end.store(self.current.end(), Ordering::Release);
                self.shared.syncs.fetch_add(1, Ordering::Relaxed);
                buffer.clear();
                Ok(())
            }
            Err(e) => {
                self.fail(e);
                Err(())
            }
        }
    }

    /// Finishes the current segment (what is buffered for it written and
    /// synced) and starts the next.
    fn rotate(&mut self, buffer: &mut Vec<u8>) -> io::Result<()> {
        if self.write_out(buffer).is_err() {
            return Err(io::Error::other(
                "the write-ahead log failed before rotating",
            ));
        }
        self.file.sync_all()?;
        let base = self.current.end();
        let next = Segment {
            base,
            path: path_of(&self.config.dir, base),
            len: 0,
        };
        let made_ahead = self.spares.take_into(&next.path)?;
        let file = if made_ahead {
            OpenOptions::new().write(true).open(&next.path)?
        } else {
            let file = OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(&next.path)?;
            file.sync_all()?;
            file
        };
        sync_dir(&self.config.dir)?;
        let previous = std::mem::replace(&mut self.current, next);
        self.closed.push(previous);
        self.file = file;
        self.plain = !made_ahead;
        Ok(())
    }

    /// Moves onto a made-ahead segment as soon as one is ready while the
    /// current one is plain (the first segment, or one cut after a
    /// crash), so syncs are cheap without waiting for the next rotation.
    fn adopt_spare(&mut self) -> io::Result<()> {
        if !self.plain || !self.spares.ready() {
            return Ok(());
        }
        if self.current.len > 0 {
            return self.rotate(&mut Vec::new());
        }
        // Nothing in it yet: the spare takes its place.
        if self.spares.take_into(&self.current.path)? {
            self.file = OpenOptions::new().write(true).open(&self.current.path)?;
            sync_dir(&self.config.dir)?;
            self.plain = false;
        }
        Ok(())
    }

    /// Deletes the closed segments that end at or before `before`.
    fn release(&mut self, before: u64) {
        let keep_from = self.closed.iter().position(|s| s.end() > before);
        let gone: Vec<Segment> = match keep_from {
            Some(index) => self.closed.drain(..index).collect(),
            None => std::mem::take(&mut self.closed),
        };
        if gone.is_empty() {
            return;
        }
        for segment in &gone {
            match std::fs::remove_file(&segment.path) {
                Ok(()) => {
                    self.shared.bytes.fetch_sub(segment.len, Ordering::AcqRel);
                }
                Err(e) => {
                    tracing::warn!(segment = %segment.path.display(), error = %e, "deleting a released log segment failed");
                }
            }
        }
        let _ = sync_dir(&self.config.dir);
    }

    fn fail(&mut self, e: io::Error) {
        tracing::error!(error = %e, dir = %self.config.dir.display(), "the write-ahead log failed; nothing more is acknowledged");
        self.shared.failed.store(true, Ordering::Release);
        self.shared.failure.notify_waiters();
        self.broken = Some(Arc::new(e));
    }

    fn failure(&self) -> WalError {
        match &self.broken {
            Some(e) => WalError::Failed(e.clone()),
            None => WalError::Failed(Arc::new(io::Error::other("write-ahead log failed"))),
        }
    }
}
