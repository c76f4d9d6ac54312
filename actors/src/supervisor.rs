//! The conversation supervisor: spawns a conversation (and its flusher) on
//! first use, restarts a conversation that panicked from storage plus its
//! flusher's unstored messages, forgets conversations that stopped when idle,
//! and on stop waits while every child flushes.
//!
//! Lookup lives in this actor's own map, not ractor's global registry, so
//! two servers in one process never collide.

use crate::conversation::{ConversationActor, ConversationArgs, ConversationMsg};
use crate::domain::ConversationId;
use crate::flusher::{FlushProgress, Flusher, FlusherArgs, FlusherMsg};
use crate::settings::Settings;
use crate::store::SharedStore;
use ractor::{
    Actor, ActorId, ActorProcessingErr, ActorRef, ActorStatus, RpcReplyPort, SupervisionEvent,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Messages of the supervisor.
pub enum SupervisorMsg {
    /// The live actor of a conversation, spawned if needed.
    Get(
        ConversationId,
        RpcReplyPort<Result<ActorRef<ConversationMsg>, String>>,
    ),
    /// Live conversations and messages waiting to be stored, for metrics.
    Stats(RpcReplyPort<SupervisorStats>),
}

/// Figures for `/metrics` and `/ready`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SupervisorStats {
    pub conversations: usize,
    pub pending_messages: usize,
    pub failing_flushers: usize,
}

/// Behaviour of the supervisor.
pub struct ConversationSupervisor;

/// Arguments of the supervisor.
pub struct SupervisorArgs {
    pub store: SharedStore,
    pub settings: Arc<Settings>,
}

struct FlusherEntry {
    actor: ActorRef<FlusherMsg>,
    progress: Arc<FlushProgress>,
}

/// State of the supervisor.
pub struct SupervisorState {
    args: SupervisorArgs,
    conversations: HashMap<ConversationId, ActorRef<ConversationMsg>>,
    flushers: HashMap<ConversationId, FlusherEntry>,
    owners: HashMap<ActorId, ConversationId>,
}

impl Actor for ConversationSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(SupervisorState {
            args,
            conversations: HashMap::new(),
            flushers: HashMap::new(),
            owners: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Get(id, reply) => {
                let result = state.get(&myself, id).await;
                let _ = reply.send(result);
            }
            SupervisorMsg::Stats(reply) => {
                let stats = SupervisorStats {
                    conversations: state.conversations.len(),
                    pending_messages: state
                        .flushers
                        .values()
                        .map(|f| f.progress.pending.load(Ordering::Acquire))
                        .sum(),
                    failing_flushers: state
                        .flushers
                        .values()
                        .filter(|f| f.progress.failures.load(Ordering::Acquire) > 0)
                        .count(),
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
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some(id) = state.owners.remove(&cell.get_id()) {
                    let is_current = state
                        .conversations
                        .get(&id)
                        .is_some_and(|a| a.get_id() == cell.get_id());
                    if is_current {
                        tracing::debug!(conversation = %id, ?reason, "conversation stopped");
                        state.conversations.remove(&id);
                        if let Some(flusher) = state.flushers.remove(&id) {
                            state.owners.remove(&flusher.actor.get_id());
                            flusher.actor.stop(Some("conversation stopped".into()));
                        }
                    } else if state
                        .flushers
                        .get(&id)
                        .is_some_and(|f| f.actor.get_id() == cell.get_id())
                    {
                        state.flushers.remove(&id);
                    }
                }
            }
            SupervisionEvent::ActorFailed(cell, error) => {
                if let Some(id) = state.owners.remove(&cell.get_id()) {
                    if state
                        .flushers
                        .get(&id)
                        .is_some_and(|f| f.actor.get_id() == cell.get_id())
                    {
                        tracing::error!(conversation = %id, %error, "flusher failed; its unstored messages are lost");
                        state.flushers.remove(&id);
                    } else {
                        tracing::error!(conversation = %id, %error, "conversation failed; restarting from storage");
                        state.conversations.remove(&id);
                        if let Err(e) = state.get(&myself, id.clone()).await {
                            tracing::error!(conversation = %id, error = %e, "restart failed");
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Stops every conversation and flusher and waits while they store
    /// what is pending.
    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        myself
            .get_cell()
            .stop_children_and_wait(Some("shutdown".into()), None)
            .await;
        Ok(())
    }
}

impl SupervisorState {
    async fn get(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: ConversationId,
    ) -> Result<ActorRef<ConversationMsg>, String> {
        if let Some(actor) = self.conversations.get(&id)
            && matches!(
                actor.get_status(),
                ActorStatus::Running | ActorStatus::Starting | ActorStatus::Upgrading
            )
        {
            return Ok(actor.clone());
        }
        if self.conversations.len() >= self.args.settings.max_conversations
            && !self.conversations.contains_key(&id)
        {
            return Err("too many conversations loaded".into());
        }
        let flusher = match self.flushers.get(&id) {
            Some(entry)
                if matches!(
                    entry.actor.get_status(),
                    ActorStatus::Running | ActorStatus::Starting
                ) =>
            {
                (entry.actor.clone(), entry.progress.clone())
            }
            _ => {
                let progress = Arc::new(FlushProgress::default());
                let args = FlusherArgs {
                    id: id.clone(),
                    store: self.args.store.clone(),
                    settings: self.args.settings.clone(),
                    progress: progress.clone(),
                };
                let (actor, _) = Actor::spawn_linked(None, Flusher, args, myself.get_cell())
                    .await
                    .map_err(|e| e.to_string())?;
                self.owners.insert(actor.get_id(), id.clone());
                self.flushers.insert(
                    id.clone(),
                    FlusherEntry {
                        actor: actor.clone(),
                        progress: progress.clone(),
                    },
                );
                (actor, progress)
            }
        };
        let args = ConversationArgs {
            id: id.clone(),
            store: self.args.store.clone(),
            settings: self.args.settings.clone(),
            flusher: flusher.0,
            progress: flusher.1,
        };
        let (actor, _) = Actor::spawn_linked(None, ConversationActor, args, myself.get_cell())
            .await
            .map_err(|e| e.to_string())?;
        self.owners.insert(actor.get_id(), id.clone());
        self.conversations.insert(id, actor.clone());
        Ok(actor)
    }
}
