//! The nonce registry: remembers ticket nonces for their TTL in a
//! [`crate::ttl_registry`] actor so a ticket cannot be replayed.
//! Check-and-store is one actor message, hence atomic; with the log on, a
//! nonce's use is durable before the check answers that it was unseen.

use crate::ask::ask;
use crate::error::ChatError;
use crate::log_records::{LogRecord, UsedNonce};
use crate::settings::Settings;
use crate::ttl_registry::{
    self, Expiry, Journal, Journaling, Overflow, RegistryArgs, RegistryMsg, RegistryRules, Stamped,
};
use async_trait::async_trait;
use ractor::ActorRef;
use std::time::Duration;

/// Where nonces live.
#[async_trait]
pub trait NonceRegistry: Send + Sync + 'static {
    /// True when the nonce was unseen (and is now remembered).
    async fn check_and_store(&self, nonce: &str) -> Result<bool, ChatError>;
}

/// How the in-process registry keeps nonces: each for its TTL from first use.
fn rules(settings: &Settings) -> RegistryRules {
    RegistryRules {
        ttl: settings.nonce_ttl,
        expiry: Expiry::Fixed,
        max: settings.max_nonces,
        sweep_every: Duration::from_secs(30),
        when_full: Overflow {
            message: "Too many tickets in flight",
            retry_after: Duration::from_secs(30),
        },
    }
}

/// The in-process [`NonceRegistry`]: a handle to a registry actor whose
/// keys are the nonces seen.
#[derive(Clone)]
pub(crate) struct ActorNonces {
    pub(crate) actor: ActorRef<RegistryMsg<()>>,
    pub(crate) timeout: Duration,
}

impl ActorNonces {
    /// Starts the registry actor with `restored` (nonces a replay of the
    /// log found, with the time each was used), writing to the log when
    /// `log` is given.
    pub(crate) async fn start(
        settings: &Settings,
        log: Option<Journaling<()>>,
        restored: Vec<(String, i64)>,
    ) -> Result<Self, ChatError> {
        let restored = restored
            .into_iter()
            .map(|(nonce, since_ms)| (nonce, Stamped::new((), since_ms)))
            .collect();
        let args = RegistryArgs {
            rules: rules(settings),
            log,
            restored,
        };
        Ok(ActorNonces {
            actor: ttl_registry::spawn_with(args).await?,
            timeout: settings.call_timeout,
        })
    }
}

/// The nonce registry's log records: a nonce is never read or forgotten
/// on request, only used and expired.
pub(crate) struct NonceJournal;

impl Journal<()> for NonceJournal {
    fn inserted(&self, key: &str, entry: &Stamped<()>) -> LogRecord {
        LogRecord::NonceUsed {
            nonce: key.to_owned(),
            at: entry.since_ms,
        }
    }

    fn touched(&self, _key: &str, _at_ms: i64) -> Option<LogRecord> {
        None
    }

    fn removed(&self, _key: &str) -> Option<LogRecord> {
        None
    }

    fn snapshot(&self, entries: &[(String, Stamped<()>)]) -> LogRecord {
        LogRecord::NonceSnapshot {
            nonces: entries
                .iter()
                .map(|(nonce, entry)| UsedNonce {
                    nonce: nonce.clone(),
                    at: entry.since_ms,
                })
                .collect(),
        }
    }
}

#[async_trait]
impl NonceRegistry for ActorNonces {
    async fn check_and_store(&self, nonce: &str) -> Result<bool, ChatError> {
        let key = nonce.to_owned();
        ask(&self.actor, self.timeout, |reply| RegistryMsg::InsertNew {
            key,
            value: (),
            reply,
        })
        .await?
    }
}
