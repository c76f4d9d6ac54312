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
    /// `None` when the listing failed.
    listing: Option<Listing>,
    /// The front the consult was asked for.
    front: u64,
}

/// The objects below a consult's front as it listed them, and the
/// filters it read of those not held.
#[derive(Debug)]
struct Listing {
    keys: Vec<String>,
    read: Vec<(String, Box<IdFilter>)>,
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
    /// Filters of ids trimmed while a consult is in flight (all at or
    /// after its front), and the front after them: they extend what the
    /// consult covers, so a busy room needs not list again at once.
    during: Option<(Vec<IdFilter>, u64)>,
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
        let during = self.during.take();
        if let Some(Listing {
            keys: listing,
            read,
        }) = consulted.listing
        {
            let listed: HashSet<&String> = listing.iter().collect();
            self.objects.retain(|key, _| listed.contains(key));
            self.trimmed.clear();
            for (key, filter) in read {
                if self.bytes_held() + filter.bytes() <= MAX_FILTER_BYTES {
                    self.objects.insert(key, *filter);
                }
            }
            self.covered_below = if listing.iter().all(|k| self.objects.contains_key(k)) {
                consulted.front
            } else {
                0
            };
        }
        match during {
            Some((filters, front)) if self.covered_below >= consulted.front => {
                self.trimmed.extend(filters);
                self.covered_below = self.covered_below.max(front);
            }
            Some(_) => self.covered_below = self.covered_below.min(consulted.front),
            None => {}
        }
        self.bound_memory();
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
        if self.consulting {
            let (filters, after) = self.during.get_or_insert_with(|| (Vec::new(), front));
            add_ids(filters, trimmed);
            *after = front;
        } else if self.covered_below > 0 && self.covered_below >= first.seq {
            add_ids(&mut self.trimmed, trimmed);
            self.covered_below = self.covered_below.max(front);
        } else {
            return;
        }
        self.bound_memory();
    }

    /// Past [`MAX_FILTER_BYTES`], drops the filters of trimmed ids: what
    /// they covered is listed again by the next consult.
    fn bound_memory(&mut self) {
        self.bytes = self.bytes_held();
        if self.bytes > MAX_FILTER_BYTES {
            self.trimmed.clear();
            self.during = None;
            self.covered_below = 0;
            self.bytes = self.bytes_held();
        }
    }

    fn bytes_held(&self) -> usize {
        let during = self.during.iter().flat_map(|(filters, _)| filters);
        self.objects
            .values()
            .chain(&self.trimmed)
            .chain(during)
            .map(IdFilter::bytes)
            .sum()
    }
}

