//! The write-behind flusher: one actor per live conversation that batches
//! accepted messages into ONE NDJSON object per flush.
//!
//! It is a sibling of its conversation under the supervisor, so a batch that
//! is waiting survives a conversation panic; the restarted conversation takes
//! the unstored messages back with [`FlusherMsg::Unstored`]. Writes leave the
//! mailbox path in a spawned task that retries with exponential backoff and
//! jitter until storage answers, then reports back. Only one batch per
//! conversation is in flight, so batches land in order. The same task
//! compacts batches into segments when enough have landed, and stopping
//! compacts what is left (see [`crate::segments`]), so a conversation that
//! was unloaded reads back cold from a handful of objects.

use crate::changes::Change;
use crate::domain::{ConversationId, SequencedMessage};
use crate::error::Report;
use crate::log_needs::{LogNeeds, NONE};
use crate::log_records::encode_change;
use crate::ndjson::encode_lines;
use crate::segments::CompactionIntent;
use crate::segments::Compactor;
use crate::settings::Settings;
use crate::store::{SharedStore, StoreError, keys};
use crate::wal::{Wal, WalError, durable};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Progress the conversation reads without a round trip.
#[derive(Debug, Default)]
pub(crate) struct FlushProgress {
    /// Accepted messages not yet in storage.
    pub pending: AtomicUsize,
    /// Highest `seq` known to be stored.
    pub stored_seq: AtomicU64,
    /// Store failures seen since the last success (for `/ready` and logs).
    pub failures: AtomicU64,
    /// The conversation's documents (reactions, revisions) whose stored
    /// copy is behind memory; set by the conversation, read at shutdown.
    pub unsaved_documents: AtomicUsize,
    /// Estimated bytes the loaded conversation holds (set by it at load
    /// and housekeeping; 0 while it is not loaded).
    pub memory_bytes: AtomicUsize,
    /// Since when the loaded conversation has had no open stream and no
    /// request (milliseconds; `i64::MAX` while a stream is open), set by
    /// it after each message it handles: the supervisor unloads the
    /// idlest first when loaded conversations reach their bounds.
    pub idle_since_ms: AtomicI64,
    /// What of the write-ahead log the conversation still needs.
    pub log: LogNeeds,
}

/// How many flushers write to storage at once. A shutdown stops every
/// conversation together; this keeps thousands of final flushes from
/// opening thousands of requests at once while still overlapping them.
pub(crate) const CONCURRENT_WRITES: usize = 64;

/// Messages of the flusher.
pub(crate) enum FlusherMsg {
    /// A newly accepted message to store.
    Append(Box<SequencedMessage>),
    /// Timer: write what is pending.
    Tick,
    /// The in-flight batch is stored.
    Written { count: usize },
    /// Store everything pending, then reply.
    Drain(RpcReplyPort<()>),
    /// The messages accepted but not yet stored, oldest first.
    Unstored(RpcReplyPort<Vec<SequencedMessage>>),
}

/// Behaviour of the flusher actor.
pub(crate) struct Flusher;

/// Arguments of the flusher actor.
pub(crate) struct FlusherArgs {
    pub id: ConversationId,
    pub store: SharedStore,
    pub settings: Arc<Settings>,
    pub progress: Arc<FlushProgress>,
    /// Shared by every flusher: bounds concurrent storage writes.
    pub permits: Arc<Semaphore>,
    /// Where compactions log what they are about to replace; `None` when
    /// the write-ahead log is off.
    pub intent: Option<Arc<LoggedIntent>>,
}

/// A compaction's intent in the write-ahead log: durable before the
/// compaction writes anything, and needed by the log until what it
/// replaced is deleted.
pub(crate) struct LoggedIntent {
    pub wal: Wal,
    pub id: ConversationId,
    pub progress: Arc<FlushProgress>,
}

#[async_trait::async_trait]
impl CompactionIntent for LoggedIntent {
    async fn intend(&self, segments: &[String], replaced: &[String]) -> Result<(), StoreError> {
        let change: Change = Change::Compacting {
            segments: segments.to_vec(),
            replaced: replaced.to_vec(),
        };
        let unusable = |e: WalError| StoreError::Unusable(format!("compaction not logged: {e}"));
        let bytes = encode_change(self.id.as_str(), &change).map_err(unusable)?;
        self.progress.log.hold_compacting(self.wal.end());
        durable(self.wal.append(bytes)).await.map_err(unusable)?;
        Ok(())
    }
}

