//! The session registry: sessions with a sliding TTL in a
//! [`crate::ttl_registry`] actor, behind the [`SessionRegistry`] seam so a
//! shared store can replace it.

use crate::ask::ask;
use crate::domain::Session;
use crate::error::ChatError;
use crate::settings::Settings;
use crate::ttl_registry::{self, Expiry, Overflow, RegistryMsg, RegistryRules};
use async_trait::async_trait;
use ractor::ActorRef;
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

/// How the in-process registry keeps sessions: each read slides the TTL.
fn rules(settings: &Settings) -> RegistryRules {
    RegistryRules {
        ttl: settings.session_ttl,
        expiry: Expiry::Sliding,
        max: settings.max_sessions,
        sweep_every: Duration::from_secs(60),
        when_full: Overflow {
            message: "Too many sessions",
            retry_after: Duration::from_secs(60),
        },
    }
}

/// The in-process [`SessionRegistry`]: a handle to a registry actor whose
/// entries are sessions, each living from its `last_active_at`.
#[derive(Clone)]
pub(crate) struct ActorSessions {
    pub(crate) actor: ActorRef<RegistryMsg<Session>>,
    pub(crate) timeout: Duration,
}

impl ActorSessions {
    /// Starts the registry actor.
    pub(crate) async fn start(settings: &Settings) -> Result<Self, ChatError> {
        Ok(ActorSessions {
            actor: ttl_registry::spawn(rules(settings)).await?,
            timeout: settings.call_timeout,
        })
    }
}

#[async_trait]
impl SessionRegistry for ActorSessions {
    async fn create(&self, session: Session) -> Result<(), ChatError> {
        ask(&self.actor, self.timeout, |reply| RegistryMsg::Insert {
            key: session.session_id.clone(),
            since_ms: session.last_active_at,
            value: session,
            reply,
        })
        .await?
    }

    async fn get(&self, session_id: &str) -> Result<Option<Session>, ChatError> {
        let id = session_id.to_owned();
        let found = ask(&self.actor, self.timeout, |reply| {
            RegistryMsg::Get(id, reply)
        })
        .await?;
        Ok(found.map(|entry| Session {
            last_active_at: entry.since_ms,
            ..entry.value
        }))
    }

    async fn delete(&self, session_id: &str) -> Result<(), ChatError> {
        self.actor
            .cast(RegistryMsg::Remove(session_id.to_owned()))
            .map_err(|_| ChatError::ActorGone("the session registry"))
    }
}
