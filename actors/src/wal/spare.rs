//! The next segment, made ahead of time off the writer thread: a file of
//! `segment_bytes` zeros, written and synced, that rotation renames into
//! place. Syncing records over blocks that are already written changes no
//! file metadata, so each group commit's `fdatasync` skips the journal
//! commit that growing a file costs (measured on this project's disk:
//! about half the latency and half the CPU per sync). A run of zeros is
//! never a record (see [`super::frame`]), so readers stop where the
//! records end. When no spare is ready, rotation makes a plain file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

/// The spare's file name (not a segment's: recovery and readers skip it).
const SPARE_NAME: &str = "next-segment.tmp";

/// Bytes written between syncs while a spare is made, so its zeros never
/// queue up in front of the writer's syncs all at once.
const CHUNK: usize = 1 << 20;
const SYNC_EVERY: usize = 4 << 20;

/// The spare file and the thread that makes it.
pub(crate) struct Spares {
    path: PathBuf,
    ready: Arc<AtomicBool>,
    wanted: mpsc::Sender<()>,
}

impl Spares {
    /// Removes a spare left by an earlier run (it may be incomplete) and
    /// starts making a fresh one of `segment_bytes`.
    pub(crate) fn start(dir: &Path, segment_bytes: u64) -> io::Result<Spares> {
        let path = dir.join(SPARE_NAME);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let ready = Arc::new(AtomicBool::new(false));
        let (wanted, requests) = mpsc::channel::<()>();
        let (for_thread, ready_flag) = (path.clone(), ready.clone());
        std::thread::Builder::new()
            .name("chats3-wal-spare".into())
            .spawn(move || {
                // Ends when the writer (the sender) is gone.
                while requests.recv().is_ok() {
                    match make(&for_thread, segment_bytes) {
                        Ok(()) => ready_flag.store(true, Ordering::Release),
                        Err(e) => {
                            tracing::warn!(error = %e, spare = %for_thread.display(), "making the next log segment ahead failed; the next rotation makes a plain one");
                        }
                    }
                }
            })?;
        let spares = Spares {
            path,
            ready,
            wanted,
        };
        spares.request();
        Ok(spares)
    }

    /// Moves the spare to `target` when one is ready, and asks for the
    /// next; `Ok(false)` when none was ready (nothing moved). The caller
    /// syncs the directory.
    pub(crate) fn take_into(&self, target: &Path) -> io::Result<bool> {
        if !self.ready.swap(false, Ordering::AcqRel) {
            return Ok(false);
        }
        fs::rename(&self.path, target)?;
        self.request();
        Ok(true)
    }

    /// Whether a spare is ready to be taken.
    pub(crate) fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn request(&self) {
        let _ = self.wanted.send(());
    }
}

/// Writes `len` zeros to a fresh file at `path`, synced.
fn make(path: &Path, len: u64) -> io::Result<()> {
    let mut file: File = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let zeros = vec![0u8; CHUNK];
    let mut left = len;
    let mut unsynced = 0;
    while left > 0 {
        let part = left.min(CHUNK as u64) as usize;
        file.write_all(&zeros[..part])?;
        left -= part as u64;
        unsynced += part;
        if unsynced >= SYNC_EVERY {
            file.sync_data()?;
            unsynced = 0;
        }
    }
    file.sync_all()
}
