//! The addresses of loaded conversations, shared by the supervisor (the
//! only one that adds them) and every [`crate::ConversationHandle`], so a
//! request reaches a loaded conversation without a hop through the
//! supervisor's mailbox. A cache of the supervisor's own map: the
//! supervisor adds an actor when it spawns one and removes it when it sees
//! the actor stop or fail; a handle that finds a cached actor gone drops it
//! and asks the supervisor. One per [`crate::System`], never global, so two
//! systems in one process do not see each other's conversations.

use crate::conversation::ConversationMsg;
use crate::domain::ConversationId;
use ractor::{ActorId, ActorRef, ActorStatus};
use std::collections::HashMap;
use std::sync::RwLock;

/// Conversation id → the actor currently serving it.
#[derive(Default)]
pub(crate) struct ConversationAddresses {
    actors: RwLock<HashMap<ConversationId, ActorRef<ConversationMsg>>>,
}

/// Whether an actor still takes requests.
pub(crate) fn is_live(actor: &ActorRef<ConversationMsg>) -> bool {
    matches!(
        actor.get_status(),
        ActorStatus::Running | ActorStatus::Starting | ActorStatus::Upgrading
    )
}

impl ConversationAddresses {
    /// The live actor of a loaded conversation, if one is cached.
    pub(crate) fn get(&self, id: &ConversationId) -> Option<ActorRef<ConversationMsg>> {
        let actors = self.actors.read().ok()?;
        actors.get(id).filter(|actor| is_live(actor)).cloned()
    }

    /// Every live actor cached now.
    pub(crate) fn all(&self) -> Vec<ActorRef<ConversationMsg>> {
        self.actors.read().map_or_else(
            |_| Vec::new(),
            |actors| actors.values().filter(|a| is_live(a)).cloned().collect(),
        )
    }

    /// Records the actor now serving `id`.
    pub(crate) fn insert(&self, id: ConversationId, actor: ActorRef<ConversationMsg>) {
        if let Ok(mut actors) = self.actors.write() {
            actors.insert(id, actor);
        }
    }

    /// Drops the entry of `id` if it is still the actor `actor_id` (a newer
    /// actor that replaced it stays).
    pub(crate) fn forget(&self, id: &ConversationId, actor_id: ActorId) {
        if let Ok(mut actors) = self.actors.write()
            && actors
                .get(id)
                .is_some_and(|cached| cached.get_id() == actor_id)
        {
            actors.remove(id);
        }
    }

    /// Conversations cached now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.actors.read().map_or(0, |actors| actors.len())
    }

    /// Whether none is cached.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