/// State of the flusher actor.
pub(crate) struct FlusherState {
    args: FlusherArgs,
    pending: Vec<SequencedMessage>,
    in_flight: Option<(Vec<SequencedMessage>, JoinHandle<Box<Compactor>>)>,
    /// Taken by the in-flight task and given back when it ends.
    compactor: Option<Box<Compactor>>,
    timer_armed: bool,
    drain_waiters: Vec<RpcReplyPort<()>>,
}

// As in the conversation actor, the hooks that await box their bodies so
// the task of an idle flusher does not hold the largest one's state.
impl Actor for Flusher {
    type Msg = FlusherMsg;
    type State = FlusherState;
    type Arguments = FlusherArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: FlusherArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(FlusherState {
            args,
            pending: Vec::new(),
            in_flight: None,
            compactor: Some(Box::default()),
            timer_armed: false,
            drain_waiters: Vec::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        Box::pin(self.handled(myself, message, state)).await
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        Box::pin(self.stopped(myself, state)).await
    }
}

impl Flusher {
    async fn handled(
        &self,
        myself: ActorRef<FlusherMsg>,
        message: FlusherMsg,
        state: &mut FlusherState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            FlusherMsg::Append(m) => state.append(&myself, *m),
            FlusherMsg::Tick => {
                state.timer_armed = false;
                state.start_write(&myself);
            }
            FlusherMsg::Written { count } => state.written(&myself, count).await,
            FlusherMsg::Drain(reply) => {
                state.drain_waiters.push(reply);
                state.start_write(&myself);
                state.answer_drained();
            }
            FlusherMsg::Unstored(reply) => {
                let mut all: Vec<SequencedMessage> = state
                    .in_flight
                    .iter()
                    .flat_map(|(batch, _)| batch.iter().cloned())
                    .collect();
                all.extend(state.pending.iter().cloned());
                let _ = reply.send(all);
            }
        }
        Ok(())
    }

    /// Stop stores everything still pending, in order, before the actor ends.
    async fn stopped(
        &self,
        _myself: ActorRef<FlusherMsg>,
        state: &mut FlusherState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some((_, task)) = state.in_flight.take()
            && let Ok(compactor) = task.await
        {
            state.compactor = Some(compactor);
        }
        let mut compactor = state.compactor.take().unwrap_or_default();
        while !state.pending.is_empty() {
            let take = state
                .pending
                .len()
                .min(state.args.settings.flush_max_batch.max(1));
            let batch: Vec<SequencedMessage> = state.pending.drain(..take).collect();
            write_with_retry(&state.args, &batch, &mut compactor).await;
            mark_stored(&state.args.progress, &batch);
        }
        if compactor.has_loose()
            && let Err(e) = compact(&state.args, &mut compactor).await
        {
            tracing::warn!(conversation = %state.args.id, error = %Report(&e), "compaction at stop failed; batches stay loose");
        }
        for waiter in state.drain_waiters.drain(..) {
            let _ = waiter.send(());
        }
        Ok(())
    }
}

impl FlusherState {
    fn append(&mut self, myself: &ActorRef<FlusherMsg>, message: SequencedMessage) {
        self.pending.push(message);
        if self.pending.len() >= self.args.settings.flush_max_batch {
            self.start_write(myself);
        } else if !self.timer_armed && self.in_flight.is_none() {
            self.timer_armed = true;
            myself.send_after(self.args.settings.flush_interval, || FlusherMsg::Tick);
        }
    }

