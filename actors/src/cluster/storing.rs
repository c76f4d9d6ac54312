//! Storage exactly once in a cluster. Every instance runs one storing
//! task; for each conversation whose stream holds entries above what
//! storage holds (`chats3:dirty`), the task that holds the conversation's
//! lease stores the messages among those entries, in order, one batch at a
//! time. The lease (`chats3:lease:{id}` = `"{instance}:{token}"`, expiring)
//! carries a fencing token from `chats3:fence:{id}`; the stored mark
//! (`chats3:stored:{id}`, the last sequence storage holds) only moves under
//! the lease's current token, and the stream is trimmed only below it.
//!
//! A batch's key carries its sequence range ([`keys::batch_for_range`]):
//! a holder retries the same batch under the same key until storage takes
//! it, and a new holder first deletes the batches above the mark that an
//! earlier holder wrote but did not mark (it was killed in between), then
//! writes them again from the stream. So an instance killed with `kill -9`
//! loses nothing (the entries stay in Redis) and nothing is stored twice.
//!
//! The holder publishes each new mark on `chats3:stored:{id}`, so every
//! instance's loaded conversation knows what storage holds (its tail keeps
//! what does not).

use super::stream::{DIRTY_KEY, seq_key, stream_key};
use super::{RedisLink, key, millis};
use crate::conversation::stored_message;
use crate::domain::{ConversationId, SequencedMessage};
use crate::error::{ChatError, Report};
use crate::ndjson::encode_lines;
use crate::settings::Settings;
use crate::store::{SharedStore, keys};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Every stored-mark channel matches this pattern.
pub(crate) const STORED_PATTERN: &str = "chats3:stored:*";

/// How long a lease lasts without renewal: a killed holder's conversations
/// wait this long for the next holder.
const LEASE_TTL: Duration = Duration::from_secs(3);

/// Conversations one round looks at, oldest unstored first.
const ROUND_SIZE: usize = 200;

/// Batches one conversation stores per round, so one busy conversation
/// does not hold up the others.
const BATCHES_PER_ROUND: usize = 8;

/// The pause between rounds while Redis or storage fails.
const FAILING_PAUSE: Duration = Duration::from_millis(500);

static TAKE_LEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local current = redis.call('GET', KEYS[1])
local fresh = '0'
local token = ARGV[2]
if current and token ~= '' and current == ARGV[1] .. ':' .. token then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
elseif current then
  return {'held'}
else
  token = tostring(redis.call('INCR', KEYS[2]))
  redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[3])
  fresh = '1'
end
return {'ok', token, redis.call('GET', KEYS[3]) or '0', fresh}
",
    )
});

static MARK_STORED: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local stored = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), tonumber(ARGV[2]))
local s = string.format('%d', stored)
redis.call('SET', KEYS[2], s)
local trim = math.min(stored + 1, tonumber(ARGV[3]))
redis.call('XTRIM', KEYS[3], 'MINID', string.format('%d', trim) .. '-0')
if stored >= tonumber(redis.call('GET', KEYS[4]) or '0') then
  redis.call('ZREM', KEYS[5], ARGV[4])
end
redis.call('PUBLISH', ARGV[5], s)
return 1
",
    )
});

static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
",
    )
});

fn lease_key(id: &ConversationId) -> String {
    key("lease", id.as_str())
}

fn stored_key(id: &ConversationId) -> String {
    key("stored", id.as_str())
}

/// The channel a conversation's stored mark goes out on.
fn stored_channel(id: &ConversationId) -> String {
    key("stored", id.as_str())
}

/// The conversation a stored-mark channel belongs to.
pub(crate) fn stored_conversation(channel: &str) -> Option<ConversationId> {
    let name = channel.strip_prefix(&STORED_PATTERN[..STORED_PATTERN.len() - 1])?;
    ConversationId::parse(name)
}

/// A lease this instance holds, and the batch it has not stored yet.
struct Held {
    token: String,
    /// A batch whose write failed: written again, under the same key,
    /// before anything else.
    unstored: Option<Vec<SequencedMessage>>,
    /// The stream's last entry the batch covers.
    unstored_through: u64,
}

