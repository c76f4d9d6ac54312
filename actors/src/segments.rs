//! Compaction of message batches into segments, and the history index that
//! lets a cold reader find the newest messages in a few requests whatever
//! the conversation's length.
//!
//! Batches land under `messages/` as Chats3 lays them out, one per flush.
//! Every [`COMPACT_AFTER_BATCHES`] batches (or [`COMPACT_AFTER_MESSAGES`]
//! messages) and when the flusher stops, the batches written since the last
//! compaction are merged into a segment: one NDJSON object under the same
//! layout, named after its first message, so Chats3 reads it like any batch.
//! The newest segment keeps absorbing batches until it holds
//! [`SEGMENT_MAX_MESSAGES`] messages.
//!
//! `history.json` lists the segments in order with their sequence ranges,
//! and `coveredThrough`, the last batch key they absorbed. A reader GETs the
//! index, lists only the keys after `coveredThrough` (the loose batches;
//! keys sort in history order, see [`keys::batch_for_seq`], and a segment
//! whose key sorts after it is still not loose) and GETs the objects a page
//! needs; it never lists the whole conversation.
//! Replaced objects are deleted after the index is written, so a crash
//! between the two leaves copies that readers skip (pages dedupe by `seq`).
//! Readers that know no index (Chats3) would see those copies twice, so a
//! compaction first tells its [`CompactionIntent`] (the write-ahead log)
//! what it is about to write and replace, and the next start finishes or
//! undoes what a crash left ([`repair_interrupted`]): the replaced copies
//! go when the index was written, the new segment when it was not.
//! Without an index (a Chats3 bucket) the reader lists every batch key.
//!
//! The index is written with a conditional write ([`Store::put_if`]) that
//! replaces only the version the compactor read, so a compactor that fell
//! behind another writer of the index (a cluster instance whose lease
//! passed on while it was paused) replaces nothing: it deletes the
//! segments it had just written (no index names them), forgets its copy
//! of the index and reads it again next time. Segments themselves need
//! no condition: each is written under a key of its own (a random UUID,
//! see [`keys::batch_for_seq`]), so no writer ever replaces another's
//! segment, and a segment no index names is only ever a copy.
//!
//! Each segment written gets its id filter (see [`crate::id_filter`])
//! beside it, once the index names the segment and what it replaced is
//! deleted (a reader before then builds it); a filter is deleted with its
//! segment. A segment that absorbs batches takes its
//! predecessor's filter and adds their ids.

use crate::domain::{ConversationId, SequencedMessage};
use crate::error::Report;
use crate::id_filter::IdFilter;
use crate::ndjson::{encode_lines, parse_batch};
use crate::store::{Store, StoreError, Version, keys};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Messages past which a segment takes no more batches.
pub(crate) const SEGMENT_MAX_MESSAGES: usize = 2000;
/// Bytes past which a segment takes no more batches.
pub(crate) const SEGMENT_MAX_BYTES: usize = 4 << 20;
/// Loose batches written that start a compaction.
pub(crate) const COMPACT_AFTER_BATCHES: usize = 16;
/// Loose messages written that start a compaction.
pub(crate) const COMPACT_AFTER_MESSAGES: usize = 1000;
/// Loose objects merged in one compaction, so a round stays bounded even
/// on a Chats3 bucket with thousands of one-message files.
const MAX_LOOSE_PER_ROUND: usize = 256;
/// Batch bodies kept in memory for the next compaction, in bytes.
const RECENT_BYTES: usize = 4 << 20;
/// Replaced keys remembered for deletion when a delete fails.
const MAX_GARBAGE: usize = 10_000;

/// `history.json`: the compacted segments in history order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HistoryIndex {
    pub version: u32,
    /// The last loose batch key merged into a segment; keys after it are
    /// loose batches.
    pub covered_through: Option<String>,
    pub segments: Vec<Segment>,
    /// Set anew by each [`repair_interrupted`] that undoes an unfinished
    /// compaction, so the index's version changes even when nothing else
    /// in it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<String>,
}

/// One compacted segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Segment {
    pub key: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub count: usize,
    pub bytes: usize,
}

