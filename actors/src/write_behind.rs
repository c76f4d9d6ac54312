//! A conversation's write-behind: how far storing its messages has got, and
//! the flusher that stores them, started on the first message there is to
//! store, so an idle loaded room runs no flusher actor.
//!
//! The supervisor keeps one [`WriteBehind`] per loaded conversation and hands
//! the same one to a conversation restarted after a panic: a flusher is the
//! supervisor's child, not the conversation's, so its pending batch outlives
//! the panic and the new conversation takes the unstored messages back.

use crate::changes::Change;
use crate::domain::ConversationId;
use crate::error::ChatError;
use crate::flusher::{FlushProgress, Flusher, FlusherArgs, FlusherMsg, LoggedIntent};
use crate::settings::Settings;
use crate::store::SharedStore;
use crate::wal::Wal;
use ractor::{Actor, ActorCell, ActorId, ActorRef, ActorStatus};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Semaphore;

/// What every flusher is started with, shared by all conversations.
pub(crate) struct FlusherStarter {
    /// The supervisor: every flusher is its child.
    supervisor: ActorCell,
    store: SharedStore,
    settings: Arc<Settings>,
    /// Bounds concurrent storage writes across flushers.
    permits: Arc<Semaphore>,
    /// Which conversation each running flusher stores, for the
    /// supervisor's handling of a flusher that stopped or failed.
    owners: Mutex<HashMap<ActorId, ConversationId>>,
    /// The write-ahead log, where compactions log their intent.
    log: Option<Wal>,
}

impl FlusherStarter {
    /// Flushers linked to `supervisor`, writing at most `concurrent_writes`
    /// batches at once.
    pub(crate) fn new(
        supervisor: ActorCell,
        store: SharedStore,
        settings: Arc<Settings>,
        concurrent_writes: usize,
        log: Option<Wal>,
    ) -> Self {
        FlusherStarter {
            supervisor,
            store,
            settings,
            permits: Arc::new(Semaphore::new(concurrent_writes)),
            owners: Mutex::new(HashMap::new()),
            log,
        }
    }

    /// The conversation whose flusher `actor` was, forgotten from now on.
    pub(crate) fn take_owner(&self, actor: ActorId) -> Option<ConversationId> {
        self.owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&actor)
    }
}

/// One conversation's write-behind.
pub(crate) struct WriteBehind {
    id: ConversationId,
    /// Read by the conversation, the supervisor and a shutdown report.
    pub progress: Arc<FlushProgress>,
    flusher: Mutex<Option<ActorRef<FlusherMsg>>>,
    starter: Arc<FlusherStarter>,
    /// Changes the log held at start for this conversation, with their
    /// log positions, until the conversation has loaded and applied them.
    replay: Mutex<Vec<(u64, Change)>>,
}

impl WriteBehind {
    /// A write-behind with no flusher yet.
    pub(crate) fn new(id: ConversationId, starter: Arc<FlusherStarter>) -> Self {
        WriteBehind {
            id,
            progress: Arc::default(),
            flusher: Mutex::new(None),
            starter,
            replay: Mutex::new(Vec::new()),
        }
    }

    /// Keeps the changes the log held for this conversation (in log
    /// order) until it applies them; the log keeps them meanwhile.
    pub(crate) fn set_replay(&self, changes: Vec<(u64, Change)>) {
        if let Some((first, _)) = changes.first() {
            self.progress.log.set_replay(*first);
        }
        *self.replay.lock().unwrap_or_else(PoisonError::into_inner) = changes;
    }

    /// Whether changes from the log wait to be applied.
    pub(crate) fn has_replay(&self) -> bool {
        !self
            .replay
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// The changes to apply; the caller reports them applied with
    /// [`crate::log_needs::LogNeeds::set_replay`] once it holds them.
    pub(crate) fn take_replay(&self) -> Vec<(u64, Change)> {
        std::mem::take(&mut *self.replay.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The running flusher, if one was started and still runs.
    pub(crate) fn flusher(&self) -> Option<ActorRef<FlusherMsg>> {
        self.slot()
            .as_ref()
            .filter(|f| matches!(f.get_status(), ActorStatus::Running | ActorStatus::Starting))
            .cloned()
    }

    /// The running flusher, started first when there is none.
    pub(crate) async fn started(&self) -> Result<ActorRef<FlusherMsg>, ChatError> {
        if let Some(flusher) = self.flusher() {
            return Ok(flusher);
        }
        let starter = &self.starter;
        let args = FlusherArgs {
            id: self.id.clone(),
            store: starter.store.clone(),
            settings: starter.settings.clone(),
            progress: self.progress.clone(),
            permits: starter.permits.clone(),
            intent: starter.log.clone().map(|wal| {
                Arc::new(LoggedIntent {
                    wal,
                    id: self.id.clone(),
                    progress: self.progress.clone(),
                })
            }),
        };
        let (actor, _) = Actor::spawn_linked(None, Flusher, args, starter.supervisor.clone())
            .await
            .map_err(|e| ChatError::spawn_failed("the write-behind flusher", e))?;
        starter
            .owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(actor.get_id(), self.id.clone());
        *self.slot() = Some(actor.clone());
        Ok(actor)
    }

    /// Stops the flusher, which stores what is pending first.
    pub(crate) fn stop(&self, reason: &str) {
        if let Some(flusher) = self.slot().take() {
            flusher.stop(Some(reason.into()));
        }
    }

    /// Forgets the flusher `actor` if it is this one's (it stopped or
    /// failed); the next message to store starts a new one.
    pub(crate) fn forget(&self, actor: ActorId) -> bool {
        let mut slot = self.slot();
        let is_ours = slot.as_ref().is_some_and(|f| f.get_id() == actor);
        if is_ours {
            *slot = None;
        }
        is_ours
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<ActorRef<FlusherMsg>>> {
        self.flusher.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
