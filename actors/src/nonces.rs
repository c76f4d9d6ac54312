//! The nonce registry: remembers ticket nonces for their TTL in a
//! [`crate::ttl_registry`] actor so a ticket cannot be replayed.
//! Check-and-store is one actor message, hence atomic.

use crate::ask::ask;
use crate::error::ChatError;
use crate::settings::Settings;
use crate::ttl_registry::{self, Expiry, Overflow, RegistryMsg, RegistryRules};
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
    /// Starts the registry actor.
    pub(crate) async fn start(settings: &Settings) -> Result<Self, ChatError> {
        Ok(ActorNonces {
            actor: ttl_registry::spawn(rules(settings)).await?,
            timeout: settings.call_timeout,
        })
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