impl HistoryIndex {
    /// The stored index, or `None` when there is none or it is unreadable
    /// (readers then list every key, which is always correct).
    pub(crate) async fn load(
        store: &dyn Store,
        id: &ConversationId,
    ) -> Result<Option<HistoryIndex>, StoreError> {
        let body = store.get(&keys::history_index(id)).await?;
        Ok(body.and_then(|body| Self::parse(id, &body)))
    }

    /// The stored index as [`HistoryIndex::load`] answers it, and the
    /// version of `history.json` read (an unreadable index has one too, so
    /// a compactor can replace it).
    pub(crate) async fn load_versioned(
        store: &dyn Store,
        id: &ConversationId,
    ) -> Result<(Option<HistoryIndex>, Version), StoreError> {
        let (body, version) = store.get_versioned(&keys::history_index(id)).await?;
        Ok((body.and_then(|body| Self::parse(id, &body)), version))
    }

    fn parse(id: &ConversationId, body: &[u8]) -> Option<HistoryIndex> {
        match serde_json::from_slice(body) {
            Ok(index) => Some(index),
            Err(e) => {
                tracing::warn!(conversation = %id, error = %Report(&e), "history.json unreadable; listing every batch");
                None
            }
        }
    }

    /// Whether the index lists every one of `segment_keys` (and there is one).
    fn lists(&self, segment_keys: &[String]) -> bool {
        !segment_keys.is_empty()
            && segment_keys
                .iter()
                .all(|k| self.segments.iter().any(|s| s.key == *k))
    }
}

/// The message objects a reader considers, sorted by the lowest `seq` each
/// can hold (then by key): the indexed segments and the loose batches after
/// them, or every batch key when there is no index.
pub(crate) async fn history_objects(
    store: &dyn Store,
    id: &ConversationId,
) -> Result<Vec<(u64, String)>, StoreError> {
    Ok(listed_objects(store, id)
        .await?
        .into_iter()
        .map(|o| (o.base, o.key))
        .collect())
}

/// One object of a conversation's history.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Listed {
    /// The lowest `seq` it can hold.
    pub base: u64,
    pub key: String,
    /// Whether the index names it (a segment, with a stored id filter).
    pub segment: bool,
}

/// [`history_objects`], telling segments from loose batches.
pub(crate) async fn listed_objects(
    store: &dyn Store,
    id: &ConversationId,
) -> Result<Vec<Listed>, StoreError> {
    let index = HistoryIndex::load(store, id).await?;
    let prefix = keys::messages_prefix(id);
    let covered = index.as_ref().and_then(|i| i.covered_through.as_deref());
    let loose = if index.is_some() {
        store.list_after(&prefix, covered).await?
    } else {
        store.list(&prefix).await?
    };
    let segments = index.map(|i| i.segments).unwrap_or_default();
    let mut objects: Vec<Listed> = loose
        .into_iter()
        .filter(|k| !segments.iter().any(|s| s.key == *k))
        .filter_map(|key| {
            keys::batch_epoch_ms(&key)
                .and_then(|ms| u64::try_from(ms).ok())
                .map(|ms| Listed {
                    base: ms.saturating_mul(1000),
                    key,
                    segment: false,
                })
        })
        .collect();
    objects.extend(segments.into_iter().map(|s| Listed {
        base: s.first_seq,
        key: s.key,
        segment: true,
    }));
    objects.sort();
    objects.dedup_by(|a, b| a.key == b.key && a.base == b.base);
    Ok(objects)
}

/// Told what a compaction is about to write and replace, before it
/// writes anything; a compaction it refuses does not run.
#[async_trait::async_trait]
pub(crate) trait CompactionIntent: Send + Sync {
    /// `segments` are about to be written; then `replaced` is deleted.
    async fn intend(&self, segments: &[String], replaced: &[String]) -> Result<(), StoreError>;
}

/// Index writes a repair tries before it gives up for now (each refused
/// one means another writer changed the index meanwhile).
const REPAIR_ATTEMPTS: usize = 3;

