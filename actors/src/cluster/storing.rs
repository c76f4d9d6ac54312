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
//!
//! The documents and the history index a holder keeps are written with
//! conditional writes. One that finds another version than the holder
//! read ([`StoreError::Changed`]: another instance wrote it, e.g. the
//! next holder while this one was paused past its lease) makes the
//! holder drop everything it keeps for the conversation, the step under
//! way included: the mark has not moved past that step, so the next
//! round reads the documents and the stream again and writes nothing
//! over the newer writer's work.

use super::compaction::LeasedIntent;
use super::documents::{DocumentChange, HeldDocuments};
use super::stream::{DIRTY_KEY, seq_key, stream_key};
use super::{RedisLink, key, millis};
use crate::conversation::{ForStorage, for_storage};
use crate::domain::{ConversationId, SequencedMessage};
use crate::error::{ChatError, Report};
use crate::ndjson::encode_lines;
use crate::segments::Compactor;
use crate::settings::Settings;
use crate::store::{SharedStore, StoreError, keys};
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

pub(crate) fn lease_key(id: &ConversationId) -> String {
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

/// A lease this instance holds, and what it keeps for the conversation
/// while it does.
struct Held {
    token: u64,
    /// The step under way: read from the stream, not yet marked stored.
    step: Option<Step>,
    documents: HeldDocuments,
    compactor: Box<Compactor>,
    /// When this instance last moved the stored mark, for compacting a
    /// conversation that has gone quiet.
    last_stored_ms: i64,
}

impl Held {
    fn new(token: u64) -> Self {
        Held {
            token,
            step: None,
            documents: HeldDocuments::default(),
            compactor: Box::default(),
            last_stored_ms: crate::time::now_ms(),
        }
    }

    /// Another instance wrote a document or the index since this one read
    /// it: drops what is kept (the step under way too; the stored mark
    /// has not moved past it) and keeps only the lease's token.
    fn forget(&mut self, id: &ConversationId) {
        tracing::info!(conversation = %id, "another instance wrote this conversation's documents; reading them again");
        *self = Held::new(self.token);
    }
}

/// One storing step: entries above the stored mark, up to `through`.
struct Step {
    /// Their messages, one batch.
    batch: Vec<SequencedMessage>,
    /// Their changes of the documents, in order.
    changes: Vec<DocumentChange>,
    /// The last entry the step covers.
    through: u64,
    /// The batch is in storage (a retry of the step writes only what is left).
    batch_written: bool,
}

/// The lease as the lease script answered.
struct Lease {
    token: u64,
    /// The stored mark.
    stored: u64,
    /// Taken now rather than renewed.
    fresh: bool,
}

/// What a storing task works with.
struct Storing {
    link: RedisLink,
    store: SharedStore,
    settings: Arc<Settings>,
    held: HashMap<ConversationId, Held>,
}

/// Stores every conversation whose lease this instance gets until `stop`
/// is cancelled; then stores one last round, compacts what it wrote and
/// gives its leases up, so other instances take over at once.
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

impl Storing {
    /// Compacts what this instance wrote and still holds the lease for,
    /// then gives up every lease.
    async fn release_leases(&mut self) {
        for (id, mut held) in std::mem::take(&mut self.held) {
            let holder = self.holder(held.token);
            if held.compactor.has_loose() {
                self.compact(&id, &holder, &mut held).await;
            }
            let mut invocation = RELEASE.prepare_invoke();
            invocation.key(lease_key(&id)).arg(&holder);
            let _ = self.link.invoke::<i64>(&invocation).await;
        }
    }

    /// The lease's holder name for `token`.
    fn holder(&self, token: u64) -> String {
        format!("{}:{token}", self.link.instance_id())
    }

    /// One pass over the conversations with something to store, then over
    /// the held ones that have gone quiet.
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
        let mut visited = Vec::with_capacity(dirty.len());
        for name in dirty {
            let Some(id) = ConversationId::parse(&name) else {
                continue;
            };
            if let Err(e) = self.store_conversation(&id).await {
                tracing::debug!(conversation = %id, error = %Report(&e), "storing from the conversation's stream failed; retrying");
                failed = Some(e);
            }
            visited.push(id);
        }
        self.settle_quiet(&visited).await;
        failed.map_or(Ok(()), Err)
    }

    /// Takes or renews the conversation's lease (`held`: the token this
    /// instance holds it with); `None` while another instance holds it.
    async fn lease(
        &self,
        id: &ConversationId,
        held: Option<u64>,
    ) -> Result<Option<Lease>, ChatError> {
        let mut invocation = TAKE_LEASE.prepare_invoke();
        invocation
            .key(lease_key(id))
            .key(key("fence", id.as_str()))
            .key(stored_key(id))
            .arg(self.link.instance_id())
            .arg(held.map(|t| t.to_string()).unwrap_or_default())
            .arg(millis(LEASE_TTL));
        let answer: Vec<String> = self.link.invoke(&invocation).await?;
        let invalid = || ChatError::Invalid(format!("the lease script answered {answer:?}"));
        if answer.first().map(String::as_str) != Some("ok") {
            return Ok(None);
        }
        let number = |i: usize| answer.get(i).and_then(|s| s.parse::<u64>().ok());
        Ok(Some(Lease {
            token: number(1).ok_or_else(invalid)?,
            stored: number(2).ok_or_else(invalid)?,
            fresh: answer.get(3).map(String::as_str) == Some("1"),
        }))
    }

    /// Takes or renews the conversation's lease and stores up to a few
    /// steps of what its stream holds above the stored mark.
    async fn store_conversation(&mut self, id: &ConversationId) -> Result<(), ChatError> {
        let held_token = self.held.get(id).map(|h| h.token);
        let Some(lease) = self.lease(id, held_token).await? else {
            self.held.remove(id);
            return Ok(());
        };
        let mut held = match self.held.remove(id) {
            Some(held) if !lease.fresh => held,
            // Nobody held the lease since this instance did: what it kept
            // (documents, what compaction knows) is still current.
            Some(held) if held.token + 1 == lease.token => Held {
                token: lease.token,
                ..held
            },
            _ => {
                self.take_over(id, lease.token, lease.stored).await?;
                Held::new(lease.token)
            }
        };
        let holder = self.holder(lease.token);
        let result = self.store_steps(id, &holder, &mut held, lease.stored).await;
        if matches!(result, Err(ChatError::Storage(StoreError::Changed))) {
            held.forget(id);
        }
        if !matches!(result, Ok(false)) {
            self.held.insert(id.clone(), held);
        }
        result.map(drop)
    }

    /// What a new holder does first: repairs a compaction an earlier
    /// holder left unfinished, and deletes the batches it wrote above the
    /// stored mark without marking them (they are written again).
    async fn take_over(
        &self,
        id: &ConversationId,
        token: u64,
        stored: u64,
    ) -> Result<(), ChatError> {
        let holder = self.holder(token);
        let intent = self.intent(id, &holder);
        intent.repair(self.store.as_ref()).await?;
        let next = self.link.range_of(id, stored, None, 1).await?;
        if let Some((first, _, _)) = next.first() {
            self.delete_unmarked(id, *first).await?;
        }
        Ok(())
    }

    fn intent<'a>(&'a self, id: &'a ConversationId, holder: &'a str) -> LeasedIntent<'a> {
        LeasedIntent {
            link: &self.link,
            id,
            holder,
            lease_ttl: LEASE_TTL,
        }
    }

    /// Stores steps until the stream holds nothing more above the mark or
    /// the round's share is done: each step's batch, then the documents
    /// its entries change, then the mark moves past it; compacts when
    /// enough batches were written. False when the lease was lost.
    async fn store_steps(
        &self,
        id: &ConversationId,
        holder: &str,
        held: &mut Held,
        mut stored: u64,
    ) -> Result<bool, ChatError> {
        for _ in 0..BATCHES_PER_ROUND {
            let mut step = match held.step.take() {
                Some(step) => step,
                None => match self.next_step(id, stored).await? {
                    Some(step) => step,
                    None => return Ok(true),
                },
            };
            if let Err(e) = self.store_step(id, held, &mut step).await {
                held.step = Some(step);
                return Err(e);
            }
            if !self.mark_stored(id, holder, step.through).await? {
                return Ok(false);
            }
            stored = step.through;
            held.last_stored_ms = crate::time::now_ms();
            if held.compactor.due() {
                self.compact(id, holder, held).await;
            }
        }
        Ok(true)
    }

    /// Writes a step's batch (unless written already) and the documents
    /// its changes touch.
    async fn store_step(
        &self,
        id: &ConversationId,
        held: &mut Held,
        step: &mut Step,
    ) -> Result<(), ChatError> {
        if !step.batch_written
            && let (Some(first), Some(last)) = (step.batch.first(), step.batch.last())
        {
            let key = keys::batch_for_range(id, first.seq, last.seq);
            let body = encode_lines(&step.batch);
            self.store
                .put(&key, body.clone(), "application/x-ndjson")
                .await
                .map_err(ChatError::Storage)?;
            held.compactor.note_batch(&key, &body, &step.batch);
        }
        step.batch_written = true;
        let store = self.store.as_ref();
        held.documents
            .apply(store, id, &step.changes)
            .await
            .map_err(ChatError::Storage)?;
        step.changes.clear();
        held.documents
            .save(store, id)
            .await
            .map_err(ChatError::Storage)
    }

    /// Compacts the conversation's batches under the lease `holder`; a
    /// failure (the lease lost, storage failing) leaves every message
    /// readable and the batches loose for the next compaction.
    async fn compact(&self, id: &ConversationId, holder: &str, held: &mut Held) {
        let intent = self.intent(id, holder);
        let compacted = held
            .compactor
            .compact(self.store.as_ref(), id, Some(&intent))
            .await;
        match compacted {
            Ok(()) if held.compactor.settled() => {
                if let Err(e) = intent.done().await {
                    tracing::debug!(conversation = %id, error = %Report(&e), "forgetting a finished compaction's intent failed; the next holder checks it");
                }
            }
            Ok(()) => {}
            Err(StoreError::Changed) => held.forget(id),
            Err(e) => {
                tracing::warn!(conversation = %id, error = %Report(&e), "compaction failed; batches stay loose until the next one");
            }
        }
    }

    /// The held conversations not stored for `idle_timeout` (none of
    /// `visited`): compacts what this instance wrote of each, as a lone
    /// instance does when a conversation unloads, and forgets them.
    async fn settle_quiet(&mut self, visited: &[ConversationId]) {
        let quiet_ms = i64::try_from(self.settings.idle_timeout.as_millis()).unwrap_or(i64::MAX);
        let now = crate::time::now_ms();
        let quiet: Vec<ConversationId> = self
            .held
            .iter()
            .filter(|(id, held)| now - held.last_stored_ms >= quiet_ms && !visited.contains(id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in quiet {
            let Some(mut held) = self.held.remove(&id) else {
                continue;
            };
            if !held.compactor.has_loose() {
                continue;
            }
            match self.lease(&id, Some(held.token)).await {
                Ok(Some(lease)) if !lease.fresh || lease.token == held.token + 1 => {
                    let holder = self.holder(lease.token);
                    self.compact(&id, &holder, &mut held).await;
                    let mut invocation = RELEASE.prepare_invoke();
                    invocation.key(lease_key(&id)).arg(&holder);
                    let _ = self.link.invoke::<i64>(&invocation).await;
                }
                _ => {}
            }
        }
    }

    /// The next step: the entries above `stored` (at most a batch's worth);
    /// `None` when the stream holds nothing above `stored`.
    async fn next_step(&self, id: &ConversationId, stored: u64) -> Result<Option<Step>, ChatError> {
        let count = self.settings.flush_max_batch.max(1);
        let entries = self.link.range_of(id, stored, None, count).await?;
        let Some(through) = entries.last().map(|(seq, _, _)| *seq) else {
            return Ok(None);
        };
        let mut step = Step {
            batch: Vec::new(),
            changes: Vec::new(),
            through,
            batch_written: false,
        };
        for (seq, _, json) in &entries {
            match for_storage(*seq, json) {
                Some(ForStorage::Message(message)) => step.batch.push(*message),
                Some(ForStorage::Document(change)) => step.changes.push(change),
                None => {}
            }
        }
        Ok(Some(step))
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