/// What a storing task works with.
struct Storing {
    link: RedisLink,
    store: SharedStore,
    settings: Arc<Settings>,
    held: HashMap<ConversationId, Held>,
}

/// Stores every conversation whose lease this instance gets until `stop`
/// is cancelled; then stores one last round and gives its leases up, so
/// other instances take over at once.
pub(crate) fn run(
    link: RedisLink,
    store: SharedStore,
    settings: Arc<Settings>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut storing = Storing {
            link,
            store,
            settings,
            held: HashMap::new(),
        };
        loop {
            let pause = match storing.round().await {
                Ok(()) => storing.settings.flush_interval,
                Err(_) => FAILING_PAUSE,
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stop.cancelled() => break,
            }
        }
        if let Err(e) = storing.round().await {
            tracing::warn!(error = %Report(&e), "the last storing round failed; other instances store what is left");
        }
        storing.release_leases().await;
    })
}

/// The stored mark of a conversation (0: nothing stored through a cluster).
pub(crate) async fn stored_mark(link: &RedisLink, id: &ConversationId) -> Result<u64, ChatError> {
    let mark: Option<u64> = link.call(redis::cmd("GET").arg(stored_key(id))).await?;
    Ok(mark.unwrap_or(0))
}

impl Storing {
    /// Gives up every lease this instance holds.
    async fn release_leases(&mut self) {
        for (id, held) in std::mem::take(&mut self.held) {
            let mut invocation = RELEASE.prepare_invoke();
            invocation.key(lease_key(&id)).arg(format!(
                "{}:{}",
                self.link.instance_id(),
                held.token
            ));
            let _ = self.link.invoke::<i64>(&invocation).await;
        }
    }