/// After a compaction that meant to write `segments` and replace
/// `replaced` stopped before it finished (a crash, or a cluster holder
/// that lost its lease while paused): leaves each of its messages in the
/// objects a reader of the stored index reads, and deletes the copies no
/// such reader reads. An object counts when the index names it, or when
/// it is a replaced batch the index does not cover (there is no index, or
/// it sorts after `coveredThrough`); a segment the index does not name
/// never counts. An object that does not count and whose every message a
/// counted one holds is deleted: what the compaction replaced when its
/// index write was stored, its segments when it was not (an object left
/// before its segment was written still holds the only copy and stays).
/// Before deleting a segment the index does not name, the index is
/// written again with a new [`HistoryIndex::fence`], so a late index
/// write of that compaction (from a writer still paused in it) is refused
/// instead of naming a deleted segment. Answers how many objects it
/// deleted.
pub(crate) async fn repair_interrupted(
    store: &dyn Store,
    id: &ConversationId,
    segments: &[String],
    replaced: &[String],
) -> Result<usize, StoreError> {
    for _ in 0..REPAIR_ATTEMPTS {
        let (index, version) = HistoryIndex::load_versioned(store, id).await?;
        let counts = |key: &str, segment: bool| match &index {
            None => !segment,
            Some(index) => {
                index.segments.iter().any(|s| s.key == key)
                    || (!segment
                        && index
                            .covered_through
                            .as_deref()
                            .is_none_or(|covered| key > covered))
            }
        };
        let objects = segments.iter().map(|key| (key, true)).chain(
            replaced
                .iter()
                .filter(|key| !segments.contains(key))
                .map(|key| (key, false)),
        );
        let mut held = std::collections::HashSet::new();
        let mut uncounted = Vec::new();
        for (key, segment) in objects {
            let Some(body) = store.get(key).await? else {
                continue;
            };
            let ms = keys::batch_epoch_ms(key).unwrap_or(0);
            let seqs: Vec<u64> = parse_batch(ms, key, &body)
                .into_iter()
                .map(|m| m.seq)
                .collect();
            if counts(key, segment) {
                held.extend(seqs);
            } else {
                uncounted.push((key.clone(), segment, seqs));
            }
        }
        let redundant: Vec<(String, bool)> = uncounted
            .into_iter()
            .filter(|(_, _, seqs)| !seqs.is_empty() && seqs.iter().all(|seq| held.contains(seq)))
            .map(|(key, segment, _)| (key, segment))
            .collect();
        if redundant.is_empty() {
            return Ok(0);
        }
        if redundant.iter().any(|(_, segment)| *segment) {
            match fence_index(store, id, index.unwrap_or_default(), &version).await {
                Ok(()) => {}
                Err(StoreError::Changed) => continue,
                Err(e) => return Err(e),
            }
        }
        let redundant: Vec<String> = redundant.into_iter().map(|(key, _)| key).collect();
        store.delete(&with_filters(&redundant)).await?;
        return Ok(redundant.len());
    }
    Err(StoreError::Changed)
}

/// Writes `index` again in place of `version` with a new fence, so a
/// conditional write of anyone who read `version` is refused.
async fn fence_index(
    store: &dyn Store,
    id: &ConversationId,
    mut index: HistoryIndex,
    version: &Version,
) -> Result<(), StoreError> {
    index.version = 1;
    index.fence = Some(uuid::Uuid::new_v4().to_string());
    let body = serde_json::to_vec(&index)
        .map_err(|e| StoreError::Unusable(format!("history index not serializable: {e}")))?;
    store
        .put_if(
            &keys::history_index(id),
            Bytes::from(body),
            "application/json",
            version,
        )
        .await
        .map(drop)
}

/// A batch this flusher wrote, kept so compaction need not read or parse it.
#[derive(Debug)]
struct Written {
    key: String,
    body: Bytes,
    first_seq: u64,
    last_seq: u64,
    count: usize,
    /// Its message ids, for the filter of the segment it goes into.
    ids: Vec<String>,
}

/// A compaction whose index write failed without saying whether it was
/// stored (a timeout): its segments, and what it meant to replace once an
/// index lists them.
#[derive(Debug)]
struct Unsettled {
    segments: Vec<String>,
    replaced: Vec<String>,
}

