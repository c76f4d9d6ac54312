//! Compaction in a cluster: the lease holder of a conversation compacts
//! its batches with the same [`Compactor`](crate::segments::Compactor) as
//! a lone instance, and what the lone instance logs in its write-ahead
//! log before a compaction writes anything goes to Redis instead, under
//! the lease: the intent is recorded only while the caller holds the
//! lease with its fencing token (the lease is renewed at that moment),
//! and a new holder first repairs what an intent left unfinished (the
//! holder was killed or paused between writing a segment and deleting
//! what it replaced): it deletes what was replaced if the index write was
//! stored, else the unnamed segment, after fencing the index so the old
//! holder's late index write is refused; no message stays in two objects
//! and none is lost.
//!
//! Key: `chats3:compacting:{id}` (JSON `{segments, replaced}`), deleted
//! once what the compaction replaced is deleted.

use super::storing::lease_key;
use super::{RedisLink, key, millis};
use crate::domain::ConversationId;
use crate::error::ChatError;
use crate::segments::{CompactionIntent, repair_interrupted};
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;
use std::time::Duration;

static INTEND: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[2])
return 1
",
    )
});

static DONE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
return 1
",
    )
});

/// What a compaction is about to write and replace.
#[derive(Debug, Serialize, Deserialize)]
struct Intent {
    segments: Vec<String>,
    replaced: Vec<String>,
}

fn intent_key(id: &ConversationId) -> String {
    key("compacting", id.as_str())
}

/// The compaction intent of a lease holder (`"{instance}:{token}"`).
pub(crate) struct LeasedIntent<'a> {
    pub link: &'a RedisLink,
    pub id: &'a ConversationId,
    pub holder: &'a str,
    /// How long the lease lasts from the intent on.
    pub lease_ttl: Duration,
}

#[async_trait::async_trait]
impl CompactionIntent for LeasedIntent<'_> {
    async fn intend(&self, segments: &[String], replaced: &[String]) -> Result<(), StoreError> {
        let intent = Intent {
            segments: segments.to_vec(),
            replaced: replaced.to_vec(),
        };
        let json = serde_json::to_string(&intent).unwrap_or_default();
        let mut invocation = INTEND.prepare_invoke();
        invocation
            .key(lease_key(self.id))
            .key(intent_key(self.id))
            .arg(self.holder)
            .arg(json)
            .arg(millis(self.lease_ttl));
        let recorded: i64 =
            self.link.invoke(&invocation).await.map_err(|e| {
                StoreError::Unusable(format!("compaction intent not recorded: {e}"))
            })?;
        if recorded == 1 {
            Ok(())
        } else {
            Err(StoreError::Unusable(
                "the storing lease went to another instance; not compacting".into(),
            ))
        }
    }
}

impl LeasedIntent<'_> {
    /// The compaction finished and deleted what it replaced: its intent
    /// is no longer needed.
    pub(crate) async fn done(&self) -> Result<(), ChatError> {
        let mut invocation = DONE.prepare_invoke();
        invocation
            .key(lease_key(self.id))
            .key(intent_key(self.id))
            .arg(self.holder);
        self.link.invoke::<i64>(&invocation).await.map(drop)
    }

    /// Before a new holder stores anything: deletes what a compaction
    /// that an earlier holder left unfinished replaced (see
    /// [`repair_interrupted`]), then forgets its intent.
    pub(crate) async fn repair(&self, store: &dyn Store) -> Result<(), ChatError> {
        let recorded: Option<String> = self
            .link
            .call(redis::cmd("GET").arg(intent_key(self.id)))
            .await?;
        let Some(intent) = recorded.and_then(|json| serde_json::from_str::<Intent>(&json).ok())
        else {
            return Ok(());
        };
        let deleted = repair_interrupted(store, self.id, &intent.segments, &intent.replaced)
            .await
            .map_err(ChatError::Storage)?;
        if deleted > 0 {
            tracing::info!(conversation = %self.id, deleted, "deleted the copies an interrupted compaction left");
        }
        self.done().await
    }
}