    /// One pass over the conversations with something to store.
    async fn round(&mut self) -> Result<(), ChatError> {
        let dirty: Vec<String> = self
            .link
            .call(
                redis::cmd("ZRANGE")
                    .arg(DIRTY_KEY)
                    .arg(0)
                    .arg(ROUND_SIZE - 1),
            )
            .await?;
        let mut failed = None;
        for name in dirty {
            let Some(id) = ConversationId::parse(&name) else {
                continue;
            };
            if let Err(e) = self.store_conversation(&id).await {
                tracing::debug!(conversation = %id, error = %Report(&e), "storing from the conversation's stream failed; retrying");
                failed = Some(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Takes or renews the conversation's lease and stores up to a few
    /// batches of what its stream holds above the stored mark.
    async fn store_conversation(&mut self, id: &ConversationId) -> Result<(), ChatError> {
        let held_token = self.held.get(id).map(|h| h.token.clone());
        let mut invocation = TAKE_LEASE.prepare_invoke();
        invocation
            .key(lease_key(id))
            .key(key("fence", id.as_str()))
            .key(stored_key(id))
            .arg(self.link.instance_id())
            .arg(held_token.as_deref().unwrap_or(""))
            .arg(millis(LEASE_TTL));
        let answer: Vec<String> = self.link.invoke(&invocation).await?;
        let invalid = || ChatError::Invalid(format!("the lease script answered {answer:?}"));
        if answer.first().map(String::as_str) != Some("ok") {
            self.held.remove(id);
            return Ok(());
        }
        let token = answer.get(1).ok_or_else(invalid)?.clone();
        let mut stored: u64 = answer
            .get(2)
            .and_then(|s| s.parse().ok())
            .ok_or_else(invalid)?;
        if answer.get(3).map(String::as_str) == Some("1") {
            self.held.insert(
                id.clone(),
                Held {
                    token: token.clone(),
                    unstored: None,
                    unstored_through: 0,
                },
            );
            let next = self.link.range_of(id, stored, None, 1).await?;
            if let Some((first, _, _)) = next.first() {
                self.delete_unmarked(id, *first).await?;
            }
        }
        let holder = format!("{}:{token}", self.link.instance_id());
        for _ in 0..BATCHES_PER_ROUND {
            let Some((batch, through)) = self.next_batch(id, stored).await? else {
                return Ok(());
            };
            if let Some(first) = batch.first() {
                let last = batch.last().map_or(first.seq, |m| m.seq);
                let key = keys::batch_for_range(id, first.seq, last);
                let written = self
                    .store
                    .put(&key, encode_lines(&batch), "application/x-ndjson")
                    .await;
                if let Err(e) = written {
                    if let Some(held) = self.held.get_mut(id) {
                        held.unstored = Some(batch);
                        held.unstored_through = through;
                    }
                    return Err(ChatError::Storage(e));
                }
            }
            if let Some(held) = self.held.get_mut(id) {
                held.unstored = None;
            }
            if !self.mark_stored(id, &holder, through).await? {
                self.held.remove(id);
                return Ok(());
            }
            stored = through;
        }
        Ok(())
    }

    /// The batch to store next (the one that failed, or the messages among
    /// the entries above `stored`) and the last entry it covers; `None`
    /// when the stream holds nothing above `stored`.
    async fn next_batch(
        &mut self,
        id: &ConversationId,
        stored: u64,
    ) -> Result<Option<(Vec<SequencedMessage>, u64)>, ChatError> {
        if let Some(held) = self.held.get_mut(id)
            && let Some(batch) = held.unstored.take()
        {
            return Ok(Some((batch, held.unstored_through)));
        }
        let count = self.settings.flush_max_batch.max(1);
        let entries = self.link.range_of(id, stored, None, count).await?;
        let Some(through) = entries.last().map(|(seq, _, _)| *seq) else {
            return Ok(None);
        };
        let batch = entries
            .iter()
            .filter_map(|(seq, _, json)| stored_message(*seq, json))
            .collect();
        Ok(Some((batch, through)))
    }

    /// Deletes the batches from `first` (the stream's first entry above
    /// the stored mark) on, which an earlier holder wrote and did not mark:
    /// they are written again from the stream. Batches below it stay,
    /// whatever the mark says (a Redis that lost its data starts the mark
    /// at 0 again).
    async fn delete_unmarked(&self, id: &ConversationId, first: u64) -> Result<(), ChatError> {
        let from_ms = i64::try_from(first / 1000).unwrap_or(i64::MAX);
        let after = keys::batches_from(id, from_ms);
        let found = self
            .store
            .list_after(&keys::messages_prefix(id), Some(&after))
            .await
            .map_err(ChatError::Storage)?;
        let unmarked: Vec<String> = found
            .into_iter()
            .filter(|k| keys::batch_range(k).is_some_and(|(from, _)| from >= first))
            .collect();
        if !unmarked.is_empty() {
            tracing::info!(conversation = %id, batches = unmarked.len(), "deleting batches an earlier lease holder did not mark stored");
            self.store
                .delete(&unmarked)
                .await
                .map_err(ChatError::Storage)?;
        }
        Ok(())
    }

    /// Moves the stored mark to `through` under the lease `holder`; false
    /// when the lease went to another instance meanwhile.
    async fn mark_stored(
        &self,
        id: &ConversationId,
        holder: &str,
        through: u64,
    ) -> Result<bool, ChatError> {
        let keep_from_ms = crate::time::now_ms()
            - i64::try_from(self.settings.signaling_buffer_ttl.as_millis()).unwrap_or(i64::MAX);
        let trim_below = u64::try_from(keep_from_ms).unwrap_or(0) * 1000;
        let mut invocation = MARK_STORED.prepare_invoke();
        invocation
            .key(lease_key(id))
            .key(stored_key(id))
            .key(stream_key(id))
            .key(seq_key(id))
            .key(DIRTY_KEY)
            .arg(holder)
            .arg(through)
            .arg(trim_below)
            .arg(id.as_str())
            .arg(stored_channel(id));
        let marked: i64 = self.link.invoke(&invocation).await?;
        Ok(marked == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_channels_name_their_conversation() {
        let id = ConversationId::parse("room-1").unwrap();
        assert_eq!(stored_conversation(&stored_channel(&id)), Some(id));
        assert_eq!(stored_conversation("chats3:notice:room-1"), None);
    }
}
