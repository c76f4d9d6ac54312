//! The conversation supervisor: spawns a conversation on first use (its
//! flusher, also this actor's child, starts with the first message to
//! store, see [`crate::write_behind`]), restarts a conversation that
//! panicked from storage plus its flusher's unstored messages, forgets
//! conversations that stopped when idle, and on stop drains every
//! conversation, then every flusher, all at once.
//!
//! Requests that must not create a room (joins, embeds, system messages,
//! admin lookups) name an id that is not loaded: one GET of its
//! `meta.json` in a task decides, and ids found absent are remembered in a
//! bounded negative cache ([`crate::absent`]), so random ids never load a
//! conversation.
//!
//! Lookup lives in this actor's own map, not ractor's global registry, so
//! two servers in one process never collide; handles read a copy of it,
//! [`ConversationAddresses`], which this actor keeps in step, and ask here
//! only for a conversation that is not loaded.

use crate::absent::AbsentIds;
use crate::addresses::{ConversationAddresses, is_live};
use crate::changes::Change;
use crate::cluster::RedisLink;
use crate::conversation::{
    ConversationActor, ConversationArgs, ConversationMsg, ConversationState, HIBERNATING,
    Hibernated, Internal,
};
use crate::domain::ConversationId;
use crate::error::{ChatError, Report};
use crate::flusher::{CONCURRENT_WRITES, FlushProgress};
use crate::retention::{Owner, Retention};
use crate::settings::Settings;
use crate::store::{SharedStore, StoreError, keys};
use crate::time::now_ms;
use crate::wal::Wal;
use crate::write_behind::{FlusherStarter, WriteBehind};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// The answer of [`SupervisorMsg::Get`]: 404 for a conversation that does
/// not exist (asked with `must_exist`), 503 when it cannot be loaded now
/// (too many loaded, storage failing).
pub(crate) type Lookup = Result<ActorRef<ConversationMsg>, ChatError>;

/// The answer for an id that does not exist.
const UNKNOWN: ChatError = ChatError::NotFound("Conversation not found");

/// Messages of the supervisor.
pub(crate) enum SupervisorMsg {
    /// The live actor of a conversation, spawned if needed; with
    /// `must_exist`, an id absent from storage is answered `Unknown`
    /// without spawning anything.
    Get {
        id: ConversationId,
        must_exist: bool,
        reply: RpcReplyPort<Lookup>,
    },
    /// Whether a conversation's `meta.json` exists, found by a task.
    Checked {
        id: ConversationId,
        exists: Result<bool, StoreError>,
        reply: RpcReplyPort<Lookup>,
    },
    /// Live conversations and messages waiting to be stored, for metrics.
    Stats(RpcReplyPort<SupervisorStats>),
    /// Timer: tells every loaded conversation to do its housekeeping (one
    /// ticker for all, so an idle room keeps no timer task of its own).
    Housekeep,
}

/// Figures for `/metrics` and `/ready`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SupervisorStats {
    /// Conversation actors running.
    pub conversations: usize,
    /// Conversations hibernating: loaded, with no actor.
    pub hibernating: usize,
    /// Accepted messages not yet stored.
    pub pending_messages: usize,
    /// Flushers whose latest write failed.
    pub failing_flushers: usize,
    /// Ids in the negative cache.
    pub known_absent: usize,
}

/// The write-behind progress of every conversation with a flusher, shared
/// with [`crate::System`] so that what is unstored can be told after a
/// shutdown ran out of time (when the supervisor no longer answers).
pub(crate) type ProgressBoard = Mutex<HashMap<ConversationId, Arc<FlushProgress>>>;

/// Existence checks of ids that are not loaded, at most this many at once.
const CONCURRENT_CHECKS: usize = 64;

/// Behaviour of the supervisor.
pub(crate) struct ConversationSupervisor;

/// Arguments of the supervisor.
pub(crate) struct SupervisorArgs {
    pub store: SharedStore,
    pub settings: Arc<Settings>,
    pub board: Arc<ProgressBoard>,
    /// The addresses handles read, kept in step with `conversations`.
    pub addresses: Arc<ConversationAddresses>,
    /// The write-ahead log and where the conversations' needs of it are
    /// reported; `None` when it is off.
    pub log: Option<(Wal, Arc<Retention>)>,
    /// The changes the log held at start, by conversation: each of these
    /// is loaded at start and applies them.
    pub replay: HashMap<ConversationId, Vec<(u64, Change)>>,
    /// The cluster's Redis, once this instance joined one.
    pub cluster: Arc<OnceLock<RedisLink>>,
}

