//! The id filters a conversation holds of its stored history (see
//! [`crate::id_filter`]), and the task that consults storage when they do
//! not answer: a post whose client `messageId` no memory knows learns from
//! them, mostly without a storage read, that no stored message has it.
//!
//! The held filters cover every stored message below `covered_below`:
//! filters of the objects a listing found (loaded or built on need), plus
//! filters of the ids trimmed from the tail since, so coverage follows
//! the tail's front without listing again. Everything from the front on
//! is in the tail. Memory is bounded ([`MAX_FILTER_BYTES`]): past it the
//! filters that did not fit are read per consult instead, and the ids
//! trimmed since are dropped (the next consult lists again).

use super::protocol::Reply;
use crate::domain::{Message, NewMessage, Sender, SequencedMessage};
use crate::events::Origin;
use crate::id_filter::{IdFilter, Loaded, load_or_build};
use crate::ndjson::parse_batch;
use crate::segments::{HistoryIndex, listed_objects};
use crate::store::{Store, StoreError, keys};
use std::collections::{HashMap, HashSet, VecDeque};

/// Bytes of filters one conversation holds at most (about 400 000 ids).
pub(crate) const MAX_FILTER_BYTES: usize = 1 << 20;
/// Ids one filter of trimmed ids takes before another starts.
const TRIMMED_PER_FILTER: usize = 2000;
/// Times a consult lists again when a compaction moved objects meanwhile.
const LISTINGS: usize = 3;

/// A post waiting for a consult.
pub(crate) struct WaitingPost {
    pub sender: Sender,
    pub new: NewMessage,
    pub origin: Origin,
    pub reply: Reply<Message>,
}

/// What storage says of one id.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// No stored message below the front has it.
    Unused,
    /// The oldest stored message with it.
    Used(Box<SequencedMessage>),
    /// Storage could not tell (it failed).
    Unknown,
}

/// A consult's answer: a verdict per id asked, in order, and the filters
/// it read, to hold.
pub(crate) struct Consulted {
    pub verdicts: Vec<Verdict>,
    /// The objects below the front as listed, and the filters read of
    /// those not held; `None` when the listing failed.
    listing: Option<(Vec<String>, Vec<(String, IdFilter)>)>,
    /// The front the consult was asked for.
    front: u64,
}

/// The filters a conversation holds, and the posts waiting for a consult.
#[derive(Debug, Default)]
pub(crate) struct IdFilters {
    /// Filters of stored objects, by key.
    objects: HashMap<String, IdFilter>,
    /// Filters of ids trimmed from the tail after the listing.
    trimmed: Vec<IdFilter>,
    /// Every stored message below this sequence is in a held filter.
    covered_below: u64,
    bytes: usize,
    consulting: bool,
    waiting: VecDeque<WaitingPost>,
}

impl std::fmt::Debug for WaitingPost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitingPost")
            .field("message_id", &self.new.message_id)
            .finish()
    }
}

impl IdFilters {
    /// Bytes the held filters cost.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Posts waiting for a consult.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Whether no consult is in flight and no post waits.
    pub(crate) fn settled(&self) -> bool {
        !self.consulting && self.waiting.is_empty()
    }

    /// Whether a post may be decided now: nothing waits before it and the
    /// held filters cover everything below `front`.
    pub(crate) fn ready_for(&self, front: u64) -> bool {
        self.settled() && self.covered_below >= front
    }

    /// The held objects whose filter may hold `message_id`, and whether
    /// a filter of trimmed ids may (which names no object).
    pub(crate) fn maybes(&self, message_id: &str) -> (Vec<String>, bool) {
        let objects = self
            .objects
            .iter()
            .filter(|(_, filter)| filter.may_contain(message_id))
            .map(|(key, _)| key.clone())
            .collect();
        let trimmed = self.trimmed.iter().any(|f| f.may_contain(message_id));
        (objects, trimmed)
    }

    /// Queues a post for the next consult.
    pub(crate) fn wait(&mut self, post: WaitingPost) {
        self.waiting.push_back(post);
    }

    /// The ids of the waiting posts, for a consult to start; `None` while
    /// one is in flight or nothing waits.
    pub(crate) fn start_consult(&mut self) -> Option<Vec<String>> {
        if self.consulting || self.waiting.is_empty() {
            return None;
        }
        self.consulting = true;
        Some(
            self.waiting
                .iter()
                .map(|p| p.new.message_id.clone().unwrap_or_default())
                .collect(),
        )
    }

    /// Keys of the held objects' filters.
    pub(crate) fn held_keys(&self) -> HashSet<String> {
        self.objects.keys().cloned().collect()
    }

    /// Takes what a consult read and answers the posts it was for, with
    /// their verdicts, oldest first; those that came meanwhile stay.
    pub(crate) fn finish_consult(&mut self, consulted: Consulted) -> Vec<(WaitingPost, Verdict)> {
        self.consulting = false;
        if let Some((listing, read)) = consulted.listing {
            let listed: HashSet<&String> = listing.iter().collect();
            self.objects.retain(|key, _| listed.contains(key));
            self.trimmed.clear();
            for (key, filter) in read {
                if self.bytes_held() + filter.bytes() <= MAX_FILTER_BYTES {
                    self.objects.insert(key, filter);
                }
            }
            self.bytes = self.bytes_held();
            self.covered_below = if listing.iter().all(|k| self.objects.contains_key(k)) {
                consulted.front
            } else {
                0
            };
        }
        let answered = consulted.verdicts.len().min(self.waiting.len());
        self.waiting
            .drain(..answered)
            .zip(consulted.verdicts)
            .collect()
    }

