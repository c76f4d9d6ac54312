//! Sessions in Redis: one key per session holding its JSON, expiring
//! `session_ttl` after its last use (each read slides it with `GETEX`), so
//! a session made on one instance works on all and ends on all at once.

use super::{RedisLink, key, millis};
use crate::domain::Session;
use crate::error::ChatError;
use crate::sessions::SessionRegistry;
use crate::time::now_ms;
use async_trait::async_trait;
use std::time::Duration;

/// The [`SessionRegistry`] of an instance in a cluster.
#[derive(Clone)]
pub struct RedisSessions {
    link: RedisLink,
    ttl: Duration,
}

impl RedisSessions {
    /// Sessions living `ttl` after their last use.
    pub fn new(link: RedisLink, ttl: Duration) -> Self {
        RedisSessions { link, ttl }
    }
}

#[async_trait]
impl SessionRegistry for RedisSessions {
    async fn create(&self, session: Session) -> Result<(), ChatError> {
        let json = serde_json::to_string(&session)
            .map_err(|e| ChatError::Invalid(format!("a session does not serialise: {e}")))?;
        self.link
            .call::<()>(
                redis::cmd("SET")
                    .arg(key("session", &session.session_id))
                    .arg(json)
                    .arg("PX")
                    .arg(millis(self.ttl)),
            )
            .await
    }

    async fn get(&self, session_id: &str) -> Result<Option<Session>, ChatError> {
        let json: Option<String> = self
            .link
            .call(
                redis::cmd("GETEX")
                    .arg(key("session", session_id))
                    .arg("PX")
                    .arg(millis(self.ttl)),
            )
            .await?;
        let Some(json) = json else {
            return Ok(None);
        };
        match serde_json::from_str::<Session>(&json) {
            Ok(session) => Ok(Some(Session {
                last_active_at: now_ms(),
                ..session
            })),
            Err(e) => {
                tracing::warn!(error = %e, "a session in Redis does not parse; treated as unknown");
                Ok(None)
            }
        }
    }

    async fn delete(&self, session_id: &str) -> Result<(), ChatError> {
        self.link
            .call::<()>(redis::cmd("DEL").arg(key("session", session_id)))
            .await
    }
}
