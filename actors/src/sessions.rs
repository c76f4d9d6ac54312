//! The session registry: sessions with a sliding TTL in a
//! [`crate::ttl_registry`] actor, behind the [`SessionRegistry`] seam so a
//! shared store can replace it. With the log on, a session is durable
//! before its id is handed out, a leave before it is answered, and a use
//! is logged at most once per [`TOUCH_EVERY`]: after a restart a session's
//! TTL runs from its last logged use.

use crate::ask::ask;
use crate::domain::Session;
use crate::error::ChatError;
use crate::log_records::LogRecord;
use crate::settings::Settings;
use crate::ttl_registry::{
    self, Expiry, Journal, Journaling, Overflow, RegistryArgs, RegistryMsg, RegistryRules, Stamped,
};
use async_trait::async_trait;
use ractor::ActorRef;
use std::time::Duration;

/// A session's use is logged at most this often.
pub(crate) const TOUCH_EVERY: Duration = Duration::from_secs(60);

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
    /// Starts the registry actor with `restored` (sessions a replay of
    /// the log found), writing to the log when `log` is given.
    pub(crate) async fn start(
        settings: &Settings,
        log: Option<Journaling<Session>>,
        restored: Vec<Session>,
    ) -> Result<Self, ChatError> {
        let restored = restored
            .into_iter()
            .map(|session| {
                let since_ms = session.last_active_at;
                (session.session_id.clone(), Stamped::new(session, since_ms))
            })
            .collect();
        let args = RegistryArgs {
            rules: rules(settings),
            log,
            restored,
        };
        Ok(ActorSessions {
            actor: ttl_registry::spawn_with(args).await?,
            timeout: settings.call_timeout,
        })
    }
}

/// The session registry's log records.
pub(crate) struct SessionJournal;

impl SessionJournal {
    fn as_stored(entry: &Stamped<Session>) -> Session {
        Session {
            last_active_at: entry.since_ms,
            ..entry.value.clone()
        }
    }
}

impl Journal<Session> for SessionJournal {
    fn inserted(&self, _key: &str, entry: &Stamped<Session>) -> LogRecord {
        LogRecord::SessionCreated {
            session: Self::as_stored(entry),
        }
    }

    fn touched(&self, key: &str, at_ms: i64) -> Option<LogRecord> {
        Some(LogRecord::SessionTouched {
            id: key.to_owned(),
            at: at_ms,
        })
    }

    fn removed(&self, key: &str) -> Option<LogRecord> {
        Some(LogRecord::SessionDeleted { id: key.to_owned() })
    }

    fn snapshot(&self, entries: &[(String, Stamped<Session>)]) -> LogRecord {
        LogRecord::SessionSnapshot {
            sessions: entries
                .iter()
                .map(|(_, entry)| Self::as_stored(entry))
                .collect(),
        }
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
        let id = session_id.to_owned();
        ask(&self.actor, self.timeout, |reply| {
            RegistryMsg::Remove(id, reply)
        })
        .await?
    }
}
