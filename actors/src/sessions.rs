//! The session registry: an actor holding sessions with a sliding TTL,
//! behind the [`SessionRegistry`] seam so a shared store can replace it.

use crate::domain::Session;
use crate::error::ChatError;
use crate::settings::Settings;
use crate::time::now_ms;
use async_trait::async_trait;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Where sessions live.
#[async_trait]
pub trait SessionRegistry: Send + Sync + 'static {
    /// Stores a new session.
    async fn create(&self, session: Session) -> Result<(), ChatError>;
    /// The session, with `lastActiveAt` refreshed, if it exists and is fresh.
    async fn get(&self, session_id: &str) -> Result<Option<Session>, ChatError>;
    /// Forgets a session.
    async fn delete(&self, session_id: &str) -> Result<(), ChatError>;
}

/// Messages of the session actor.
pub enum SessionMsg {
    /// Stores a new session.
    Create(Session, RpcReplyPort<Result<(), ChatError>>),
    /// A session, refreshing its sliding TTL.
    Get(String, RpcReplyPort<Option<Session>>),
    /// Forgets a session.
    Delete(String),
    /// Timer: forget expired sessions.
    Sweep,
}

/// Behaviour of the session actor.
pub struct SessionActor;

/// State of the session actor.
pub struct SessionState {
    sessions: HashMap<String, Session>,
    ttl_ms: i64,
    max: usize,
}

impl SessionState {
    fn sweep(&mut self, now: i64) {
        let ttl = self.ttl_ms;
        self.sessions.retain(|_, s| now - s.last_active_at < ttl);
    }
}

impl Actor for SessionActor {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = Arc<Settings>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        settings: Arc<Settings>,
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_interval(Duration::from_secs(60), || SessionMsg::Sweep);
        Ok(SessionState {
            sessions: HashMap::new(),
            ttl_ms: settings.session_ttl.as_millis() as i64,
            max: settings.max_sessions,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let now = now_ms();
        match message {
            SessionMsg::Create(session, reply) => {
                if state.sessions.len() >= state.max {
                    state.sweep(now);
                }
                let result = if state.sessions.len() >= state.max {
                    Err(ChatError::Overloaded {
                        message: "Too many sessions",
                        retry_after: Duration::from_secs(60),
                    })
                } else {
                    state.sessions.insert(session.session_id.clone(), session);
                    Ok(())
                };
                let _ = reply.send(result);
            }
            SessionMsg::Get(id, reply) => {
                let ttl = state.ttl_ms;
                let found = match state.sessions.get_mut(&id) {
                    Some(s) if now - s.last_active_at < ttl => {
                        s.last_active_at = now;
                        Some(s.clone())
                    }
                    Some(_) => {
                        state.sessions.remove(&id);
                        None
                    }
                    None => None,
                };
                let _ = reply.send(found);
            }
            SessionMsg::Delete(id) => {
                state.sessions.remove(&id);
            }
            SessionMsg::Sweep => state.sweep(now),
        }
        Ok(())
    }
}

/// The in-process [`SessionRegistry`]: a handle to the session actor.
#[derive(Clone)]
pub struct ActorSessions {
    pub(crate) actor: ActorRef<SessionMsg>,
    pub(crate) timeout: Duration,
}

#[async_trait]
impl SessionRegistry for ActorSessions {
    async fn create(&self, session: Session) -> Result<(), ChatError> {
        crate::ask::ask(&self.actor, self.timeout, |r| {
            SessionMsg::Create(session, r)
        })
        .await?
    }

    async fn get(&self, session_id: &str) -> Result<Option<Session>, ChatError> {
        let id = session_id.to_owned();
        crate::ask::ask(&self.actor, self.timeout, |r| SessionMsg::Get(id, r)).await
    }

    async fn delete(&self, session_id: &str) -> Result<(), ChatError> {
        self.actor
            .cast(SessionMsg::Delete(session_id.to_owned()))
            .map_err(|_| ChatError::ActorGone("the session registry"))
    }
}
