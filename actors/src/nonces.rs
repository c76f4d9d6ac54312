//! The nonce registry: remembers ticket nonces for their TTL so a ticket
//! cannot be replayed. Check-and-store is one actor message, hence atomic.

use crate::error::ChatError;
use crate::settings::Settings;
use crate::time::now_ms;
use async_trait::async_trait;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Where nonces live.
#[async_trait]
pub trait NonceRegistry: Send + Sync + 'static {
    /// True when the nonce was unseen (and is now remembered).
    async fn check_and_store(&self, nonce: &str) -> Result<bool, ChatError>;
}

/// Messages of the nonce actor.
pub enum NonceMsg {
    /// Remembers a nonce; answers whether it was new.
    CheckAndStore(String, RpcReplyPort<Result<bool, ChatError>>),
    /// Timer: forget expired nonces.
    Sweep,
}

/// Behaviour of the nonce actor.
pub struct NonceActor;

/// State of the nonce actor.
pub struct NonceState {
    seen: HashMap<String, i64>,
    ttl_ms: i64,
    max: usize,
}

impl Actor for NonceActor {
    type Msg = NonceMsg;
    type State = NonceState;
    type Arguments = Arc<Settings>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        settings: Arc<Settings>,
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_interval(Duration::from_secs(30), || NonceMsg::Sweep);
        Ok(NonceState {
            seen: HashMap::new(),
            ttl_ms: settings.nonce_ttl.as_millis() as i64,
            max: settings.max_nonces,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let now = now_ms();
        let ttl = state.ttl_ms;
        match message {
            NonceMsg::CheckAndStore(nonce, reply) => {
                let fresh = state.seen.get(&nonce).is_none_or(|t| now - t >= ttl);
                if fresh && state.seen.len() >= state.max {
                    state.seen.retain(|_, t| now - *t < ttl);
                }
                let result = if !fresh {
                    Ok(false)
                } else if state.seen.len() >= state.max {
                    Err(ChatError::Overloaded {
                        message: "Too many tickets in flight",
                        retry_after: Duration::from_secs(30),
                    })
                } else {
                    state.seen.insert(nonce, now);
                    Ok(true)
                };
                let _ = reply.send(result);
            }
            NonceMsg::Sweep => state.seen.retain(|_, t| now - *t < ttl),
        }
        Ok(())
    }
}

/// The in-process [`NonceRegistry`]: a handle to the nonce actor.
#[derive(Clone)]
pub struct ActorNonces {
    pub(crate) actor: ActorRef<NonceMsg>,
    pub(crate) timeout: Duration,
}

#[async_trait]
impl NonceRegistry for ActorNonces {
    async fn check_and_store(&self, nonce: &str) -> Result<bool, ChatError> {
        let nonce = nonce.to_owned();
        crate::ask::ask(&self.actor, self.timeout, |r| {
            NonceMsg::CheckAndStore(nonce, r)
        })
        .await?
    }
}
