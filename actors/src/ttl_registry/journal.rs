//! A registry's side of the write-ahead log. Changes are queued on the log
//! inside the actor's handler, so the log holds them in the order the
//! registry made them; the answer waits for durability in a spawned task,
//! off the mailbox. A checkpoint writes the live entries as snapshot
//! records and then tells [`Retention`] that nothing before the first of
//! them is needed: every earlier record of this registry is reflected in
//! the snapshot, every later one comes after it.

use super::{RegistryMsg, Stamped};
use crate::error::{ChatError, Report};
use crate::log_records::LogRecord;
use crate::retention::{Owner, Retention};
use crate::wal::{Wal, durable};
use ractor::{ActorRef, RpcReplyPort};
use std::sync::Arc;
use std::time::Duration;

/// Entries per snapshot record, so a record stays far below a frame's
/// bound.
pub(super) const SNAPSHOT_CHUNK: usize = 1000;

/// The records one kind of registry writes.
pub(crate) trait Journal<V>: Send + Sync + 'static {
    /// An entry was stored.
    fn inserted(&self, key: &str, entry: &Stamped<V>) -> LogRecord;
    /// An entry's life restarted at `at_ms`; `None`: not logged.
    fn touched(&self, key: &str, at_ms: i64) -> Option<LogRecord>;
    /// An entry was forgotten on request; `None`: not logged.
    fn removed(&self, key: &str) -> Option<LogRecord>;
    /// Part of the live entries at a checkpoint.
    fn snapshot(&self, entries: &[(String, Stamped<V>)]) -> LogRecord;
}

/// How a registry writes to the log.
pub(crate) struct Journaling<V> {
    /// The log.
    pub wal: Wal,
    /// The registry's records.
    pub journal: Arc<dyn Journal<V>>,
    /// Where the registry reports what it still needs.
    pub retention: Arc<Retention>,
    /// The registry, to [`Retention`].
    pub owner: Owner,
    /// How often the registry checks whether a checkpoint is due.
    pub checkpoint_every: Duration,
    /// A read of a sliding entry is logged at most this often.
    pub touch_every: Duration,
}

/// A registry's log and its checkpoint progress.
pub(super) struct Logged<V> {
    journaling: Journaling<V>,
    /// A checkpoint is being written.
    running: bool,
    /// First position of the last durable checkpoint (0: none yet).
    need: u64,
    /// Bytes the last checkpoint wrote.
    last_snapshot_bytes: u64,
}

impl<V: Clone + Send + 'static> Logged<V> {
    pub(super) fn new(journaling: Journaling<V>) -> Self {
        Logged {
            journaling,
            running: false,
            need: 0,
            last_snapshot_bytes: 0,
        }
    }

    pub(super) fn journal(&self) -> &dyn Journal<V> {
        self.journaling.journal.as_ref()
    }

    pub(super) fn touch_every(&self) -> Duration {
        self.journaling.touch_every
    }

    pub(super) fn checkpoint_every(&self) -> Duration {
        self.journaling.checkpoint_every
    }

    /// Queues `record` now and answers `answer` once it is durable; when
    /// the log refuses it, the entry under `key` is forgotten again and
    /// the refusal is the answer.
    pub(super) fn reply_when_logged<T: Send + 'static>(
        &self,
        myself: &ActorRef<RegistryMsg<V>>,
        key: String,
        record: LogRecord,
        reply: RpcReplyPort<Result<T, ChatError>>,
        answer: T,
    ) {
        let append = record
            .encode()
            .and_then(|bytes| self.journaling.wal.append(bytes));
        let myself = myself.clone();
        tokio::spawn(async move {
            match durable(append).await {
                Ok(_) => {
                    let _ = reply.send(Ok(answer));
                }
                Err(e) => {
                    let _ = myself.cast(RegistryMsg::Forget(key));
                    let _ = reply.send(Err(e.into()));
                }
            }
        });
    }

    /// Queues `record` now; nothing waits for it (a touch: losing the last
    /// one only shortens a session's life after a crash).
    pub(super) fn append_unawaited(&self, record: &LogRecord) {
        let Ok(bytes) = record.encode() else {
            return;
        };
        let append = self.journaling.wal.append(bytes);
        tokio::spawn(async move {
            if let Err(e) = durable(append).await {
                tracing::debug!(error = %Report(&e), "a registry touch was not logged");
            }
        });
    }

    /// Whether the log grew by a segment (and by twice the last
    /// checkpoint, so checkpoints never chase themselves) since the last
    /// checkpoint.
    pub(super) fn checkpoint_due(&self) -> bool {
        let wal = &self.journaling.wal;
        let grown = wal.end().saturating_sub(self.need);
        !self.running
            && grown
                >= wal
                    .segment_bytes()
                    .max(self.last_snapshot_bytes.saturating_mul(2))
    }

    /// Queues the snapshot records of `chunks` (at least one, empty when
    /// nothing is live) and, once they are durable, reports the first one's
    /// position as this registry's need.
    pub(super) fn checkpoint<'a>(
        &mut self,
        myself: &ActorRef<RegistryMsg<V>>,
        chunks: impl Iterator<Item = &'a [(String, Stamped<V>)]>,
    ) where
        V: 'a,
    {
        let journal = self.journal();
        let mut records: Vec<LogRecord> = chunks.map(|chunk| journal.snapshot(chunk)).collect();
        if records.is_empty() {
            records.push(journal.snapshot(&[]));
        }
        let encoded: Result<Vec<Vec<u8>>, _> = records.iter().map(LogRecord::encode).collect();
        let encoded = match encoded {
            Ok(encoded) => encoded,
            Err(e) => {
                tracing::warn!(error = %Report(&e), "a registry checkpoint could not be encoded");
                return;
            }
        };
        let bytes = encoded.iter().map(|record| record.len() as u64).sum();
        let appends: Vec<_> = encoded
            .into_iter()
            .map(|record| self.journaling.wal.append(record))
            .collect();
        self.running = true;
        let (myself, retention, owner) = (
            myself.clone(),
            self.journaling.retention.clone(),
            self.journaling.owner,
        );
        tokio::spawn(async move {
            let mut first = None;
            for append in appends {
                match durable(append).await {
                    Ok(lsn) => {
                        first.get_or_insert(lsn);
                    }
                    Err(e) => {
                        tracing::warn!(?owner, error = %Report(&e), "a registry checkpoint failed");
                        let _ = myself.cast(RegistryMsg::CheckpointDone(None));
                        return;
                    }
                }
            }
            if let Some(first) = first {
                retention.needs_from(owner, first);
            }
            let _ = myself.cast(RegistryMsg::CheckpointDone(first.map(|f| (f, bytes))));
        });
    }

    /// A checkpoint ended: durable at `Some((first position, bytes))`.
    pub(super) fn checkpoint_done(&mut self, outcome: Option<(u64, u64)>) {
        self.running = false;
        if let Some((need, bytes)) = outcome {
            self.need = need;
            self.last_snapshot_bytes = bytes;
        }
    }
}