/// The flusher's compaction state: what it wrote since the last compaction
/// and the index, loaded on first use, with the version of it read or
/// written last.
#[derive(Debug, Default)]
pub(crate) struct Compactor {
    index: Option<(HistoryIndex, Version)>,
    written_batches: usize,
    written_messages: usize,
    recent: Vec<Written>,
    recent_bytes: usize,
    garbage: Vec<String>,
    unsettled: Option<Unsettled>,
    /// Id filters of the segments this round wrote, stored once the index
    /// names them and what they replace is deleted (so the window in which
    /// a segment and its batches both exist stays as short as before).
    pending_filters: Vec<(String, IdFilter)>,
}

impl Compactor {
    /// Records a batch the flusher stored (its messages in `seq` order).
    pub(crate) fn note_batch(&mut self, key: &str, body: &Bytes, batch: &[SequencedMessage]) {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return;
        };
        self.written_batches += 1;
        self.written_messages += batch.len();
        if self.recent_bytes + body.len() <= RECENT_BYTES {
            self.recent_bytes += body.len();
            self.recent.push(Written {
                key: key.to_owned(),
                body: body.clone(),
                first_seq: first.seq,
                last_seq: last.seq,
                count: batch.len(),
                ids: batch.iter().map(|m| m.message.message_id.clone()).collect(),
            });
        }
    }

    /// Whether enough loose batches were written to compact now.
    pub(crate) fn due(&self) -> bool {
        self.written_batches >= COMPACT_AFTER_BATCHES
            || self.written_messages >= COMPACT_AFTER_MESSAGES
    }

    /// Whether anything was written since the last compaction.
    pub(crate) fn has_loose(&self) -> bool {
        self.written_batches > 0
    }

    /// Whether every object a compaction replaced is deleted.
    pub(crate) fn settled(&self) -> bool {
        self.garbage.is_empty()
    }

    /// Merges the loose batches (and the newest segment while it is small)
    /// into segments, writes the index, then deletes what they replace.
    /// A failure leaves every message readable; the next round retries.
    /// [`StoreError::Changed`]: another writer replaced the index since
    /// this compactor read it; nothing was replaced, and the next round
    /// reads the index again.
    pub(crate) async fn compact(
        &mut self,
        store: &dyn Store,
        id: &ConversationId,
        intent: Option<&dyn CompactionIntent>,
    ) -> Result<(), StoreError> {
        let (kept, kept_version) = match self.index.take() {
            Some(kept) => kept,
            None => {
                let (index, version) = HistoryIndex::load_versioned(store, id).await?;
                let index = index.unwrap_or_default();
                self.settle(&index);
                (index, version)
            }
        };
        let (mut index, mut version) = (kept.clone(), kept_version.clone());
        match self
            .compact_into(store, id, &mut index, &mut version, intent)
            .await
        {
            Ok(()) => self.index = Some((index, version)),
            Err(StoreError::Changed) => return Err(StoreError::Changed),
            Err(e) => {
                self.index = Some((kept, kept_version));
                return Err(e);
            }
        }
        self.collect_garbage(store).await
    }

    /// What an earlier compaction meant to replace is garbage once `index`
    /// lists its segments (its index write was stored after all).
    fn settle(&mut self, index: &HistoryIndex) {
        if let Some(unsettled) = self
            .unsettled
            .take_if(|unsettled| index.lists(&unsettled.segments))
        {
            self.garbage.extend(with_filters(&unsettled.replaced));
        }
    }

    async fn compact_into(
        &mut self,
        store: &dyn Store,
        id: &ConversationId,
        index: &mut HistoryIndex,
        version: &mut Version,
        intent: Option<&dyn CompactionIntent>,
    ) -> Result<(), StoreError> {
        let mut loose: Vec<String> = store
            .list_after(&keys::messages_prefix(id), index.covered_through.as_deref())
            .await?
            .into_iter()
            .filter(|k| {
                keys::batch_epoch_ms(k).is_some()
                    && !self.garbage.contains(k)
                    && !index.segments.iter().any(|s| s.key == *k)
            })
            .collect();
        loose.truncate(MAX_LOOSE_PER_ROUND);
        let Some(last_loose) = loose.last().cloned() else {
            self.reset();
            return Ok(());
        };
        self.pending_filters.clear();
        if let Some((segment, merged, filter)) =
            self.concatenate(store, id, index, &loose, intent).await?
        {
            self.pending_filters.push((segment.key.clone(), filter));
            return self
                .commit(store, id, index, version, (segment, merged), loose)
                .await;
        }
        let mut messages: Vec<SequencedMessage> = Vec::new();
        let mut loose_bytes = 0;
        for key in &loose {
            let cached = self
                .recent
                .iter()
                .find(|w| w.key == *key)
                .map(|w| w.body.clone());
            let body = match cached {
                Some(body) => body,
                None => store.get(key).await?.unwrap_or_default(),
            };
            loose_bytes += body.len();
            let ms = keys::batch_epoch_ms(key).unwrap_or(0);
            messages.extend(parse_batch(ms, key, &body));
        }
        let mut replaced = loose.clone();
        let mergeable = index.segments.last().is_some_and(|s| {
            s.count + messages.len() <= SEGMENT_MAX_MESSAGES
                && s.bytes + loose_bytes <= SEGMENT_MAX_BYTES
        });
        if mergeable {
            let last = index.segments.last().cloned().expect("checked above");
            if let Some(body) = store.get(&last.key).await? {
                let ms = keys::batch_epoch_ms(&last.key).unwrap_or(0);
                messages.extend(parse_batch(ms, &last.key, &body));
                index.segments.pop();
                replaced.push(last.key);
            }
        }
        messages.sort_by_key(|m| m.seq);
        messages.dedup_by_key(|m| m.seq);
        let chunks = split_segments(&messages);
        let segment_keys: Vec<String> = chunks
            .iter()
            .map(|chunk| keys::batch_for_seq(id, chunk.first().map_or(0, |m| m.seq)))
            .collect();
        if let Some(intent) = intent {
            let gone: Vec<String> = replaced
                .iter()
                .filter(|k| !segment_keys.contains(k))
                .cloned()
                .collect();
            intent.intend(&segment_keys, &gone).await?;
        }
        let mut written = Vec::new();
        for (chunk, key) in chunks.into_iter().zip(segment_keys) {
            let first = chunk.first().map_or(0, |m| m.seq);
            let body = encode_lines(chunk);
            store
                .put(&key, body.clone(), "application/x-ndjson")
                .await?;
            let ids = chunk.iter().map(|m| m.message.message_id.as_str());
            self.pending_filters
                .push((key.clone(), IdFilter::of_ids(SEGMENT_MAX_MESSAGES, ids)));
            written.push(Segment {
                key,
                first_seq: first,
                last_seq: chunk.last().map_or(0, |m| m.seq),
                count: chunk.len(),
                bytes: body.len(),
            });
        }
        self.write_index(store, id, (index, version), written, last_loose, replaced)
            .await
    }

    /// The common case without reading or parsing anything: every loose
    /// batch is one this flusher wrote (so its lines carry `seq`, in order)
    /// and they fit one segment, possibly after the newest segment's bytes.
    /// Returns the segment written, with the key it replaces if it merged,
    /// and its id filter.
    async fn concatenate(
        &self,
        store: &dyn Store,
        id: &ConversationId,
        index: &HistoryIndex,
        loose: &[String],
        intent: Option<&dyn CompactionIntent>,
    ) -> Result<Option<Concatenated>, StoreError> {
        let mut parts: Vec<&Written> = Vec::with_capacity(loose.len());
        for key in loose {
            match self.recent.iter().find(|w| w.key == *key) {
                Some(w) => parts.push(w),
                None => return Ok(None),
            }
        }
        let ordered = parts.windows(2).all(|p| p[0].last_seq < p[1].first_seq);
        let count: usize = parts.iter().map(|w| w.count).sum();
        let bytes: usize = parts.iter().map(|w| w.body.len()).sum();
        let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
            return Ok(None);
        };
        if !ordered || count > SEGMENT_MAX_MESSAGES || bytes > SEGMENT_MAX_BYTES {
            return Ok(None);
        }
        let mut body = Vec::with_capacity(bytes);
        let mut segment = Segment {
            key: String::new(),
            first_seq: first.first_seq,
            last_seq: last.last_seq,
            count,
            bytes,
        };
        let mut replaced = None;
        let mut filter = None;
        if let Some(newest) = index.segments.last().filter(|s| {
            s.last_seq < first.first_seq
                && s.count + count <= SEGMENT_MAX_MESSAGES
                && s.bytes + bytes <= SEGMENT_MAX_BYTES
        }) && let Some(old) = store.get(&newest.key).await?
        {
            body.extend_from_slice(&old);
            if !old.is_empty() && !old.ends_with(b"\n") {
                body.push(b'\n');
            }
            segment.first_seq = newest.first_seq;
            segment.count += newest.count;
            replaced = Some(newest.key.clone());
            filter = Some(filter_of_segment(store, &newest.key, &old).await);
        }
        let mut filter = filter.unwrap_or_else(|| IdFilter::with_capacity(SEGMENT_MAX_MESSAGES));
        for part in parts {
            body.extend_from_slice(&part.body);
            for message_id in &part.ids {
                filter.insert(message_id);
            }
        }
        segment.bytes = body.len();
        segment.key = keys::batch_for_seq(id, segment.first_seq);
        if let Some(intent) = intent {
            let gone: Vec<String> = loose
                .iter()
                .chain(&replaced)
                .filter(|k| **k != segment.key)
                .cloned()
                .collect();
            intent
                .intend(std::slice::from_ref(&segment.key), &gone)
                .await?;
        }
        store
            .put(&segment.key, Bytes::from(body), "application/x-ndjson")
            .await?;
        Ok(Some((segment, replaced, filter)))
    }

    async fn commit(
        &mut self,
        store: &dyn Store,
        id: &ConversationId,
        index: &mut HistoryIndex,
        version: &mut Version,
        (segment, merged): (Segment, Option<String>),
        loose: Vec<String>,
    ) -> Result<(), StoreError> {
        let last_loose = loose.last().cloned().unwrap_or_default();
        let mut replaced = loose;
        if let Some(key) = merged {
            index.segments.pop();
            replaced.push(key);
        }
        self.write_index(
            store,
            id,
            (index, version),
            vec![segment],
            last_loose,
            replaced,
        )
        .await
    }

    /// Writes the index with the new segments in place of the version it
    /// was read as; what they replace becomes garbage once it is stored.
    async fn write_index(
        &mut self,
        store: &dyn Store,
        id: &ConversationId,
        (index, version): (&mut HistoryIndex, &mut Version),
        written: Vec<Segment>,
        last_loose: String,
        replaced: Vec<String>,
    ) -> Result<(), StoreError> {
        let segment_keys: Vec<String> = written.iter().map(|s| s.key.clone()).collect();
        let mut next = index.clone();
        next.version = 1;
        next.segments.extend(written);
        next.covered_through = Some(last_loose);
        let body = serde_json::to_vec(&next)
            .map_err(|e| StoreError::Unusable(format!("history index not serializable: {e}")))?;
        let key = keys::history_index(id);
        let round = Unsettled {
            segments: segment_keys,
            replaced,
        };
        match store
            .put_if(&key, Bytes::from(body), "application/json", version)
            .await
        {
            Ok(stored) => {
                *index = next;
                *version = stored;
                self.unsettled = None;
            }
            Err(StoreError::Changed) => {
                return self.behind(store, id, (index, version), round).await;
            }
            Err(e) => {
                self.unsettled = Some(round);
                return Err(e);
            }
        }
        tracing::debug!(conversation = %id, merged = round.replaced.len(), segments = index.segments.len(), "history compacted");
        self.replaced_by_stored_index(store, &round.replaced).await
    }

    /// The index write found another version than the one read: reads the
    /// index again. If it lists this round's segments, the write was stored
    /// after all (a retried request whose first try landed). Otherwise
    /// another writer came first: this round's segments, which no index
    /// lists, are deleted, nothing is replaced, and [`StoreError::Changed`]
    /// tells the caller (which forgets the index).
    async fn behind(
        &mut self,
        store: &dyn Store,
        id: &ConversationId,
        (index, version): (&mut HistoryIndex, &mut Version),
        round: Unsettled,
    ) -> Result<(), StoreError> {
        let (stored, stored_version) = match HistoryIndex::load_versioned(store, id).await {
            Ok(read) => read,
            Err(e) => {
                self.unsettled = Some(round);
                return Err(e);
            }
        };
        let stored = stored.unwrap_or_default();
        self.settle(&stored);
        if stored.lists(&round.segments) {
            *index = stored;
            *version = stored_version;
            return self.replaced_by_stored_index(store, &round.replaced).await;
        }
        self.pending_filters.clear();
        tracing::info!(conversation = %id, segments = round.segments.len(), "another writer replaced the history index; deleting this compaction's segments");
        if let Err(e) = store.delete(&round.segments).await {
            tracing::warn!(conversation = %id, error = %Report(&e), "deleting the segments of a compaction that lost its index write failed; they stay loose until the next one");
        }
        Err(StoreError::Changed)
    }

    /// The index naming this round's segments is stored: what they
    /// replaced (with its id filters) is garbage, deleted now, and then
    /// the new segments' filters are stored, so the window in which a
    /// segment and its batches both exist is no longer than the deletion.
    async fn replaced_by_stored_index(
        &mut self,
        store: &dyn Store,
        replaced: &[String],
    ) -> Result<(), StoreError> {
        self.garbage.extend(with_filters(replaced));
        self.reset();
        let collected = self.collect_garbage(store).await;
        for (key, filter) in std::mem::take(&mut self.pending_filters) {
            store_filter(store, &key, &filter).await;
        }
        collected
    }

    fn reset(&mut self) {
        self.written_batches = 0;
        self.written_messages = 0;
        self.recent.clear();
        self.recent_bytes = 0;
    }

    async fn collect_garbage(&mut self, store: &dyn Store) -> Result<(), StoreError> {
        if self.garbage.is_empty() {
            return Ok(());
        }
        let result = store.delete(&self.garbage).await;
        if result.is_ok() {
            self.garbage.clear();
        } else if self.garbage.len() > MAX_GARBAGE {
            let excess = self.garbage.len() - MAX_GARBAGE;
            self.garbage.drain(..excess);
        }
        result
    }
}