    /// The posts that waited behind a consult, to decide again.
    pub(crate) fn take_waiting(&mut self) -> VecDeque<WaitingPost> {
        std::mem::take(&mut self.waiting)
    }

    /// Messages from `first_seq` on left the tail, whose front is now
    /// `front`: their ids extend the coverage when it reached them.
    pub(crate) fn note_trimmed(&mut self, trimmed: &[SequencedMessage], front: u64) {
        let Some(first) = trimmed.first() else {
            return;
        };
        if self.covered_below == 0 || self.covered_below < first.seq {
            return;
        }
        for m in trimmed {
            match self.trimmed.last_mut() {
                Some(filter) if filter.count() < TRIMMED_PER_FILTER => {
                    filter.insert(&m.message.message_id)
                }
                _ => {
                    let mut filter = IdFilter::with_capacity(TRIMMED_PER_FILTER);
                    filter.insert(&m.message.message_id);
                    self.trimmed.push(filter);
                }
            }
        }
        self.bytes = self.bytes_held();
        if self.bytes > MAX_FILTER_BYTES {
            self.trimmed.clear();
            self.bytes = self.bytes_held();
            self.covered_below = 0;
        } else {
            self.covered_below = self.covered_below.max(front);
        }
    }

    fn bytes_held(&self) -> usize {
        self.objects
            .values()
            .chain(&self.trimmed)
            .map(IdFilter::bytes)
            .sum()
    }
}

/// Asks storage about `message_ids`, each of which no memory knows: for
/// each, whether a stored message below `front` has it. Reads the filters
/// of the objects not in `held` (built from the object where missing),
/// then verifies each maybe, of `held_maybes` (per id) and of the filters
/// read, by reading its object. A compaction that moved objects meanwhile
/// makes it list again; a storage failure answers [`Verdict::Unknown`].
pub(crate) async fn consult(
    store: &dyn Store,
    id: &crate::domain::ConversationId,
    front: u64,
    message_ids: &[String],
    held: &HashSet<String>,
    held_maybes: Vec<Vec<String>>,
) -> Consulted {
    for _ in 0..LISTINGS {
        match consult_once(store, id, front, message_ids, held, &held_maybes).await {
            Ok(Some(consulted)) => return consulted,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(conversation = %id, error = %crate::error::Report(&e), "consulting the id filters failed; the ids are taken as unused");
                break;
            }
        }
    }
    Consulted {
        verdicts: message_ids.iter().map(|_| Verdict::Unknown).collect(),
        listing: None,
        front,
    }
}

/// One listing's consult; `None` when the history moved under it.
async fn consult_once(
    store: &dyn Store,
    id: &crate::domain::ConversationId,
    front: u64,
    message_ids: &[String],
    held: &HashSet<String>,
    held_maybes: &[Vec<String>],
) -> Result<Option<Consulted>, StoreError> {
    let index = HistoryIndex::load(store, id).await?;
    let listing: Vec<_> = listed_objects(store, id)
        .await?
        .into_iter()
        .filter(|o| o.base < front)
        .collect();
    let mut read: Vec<(String, IdFilter)> = Vec::new();
    let mut read_bytes = 0;
    let mut parsed: HashMap<String, Vec<SequencedMessage>> = HashMap::new();
    let mut maybes: Vec<HashSet<String>> = held_maybes
        .iter()
        .map(|keys| keys.iter().cloned().collect())
        .collect();
    for object in listing.iter().filter(|o| !held.contains(&o.key)) {
        let (filter, messages) = match load_or_build(store, &object.key, object.segment).await? {
            Loaded::Vanished => return Ok(None),
            Loaded::Filter(filter, messages) => (filter, messages),
        };
        for (n, message_id) in message_ids.iter().enumerate() {
            if filter.may_contain(message_id) {
                maybes[n].insert(object.key.clone());
            }
        }
        if let Some(messages) = messages {
            parsed.insert(object.key.clone(), messages);
        }
        // What does not fit is read again by the next consult.
        if read_bytes + filter.bytes() <= MAX_FILTER_BYTES {
            read_bytes += filter.bytes();
            read.push((object.key.clone(), filter));
        }
    }
    if HistoryIndex::load(store, id).await? != index {
        return Ok(None);
    }
    let listed: HashSet<&str> = listing.iter().map(|o| o.key.as_str()).collect();
    let mut verdicts = Vec::with_capacity(message_ids.len());
    for (message_id, keys) in message_ids.iter().zip(maybes) {
        let mut used: Option<SequencedMessage> = None;
        for key in keys.iter().filter(|k| listed.contains(k.as_str())) {
            if !parsed.contains_key(key) {
                let Some(body) = store.get(key).await? else {
                    return Ok(None);
                };
                let ms = keys::batch_epoch_ms(key).unwrap_or(0);
                parsed.insert(key.clone(), parse_batch(ms, key, &body));
            }
            let found = parsed[key]
                .iter()
                .filter(|m| m.message.message_id == *message_id)
                .min_by_key(|m| m.seq);
            if let Some(m) = found
                && used.as_ref().is_none_or(|u| m.seq < u.seq)
            {
                used = Some(m.clone());
            }
        }
        verdicts.push(match used {
            Some(m) => Verdict::Used(Box::new(m)),
            None => Verdict::Unused,
        });
    }
    Ok(Some(Consulted {
        verdicts,
        listing: Some((listing.into_iter().map(|o| o.key).collect(), read)),
        front,
    }))
}