/// State of the supervisor.
pub(crate) struct SupervisorState {
    args: SupervisorArgs,
    conversations: HashMap<ConversationId, ActorRef<ConversationMsg>>,
    /// One per loaded conversation, kept across its restarts.
    write_behind: HashMap<ConversationId, Arc<WriteBehind>>,
    /// Conversation actors' ids (flushers' are the starter's).
    owners: HashMap<ActorId, ConversationId>,
    absent: AbsentIds,
    flushers: Arc<FlusherStarter>,
    check_permits: Arc<Semaphore>,
    /// Conversation actors told to stop to make room (see
    /// [`SupervisorState::unload_idlest`]), until they have stopped: they
    /// no longer count against the bounds.
    unloading: HashSet<ActorId>,
    /// Loaded conversations with no actor (see
    /// [`crate::conversation::hibernation`]); the next request wakes one.
    hibernating: HashMap<ConversationId, Box<Hibernated>>,
}

/// A conversation idle for less than this is not unloaded to make room
/// for another: one in use between requests stays.
const MIN_IDLE_TO_UNLOAD_MS: i64 = 1_000;

impl Actor for ConversationSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let flushers = Arc::new(FlusherStarter::new(
            myself.get_cell(),
            args.store.clone(),
            args.settings.clone(),
            CONCURRENT_WRITES,
            args.log.as_ref().map(|(wal, _)| wal.clone()),
        ));
        myself.send_interval(args.settings.housekeeping_interval(), || {
            SupervisorMsg::Housekeep
        });
        let mut state = SupervisorState {
            args,
            conversations: HashMap::new(),
            write_behind: HashMap::new(),
            owners: HashMap::new(),
            absent: AbsentIds::default(),
            flushers,
            check_permits: Arc::new(Semaphore::new(CONCURRENT_CHECKS)),
            unloading: HashSet::new(),
            hibernating: HashMap::new(),
        };
        for (id, changes) in std::mem::take(&mut state.args.replay) {
            state.write_behind_of(&id).set_replay(changes);
        }
        Ok(state)
    }

    /// Loads every conversation with changes from the log, so they reach
    /// storage (and the log can be released) without waiting for a user.
    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.load_replayed(&myself).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Get {
                id,
                must_exist,
                reply,
            } => state.lookup(&myself, id, must_exist, reply).await,
            SupervisorMsg::Checked { id, exists, reply } => {
                let result = match exists {
                    _ if state.is_live(&id) => state.get(&myself, id).await,
                    Ok(true) => state.get(&myself, id).await,
                    Ok(false) => {
                        state.absent.insert(id, now_ms());
                        Err(UNKNOWN)
                    }
                    Err(e) => Err(ChatError::Storage(e)),
                };
                let _ = reply.send(result);
            }
            SupervisorMsg::Housekeep => {
                for conversation in state.conversations.values() {
                    let _ = conversation.cast(Internal::Housekeep.into());
                }
                state.expire_hibernating();
                state.load_replayed(&myself).await;
                state.report_log_needs();
            }
            SupervisorMsg::Stats(reply) => {
                let stats = SupervisorStats {
                    conversations: state.conversations.len(),
                    hibernating: state.hibernating.len(),
                    pending_messages: state
                        .write_behind
                        .values()
                        .map(|f| f.progress.pending.load(Ordering::Acquire))
                        .sum(),
                    failing_flushers: state
                        .write_behind
                        .values()
                        .filter(|f| f.progress.failures.load(Ordering::Acquire) > 0)
                        .count(),
                    known_absent: state.absent.len(),
                };
                let _ = reply.send(stats);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, last_state, reason) => {
                let unloading = state.unloading.remove(&cell.get_id());
                if let Some(id) = state.owners.remove(&cell.get_id()) {
                    let is_current = state
                        .conversations
                        .get(&id)
                        .is_some_and(|a| a.get_id() == cell.get_id());
                    if is_current {
                        tracing::debug!(conversation = %id, ?reason, "conversation stopped");
                        state.conversations.remove(&id);
                        state.args.addresses.forget(&id, cell.get_id());
                        let hibernated = (reason.as_deref() == Some(HIBERNATING) && !unloading)
                            .then_some(last_state)
                            .flatten()
                            .and_then(|mut boxed| boxed.take::<ConversationState>().ok())
                            .and_then(ConversationState::hibernate);
                        match hibernated {
                            Some(room) => state.keep_hibernating(id, room),
                            None => state.unload(&id, "conversation stopped"),
                        }
                    }
                } else if let Some(id) = state.flushers.take_owner(cell.get_id())
                    && let Some(write_behind) = state.write_behind.get(&id)
                {
                    write_behind.forget(cell.get_id());
                }
            }
            SupervisionEvent::ActorFailed(cell, error) => {
                state.unloading.remove(&cell.get_id());
                if let Some(id) = state.owners.remove(&cell.get_id()) {
                    tracing::error!(conversation = %id, %error, "conversation failed; restarting from storage");
                    state.conversations.remove(&id);
                    state.args.addresses.forget(&id, cell.get_id());
                    if let Err(e) = state.get(&myself, id.clone()).await {
                        tracing::error!(conversation = %id, error = %Report(&e), "restart failed");
                    }
                } else if let Some(id) = state.flushers.take_owner(cell.get_id()) {
                    tracing::error!(conversation = %id, %error, "flusher failed; its unstored messages are lost");
                    if let Some(write_behind) = state.write_behind.get(&id)
                        && write_behind.forget(cell.get_id())
                    {
                        write_behind.progress.pending.store(0, Ordering::Release);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Drains every conversation at once (each answers what is in its
    /// mailbox, hands its flusher the rest and saves its documents), then
    /// drains the flushers, and waits while they store what is pending.
    /// Conversations go first so that no accepted message reaches a flusher
    /// that already stopped.
    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let conversations: Vec<_> = state.conversations.values().cloned().collect();
        futures::future::join_all(conversations.iter().map(|c| c.drain_and_wait(None))).await;
        myself.get_cell().drain_children_and_wait(None).await;
        Ok(())
    }
}

impl SupervisorState {
    fn is_live(&self, id: &ConversationId) -> bool {
        self.conversations.get(id).is_some_and(is_live)
    }

    /// Keeps a room whose actor stopped hibernating; its flusher (idle:
    /// all is stored) stops too, and starts again with the next message.
    fn keep_hibernating(&mut self, id: ConversationId, room: Hibernated) {
        if let Some(write_behind) = self.write_behind.get(&id) {
            write_behind.stop("conversation hibernating");
        }
        self.hibernating.insert(id, Box::new(room));
    }

    /// Forgets a conversation that is no longer loaded: its write-behind
    /// stops (storing what is pending first).
    fn unload(&mut self, id: &ConversationId, reason: &str) {
        self.hibernating.remove(id);
        if let Some(write_behind) = self.write_behind.remove(id) {
            write_behind.stop(reason);
            self.forget_progress(id, &write_behind.progress);
        }
    }

    /// Unloads hibernating rooms idle for `idle_timeout`, as their actors
    /// would have been.
    fn expire_hibernating(&mut self) {
        let limit = i64::try_from(self.args.settings.idle_timeout.as_millis()).unwrap_or(i64::MAX);
        let now = now_ms();
        let expired: Vec<ConversationId> = self
            .hibernating
            .iter()
            .filter(|(_, room)| now - room.last_activity_ms() >= limit)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            tracing::debug!(conversation = %id, "hibernating conversation unloaded (idle)");
            self.unload(&id, "conversation idle");
        }
    }

    /// Answers a `Get`: the live actor, a fresh one, `Unknown` from the
    /// negative cache, or (for an id not loaded that must exist) a check
    /// of storage in a task that answers through [`SupervisorMsg::Checked`].
    async fn lookup(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: ConversationId,
        must_exist: bool,
        reply: RpcReplyPort<Lookup>,
    ) {
        if self.is_live(&id) || self.hibernating.contains_key(&id) || !must_exist {
            self.absent.remove(&id);
            let _ = reply.send(self.get(myself, id).await);
            return;
        }
        if self.absent.contains(&id, now_ms()) {
            let _ = reply.send(Err(UNKNOWN));
            return;
        }
        let store = self.args.store.clone();
        let permits = self.check_permits.clone();
        let me = myself.clone();
        tokio::spawn(async move {
            let exists = {
                let _permit = permits.acquire().await;
                store.get(&keys::meta(&id)).await.map(|meta| meta.is_some())
            };
            let _ = me.cast(SupervisorMsg::Checked { id, exists, reply });
        });
    }

    /// Leaves a stopped conversation off the board unless it left
    /// something unstored (which a shutdown report must still name).
    fn forget_progress(&self, id: &ConversationId, progress: &FlushProgress) {
        let settled = progress.pending.load(Ordering::Acquire) == 0
            && progress.unsaved_documents.load(Ordering::Acquire) == 0
            && progress.log.oldest().is_none();
        if settled && let Ok(mut board) = self.args.board.lock() {
            board.remove(id);
        }
    }

    /// The conversation's write-behind, made (and put on the board) when
    /// it has none.
    fn write_behind_of(&mut self, id: &ConversationId) -> Arc<WriteBehind> {
        if let Some(existing) = self.write_behind.get(id) {
            return existing.clone();
        }
        let created = Arc::new(WriteBehind::new(id.clone(), self.flushers.clone()));
        if let Ok(mut board) = self.args.board.lock() {
            board.insert(id.clone(), created.progress.clone());
        }
        self.write_behind.insert(id.clone(), created.clone());
        created
    }

    /// Loads the conversations whose changes from the log wait to be
    /// applied and that are not loaded (at start, and again while the
    /// bounds on loaded conversations kept some from loading).
    async fn load_replayed(&mut self, myself: &ActorRef<SupervisorMsg>) {
        let waiting: Vec<ConversationId> = self
            .write_behind
            .iter()
            .filter(|(id, w)| w.has_replay() && !self.is_live(id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in waiting {
            if let Err(e) = self.get(myself, id.clone()).await {
                tracing::warn!(conversation = %id, error = %Report(&e), "a conversation with logged changes could not load yet; retrying");
            }
        }
    }

    /// Tells the log the oldest position any conversation still needs. The
    /// end is read before the needs: a change whose need is not seen yet
    /// was appended after that read, so it lies at or after that end.
    fn report_log_needs(&self) {
        let Some((wal, retention)) = &self.args.log else {
            return;
        };
        let end = wal.end();
        let oldest = self.args.board.lock().ok().and_then(|board| {
            board
                .values()
                .filter_map(|progress| progress.log.oldest())
                .min()
        });
        retention.needs_from(Owner::Conversations, oldest.unwrap_or(end).min(end));
    }

    /// Whether the loaded conversations' estimated memory reached
    /// `max_loaded_memory` (each conversation keeps its estimate current).
    fn over_memory_bound(&self) -> bool {
        let bound = self.args.settings.max_loaded_memory;
        if bound == 0 {
            return false;
        }
        let held: usize = self
            .conversations
            .iter()
            .filter(|(_, actor)| !self.unloading.contains(&actor.get_id()))
            .map(|(id, _)| id)
            .chain(self.hibernating.keys())
            .filter_map(|id| self.write_behind.get(id))
            .map(|w| w.progress.memory_bytes.load(Ordering::Acquire))
            .sum();
        held >= bound
    }

    /// Makes room under the bounds: the loaded conversation idle for
    /// longest (no open stream, no request for at least
    /// [`MIN_IDLE_TO_UNLOAD_MS`]) is stopped, storing what it holds as an
    /// idle one does. `false` when every loaded conversation is in use.
    fn unload_idlest(&mut self) -> bool {
        let latest = now_ms() - MIN_IDLE_TO_UNLOAD_MS;
        let idlest_hibernating = self
            .hibernating
            .iter()
            .min_by_key(|(_, room)| room.last_activity_ms())
            .map(|(id, _)| id.clone());
        if let Some(id) = idlest_hibernating {
            tracing::info!(conversation = %id, "unloading the idlest conversation to make room");
            self.unload(&id, "unloaded to make room");
            return true;
        }
        let idlest = self
            .conversations
            .iter()
            .filter(|(_, actor)| !self.unloading.contains(&actor.get_id()) && is_live(actor))
            .filter_map(|(id, actor)| {
                let since = self
                    .write_behind
                    .get(id)?
                    .progress
                    .idle_since_ms
                    .load(Ordering::Acquire);
                (since <= latest).then_some((since, id, actor))
            })
            .min_by_key(|(since, _, _)| *since);
        let Some((_, id, actor)) = idlest else {
            return false;
        };
        tracing::info!(conversation = %id, "unloading the idlest conversation to make room");
        actor.stop(Some("unloaded to make room".into()));
        self.unloading.insert(actor.get_id());
        true
    }

    async fn get(&mut self, myself: &ActorRef<SupervisorMsg>, id: ConversationId) -> Lookup {
        if self.is_live(&id) {
            return Ok(self.conversations[&id].clone());
        }
        let resume = self.hibernating.remove(&id);
        if !self.conversations.contains_key(&id) && resume.is_none() {
            let loaded = self.conversations.len() + self.hibernating.len() - self.unloading.len();
            if loaded >= self.args.settings.max_conversations && !self.unload_idlest() {
                return Err(ChatError::Overloaded {
                    message: "Too many conversations are loaded; retry shortly",
                    retry_after: Duration::from_secs(2),
                });
            }
            if self.over_memory_bound() && !self.unload_idlest() {
                return Err(ChatError::Overloaded {
                    message: "Loaded conversations hold too much memory; retry shortly",
                    retry_after: Duration::from_secs(5),
                });
            }
        }
        let write_behind = self.write_behind_of(&id);
        let args = ConversationArgs {
            id: id.clone(),
            store: self.args.store.clone(),
            settings: self.args.settings.clone(),
            write_behind,
            log: match self.args.cluster.get() {
                Some(_) => None,
                None => self.args.log.as_ref().map(|(wal, _)| wal.clone()),
            },
            cluster: self.args.cluster.get().cloned(),
            resume,
        };
        let (actor, _) = Actor::spawn_linked(None, ConversationActor, args, myself.get_cell())
            .await
            .map_err(|e| ChatError::spawn_failed("a conversation", e))?;
        self.owners.insert(actor.get_id(), id.clone());
        self.args.addresses.insert(id.clone(), actor.clone());
        self.conversations.insert(id, actor.clone());
        Ok(actor)
    }
}