    fn start_write(&mut self, myself: &ActorRef<FlusherMsg>) {
        if self.in_flight.is_some() || self.pending.is_empty() {
            return;
        }
        let take = self
            .pending
            .len()
            .min(self.args.settings.flush_max_batch.max(1));
        let batch: Vec<SequencedMessage> = self.pending.drain(..take).collect();
        if self.pending.is_empty() {
            // An idle conversation keeps no batch-sized buffer.
            self.pending = Vec::new();
        }
        let args = FlusherArgs {
            id: self.args.id.clone(),
            store: self.args.store.clone(),
            settings: self.args.settings.clone(),
            progress: self.args.progress.clone(),
            permits: self.args.permits.clone(),
            intent: self.args.intent.clone(),
        };
        let to_write = batch.clone();
        let me = myself.clone();
        let mut compactor = self.compactor.take().unwrap_or_default();
        let task = tokio::spawn(async move {
            write_with_retry(&args, &to_write, &mut compactor).await;
            mark_stored(&args.progress, &to_write);
            if compactor.due()
                && let Err(e) = compact(&args, &mut compactor).await
            {
                tracing::warn!(conversation = %args.id, error = %Report(&e), "compaction failed; batches stay loose until the next one");
            }
            let _ = me.cast(FlusherMsg::Written {
                count: to_write.len(),
            });
            compactor
        });
        self.in_flight = Some((batch, task));
    }

    async fn written(&mut self, myself: &ActorRef<FlusherMsg>, count: usize) {
        tracing::trace!(conversation = %self.args.id, count, "batch stored");
        if let Some((_, task)) = self.in_flight.take() {
            self.compactor = Some(task.await.unwrap_or_default());
        }
        if self.pending.len() >= self.args.settings.flush_max_batch
            || !self.drain_waiters.is_empty()
        {
            self.start_write(myself);
        } else if !self.pending.is_empty() && !self.timer_armed {
            self.timer_armed = true;
            myself.send_after(self.args.settings.flush_interval, || FlusherMsg::Tick);
        }
        self.answer_drained();
    }

    fn answer_drained(&mut self) {
        if self.pending.is_empty() && self.in_flight.is_none() {
            for waiter in self.drain_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

fn mark_stored(progress: &FlushProgress, batch: &[SequencedMessage]) {
    progress.pending.fetch_sub(batch.len(), Ordering::AcqRel);
    progress.log.stored(batch.len());
    if let Some(last) = batch.last() {
        progress.stored_seq.fetch_max(last.seq, Ordering::AcqRel);
    }
}

/// Compacts loose batches while holding a write permit. Once a round
/// succeeded and what it replaced is deleted, no logged intent is needed
/// any more (a failed round may have written part of its segments: the
/// next round, or the next start, cleans up after it).
async fn compact(args: &FlusherArgs, compactor: &mut Compactor) -> Result<(), StoreError> {
    let _permit = args.permits.acquire().await;
    let intent = args
        .intent
        .as_deref()
        .map(|intent| intent as &dyn CompactionIntent);
    let result = compactor
        .compact(args.store.as_ref(), &args.id, intent)
        .await;
    if result.is_ok() && compactor.settled() {
        args.progress.log.set_compacting(NONE);
    }
    result
}

/// Writes a batch as one NDJSON object named after its first message's
/// `seq` (so key order is history order), retrying with exponential backoff
/// (100 ms doubling to 10 s) plus jitter until storage accepts it. The key
/// is chosen once: a write that timed out but landed is overwritten by the
/// retry, never stored twice.
async fn write_with_retry(
    args: &FlusherArgs,
    batch: &[SequencedMessage],
    compactor: &mut Compactor,
) {
    let Some(first) = batch.first() else { return };
    let key = keys::batch_for_seq(&args.id, first.seq);
    let body = encode_lines(batch);
    let mut delay = Duration::from_millis(100);
    loop {
        let written = {
            let _permit = args.permits.acquire().await;
            args.store
                .put(&key, body.clone(), "application/x-ndjson")
                .await
        };
        match written {
            Ok(()) => {
                args.progress.failures.store(0, Ordering::Release);
                compactor.note_batch(&key, &body, batch);
                return;
            }
            Err(e) => {
                let failures = args.progress.failures.fetch_add(1, Ordering::AcqRel) + 1;
                tracing::warn!(conversation = %args.id, %key, error = %Report(&e), failures, "batch write failed; retrying");
                let jitter =
                    Duration::from_millis(rand::random_range(0..=delay.as_millis() as u64 / 2));
                tokio::time::sleep(delay + jitter).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}