/// Adds the ids of `messages` to the last of `filters`, starting another
/// when it is full.
fn add_ids(filters: &mut Vec<IdFilter>, messages: &[SequencedMessage]) {
    for m in messages {
        match filters.last_mut() {
            Some(filter) if filter.count() < TRIMMED_PER_FILTER => {
                filter.insert(&m.message.message_id)
            }
            _ => {
                let mut filter = IdFilter::with_capacity(TRIMMED_PER_FILTER);
                filter.insert(&m.message.message_id);
                filters.push(filter);
            }
        }
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
    let mut read: Vec<(String, Box<IdFilter>)> = Vec::new();
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
        // Kept only where a maybe will read them: a Chats3 bucket's
        // thousands of loose files are not held all at once.
        if let Some(messages) = messages
            && maybes.iter().any(|keys| keys.contains(&object.key))
        {
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
        listing: Some(Listing {
            keys: listing.into_iter().map(|o| o.key).collect(),
            read,
        }),
        front,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64, message_id: &str) -> SequencedMessage {
        let message = serde_json::from_value(serde_json::json!({
            "messageId": message_id, "conversationId": "c1", "senderUserId": "ann",
            "senderDisplayName": "Ann", "senderRole": "user", "type": "text", "body": "hi",
            "clientTimestamp": "t", "serverReceivedAt": "1970-01-01T00:00:01Z"
        }))
        .unwrap();
        SequencedMessage { seq, message }
    }

    /// Filters with a consult in flight.
    fn consulting() -> IdFilters {
        IdFilters {
            consulting: true,
            ..IdFilters::default()
        }
    }

    fn filter_of(ids: &[&str]) -> IdFilter {
        IdFilter::of_ids(2000, ids.iter().copied())
    }

    /// What a consult that listed `objects` below `front` brings back.
    fn listed(front: u64, objects: Vec<(&str, IdFilter)>) -> Consulted {
        Consulted {
            verdicts: Vec::new(),
            listing: Some(Listing {
                keys: objects.iter().map(|(key, _)| (*key).to_owned()).collect(),
                read: objects
                    .into_iter()
                    .map(|(key, filter)| (key.to_owned(), Box::new(filter)))
                    .collect(),
            }),
            front,
        }
    }

    #[test]
    fn a_consult_covers_up_to_its_front_and_trimmed_ids_carry_it_on() {
        let mut filters = IdFilters::default();
        assert!(!filters.ready_for(100), "nothing is known before a consult");
        filters.consulting = true;
        filters.finish_consult(listed(100, vec![("a", filter_of(&["x"]))]));
        assert!(filters.ready_for(100) && !filters.ready_for(101));
        assert_eq!(filters.maybes("x"), (vec!["a".to_owned()], false));
        assert_eq!(filters.maybes("y"), (Vec::new(), false));

        filters.note_trimmed(&[message(100, "t1"), message(103, "t2")], 105);
        assert!(filters.ready_for(105));
        assert_eq!(filters.maybes("t2"), (Vec::new(), true));
        assert!(filters.bytes() > 0);
    }

    #[test]
    fn ids_trimmed_during_a_consult_extend_it_and_unlisted_objects_go() {
        let mut filters = consulting();
        filters.finish_consult(listed(100, vec![("a", filter_of(&["x"]))]));
        filters.consulting = true;
        filters.note_trimmed(&[message(100, "t")], 110);
        filters.finish_consult(listed(100, vec![("b", filter_of(&["x"]))]));
        assert!(filters.ready_for(110), "the trim meanwhile is kept");
        assert_eq!(filters.maybes("x"), (vec!["b".to_owned()], false));
        assert!(filters.maybes("t").1);
    }

    #[test]
    fn a_gap_in_coverage_needs_a_consult_again() {
        let mut filters = IdFilters::default();
        filters.note_trimmed(&[message(100, "t")], 110);
        assert!(
            !filters.ready_for(110),
            "trims before any consult cover nothing"
        );
        filters.consulting = true;
        filters.finish_consult(Consulted {
            verdicts: Vec::new(),
            listing: None,
            front: 110,
        });
        assert!(!filters.ready_for(110), "a failed consult covers nothing");
    }

    #[test]
    fn filters_past_the_memory_bound_are_not_held_and_cover_nothing() {
        let mut filters = IdFilters::default();
        let per_filter = filter_of(&[]).bytes();
        let count = MAX_FILTER_BYTES / per_filter + 2;
        let names: Vec<String> = (0..count).map(|n| format!("k{n}")).collect();
        let objects = names
            .iter()
            .map(|name| (name.as_str(), filter_of(&["x"])))
            .collect();
        filters.consulting = true;
        filters.finish_consult(listed(100, objects));
        assert!(filters.bytes() <= MAX_FILTER_BYTES);
        assert!(
            !filters.ready_for(100),
            "what did not fit is read per consult"
        );
    }

    #[tokio::test]
    async fn a_maybe_is_verified_in_its_segment_and_a_false_one_refuses_nothing() {
        let store = crate::test_support::MemoryStore::default();
        let conversation = crate::domain::ConversationId::parse("c1").unwrap();
        let key = keys::batch_for_seq(&conversation, 1_000_000);
        let stored = [message(1_000_000, "m0"), message(1_000_001, "m1")];
        let body = crate::ndjson::encode_lines(&stored);
        let index = serde_json::json!({
            "version": 1, "coveredThrough": key,
            "segments": [{ "key": key, "firstSeq": 1_000_000, "lastSeq": 1_000_001,
                           "count": 2, "bytes": body.len() }]
        });
        // A filter that says "maybe" to every id.
        let mut saturated = IdFilter::with_capacity(1);
        for n in 0..10_000 {
            saturated.insert(&format!("filler-{n}"));
        }
        assert!(saturated.may_contain("never-posted"));
        let puts = [
            (key.clone(), body),
            (keys::id_filter(&key).unwrap(), saturated.encode()),
            (keys::history_index(&conversation), index.to_string().into()),
        ];
        for (key, body) in puts {
            store.put(&key, body, "x").await.unwrap();
        }
        let asked = ["never-posted".to_owned(), "m1".to_owned()];
        let consulted = consult(
            &store,
            &conversation,
            u64::MAX,
            &asked,
            &HashSet::new(),
            vec![Vec::new(), Vec::new()],
        )
        .await;
        assert!(matches!(consulted.verdicts[0], Verdict::Unused));
        match &consulted.verdicts[1] {
            Verdict::Used(m) => assert_eq!(m.seq, 1_000_001),
            other => panic!("{other:?}"),
        }
        let listing = consulted.listing.unwrap();
        assert_eq!((listing.keys, listing.read.len()), (vec![key], 1));

        store.down.store(true, std::sync::atomic::Ordering::SeqCst);
        let consulted = consult(
            &store,
            &conversation,
            u64::MAX,
            &asked,
            &HashSet::new(),
            vec![Vec::new(), Vec::new()],
        )
        .await;
        assert!(
            consulted
                .verdicts
                .iter()
                .all(|v| matches!(v, Verdict::Unknown))
        );
        assert!(consulted.listing.is_none());
    }
}