/// A segment `concatenate` wrote, the key of the segment it absorbed, and
/// its id filter.
type Concatenated = (Segment, Option<String>, IdFilter);

/// The keys of objects with the keys of their id filters.
fn with_filters(objects: &[String]) -> Vec<String> {
    objects
        .iter()
        .flat_map(|key| std::iter::once(key.clone()).chain(keys::id_filter(key)))
        .collect()
}

/// The filter of the segment at `key` whose body is `body`, to take more
/// ids: its stored filter, or one built from the body.
async fn filter_of_segment(store: &dyn Store, key: &str, body: &[u8]) -> IdFilter {
    let stored = match keys::id_filter(key) {
        Some(filter_key) => store.get(&filter_key).await.ok().flatten(),
        None => None,
    };
    if let Some(filter) = stored.and_then(|stored| IdFilter::decode(&stored).ok()) {
        return filter;
    }
    let messages = parse_batch(keys::batch_epoch_ms(key).unwrap_or(0), key, body);
    IdFilter::of_ids(
        SEGMENT_MAX_MESSAGES,
        messages.iter().map(|m| m.message.message_id.as_str()),
    )
}

/// Stores the id filter of the segment at `key`; a failure only costs a
/// later reader building it (see [`crate::id_filter::load_or_build`]).
async fn store_filter(store: &dyn Store, key: &str, filter: &IdFilter) {
    let Some(filter_key) = keys::id_filter(key) else {
        return;
    };
    if let Err(e) = store
        .put(&filter_key, filter.encode(), "application/octet-stream")
        .await
    {
        tracing::warn!(key = filter_key, error = %Report(&e), "storing a segment's id filter failed");
    }
}

/// Consecutive runs of messages within the segment bounds.
fn split_segments(messages: &[SequencedMessage]) -> Vec<&[SequencedMessage]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, m) in messages.iter().enumerate() {
        let size = m.message.body.len() + 512;
        if i > start && (i - start >= SEGMENT_MAX_MESSAGES || bytes + size > SEGMENT_MAX_BYTES) {
            chunks.push(&messages[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < messages.len() {
        chunks.push(&messages[start..]);
    }
    chunks
}
