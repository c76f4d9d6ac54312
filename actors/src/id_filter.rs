//! A compact, keyed filter of the message ids one stored object (a
//! segment or a batch) holds, so that a post learns that an old id is
//! certainly unused without reading history: a Bloom filter answers
//! "absent" for sure and "maybe" at a small false-positive rate; a caller
//! verifies a maybe by reading the object.
//!
//! The filter is the maintained [`bloomfilter`] crate: keyed SipHash-1-3
//! with a random seed per filter (nobody can choose ids that collide
//! without reading storage) and a versioned byte layout of its own that
//! carries the seed, so storing one needs no serde format (the reason it
//! was chosen over `fastbloom`). Around
//! it a file adds a magic, a format byte and a CRC-32C, so a torn or
//! altered file is rebuilt rather than trusted; and canary ids inserted at
//! build and checked at load catch a filter whose hashing no longer
//! matches this build (a crate upgrade), which would answer false
//! "absent"s.
//!
//! Segment filters are stored beside their segment under
//! `message-ids/` ([`crate::store::keys::id_filter`]), written by the
//! compactor with the segment and deleted with it; [`load_or_build`] builds
//! and stores the missing one of a segment written before them (or by
//! Chats3), and of one whose file does not decode.

use crate::error::Report;
use crate::ndjson::parse_batch;
use crate::store::{Store, StoreError, keys};
use bloomfilter::Bloom;
use bytes::Bytes;

/// False positives per "maybe" asked of one filter: about 2.4 bytes per id.
const FALSE_POSITIVE_RATE: f64 = 1e-4;
/// Ids inserted into every filter and checked at load.
const CANARIES: [&str; 8] = [
    "chats3-canary-0",
    "chats3-canary-1",
    "chats3-canary-2",
    "chats3-canary-3",
    "chats3-canary-4",
    "chats3-canary-5",
    "chats3-canary-6",
    "chats3-canary-7",
];
const MAGIC: &[u8; 5] = b"C3IDS";
const FORMAT: u8 = 1;
/// Magic, format, CRC-32C, id count.
const HEADER: usize = MAGIC.len() + 1 + 4 + 4;
/// More hash functions than any sane rate needs: a header asking for more
/// is corrupt (and would make each check slow).
const MAX_HASHES: u32 = 64;

/// The ids of one stored object.
pub(crate) struct IdFilter {
    bloom: Bloom<str>,
    /// Ids inserted (without the canaries).
    count: u32,
}

impl std::fmt::Debug for IdFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdFilter")
            .field("count", &self.count)
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl IdFilter {
    /// An empty filter sized for `capacity` ids at the false-positive rate.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let seed: [u8; 32] = rand::random();
        let items = capacity.max(1) + CANARIES.len();
        let bloom = Bloom::new_for_fp_rate_with_seed(items, FALSE_POSITIVE_RATE, &seed)
            .unwrap_or_else(|_| unreachable!("a positive size and a rate within (0, 1)"));
        let mut filter = IdFilter { bloom, count: 0 };
        for canary in CANARIES {
            filter.bloom.set(canary);
        }
        filter
    }

    /// A filter of `ids`, sized for at least `capacity` of them.
    pub(crate) fn of_ids<'a>(capacity: usize, ids: impl ExactSizeIterator<Item = &'a str>) -> Self {
        let mut filter = IdFilter::with_capacity(capacity.max(ids.len()));
        for id in ids {
            filter.insert(id);
        }
        filter
    }

    pub(crate) fn insert(&mut self, message_id: &str) {
        self.bloom.set(message_id);
        self.count = self.count.saturating_add(1);
    }

    /// False: no inserted id is `message_id`. True: one may be.
    pub(crate) fn may_contain(&self, message_id: &str) -> bool {
        self.bloom.check(message_id)
    }

    /// Ids inserted.
    pub(crate) fn count(&self) -> usize {
        self.count as usize
    }

    /// What the filter costs in memory.
    pub(crate) fn bytes(&self) -> usize {
        self.bloom.as_slice().len()
    }

    /// The stored form.
    pub(crate) fn encode(&self) -> Bytes {
        let bloom = self.bloom.as_slice();
        let mut rest = Vec::with_capacity(4 + bloom.len());
        rest.extend_from_slice(&self.count.to_le_bytes());
        rest.extend_from_slice(bloom);
        let mut out = Vec::with_capacity(HEADER + bloom.len());
        out.extend_from_slice(MAGIC);
        out.push(FORMAT);
        out.extend_from_slice(&crc32c::crc32c(&rest).to_le_bytes());
        out.extend_from_slice(&rest);
        Bytes::from(out)
    }

    /// The filter a stored form holds, or why it cannot be trusted.
    pub(crate) fn decode(stored: &[u8]) -> Result<Self, &'static str> {
        let rest = stored
            .strip_prefix(MAGIC.as_slice())
            .and_then(|s| s.strip_prefix(&[FORMAT]))
            .ok_or("not an id filter of this format")?;
        let (crc, rest) = rest.split_first_chunk::<4>().ok_or("truncated")?;
        if crc32c::crc32c(rest) != u32::from_le_bytes(*crc) {
            return Err("checksum mismatch");
        }
        let (count, bloom) = rest.split_first_chunk::<4>().ok_or("truncated")?;
        let bloom = Bloom::<str>::from_slice(bloom)?;
        // (`Bloom::is_empty` tells whether no bit is set, not this.)
        let bits = bloom.len();
        if bits == 0 || bloom.number_of_hash_functions() > MAX_HASHES {
            return Err("implausible filter parameters");
        }
        if !CANARIES.iter().all(|canary| bloom.check(*canary)) {
            return Err("hashing differs from this build");
        }
        Ok(IdFilter {
            bloom,
            count: u32::from_le_bytes(*count),
        })
    }
}

/// How a filter was had.
#[derive(Debug)]
pub(crate) enum Loaded {
    /// The object is gone (compacted or deleted meanwhile).
    Vanished,
    /// The filter, and the object's parsed messages when it was built from
    /// them (a caller verifying a maybe needs not read them again).
    Filter(Box<IdFilter>, Option<Vec<crate::domain::SequencedMessage>>),
}

/// The filter of the object at `object_key`: its stored filter when
/// `stored` (a segment's) and that decodes, else one built from the
/// object's messages, then stored when `stored` (a failed write only
/// costs the next reader the same build).
pub(crate) async fn load_or_build(
    store: &dyn Store,
    object_key: &str,
    stored: bool,
) -> Result<Loaded, StoreError> {
    let filter_key = keys::id_filter(object_key);
    if stored
        && let Some(key) = &filter_key
        && let Some(body) = store.get(key).await?
    {
        match IdFilter::decode(&body) {
            Ok(filter) => return Ok(Loaded::Filter(Box::new(filter), None)),
            Err(why) => {
                tracing::warn!(key, why, "an id filter does not decode; building it again")
            }
        }
    }
    let Some(body) = store.get(object_key).await? else {
        return Ok(Loaded::Vanished);
    };
    let ms = keys::batch_epoch_ms(object_key).unwrap_or(0);
    let messages = parse_batch(ms, object_key, &body);
    let capacity = if stored {
        crate::segments::SEGMENT_MAX_MESSAGES
    } else {
        messages.len()
    };
    let filter = IdFilter::of_ids(
        capacity,
        messages.iter().map(|m| m.message.message_id.as_str()),
    );
    if stored
        && let Some(key) = &filter_key
        && let Err(e) = store
            .put(key, filter.encode(), "application/octet-stream")
            .await
    {
        tracing::warn!(key, error = %Report(&e), "storing a built id filter failed");
    }
    Ok(Loaded::Filter(Box::new(filter), Some(messages)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{i:08x}-message-id")).collect()
    }

    #[test]
    fn every_inserted_id_is_found_and_few_others_are() {
        let inserted = ids(2000);
        let filter = IdFilter::of_ids(2000, inserted.iter().map(String::as_str));
        assert!(inserted.iter().all(|id| filter.may_contain(id)));
        let false_positives = (0..100_000)
            .filter(|i| filter.may_contain(&format!("other-{i}")))
            .count();
        assert!(false_positives < 100, "{false_positives} in 100000");
        assert_eq!(filter.count(), 2000);
        assert!(filter.bytes() < 6 << 10, "{} bytes", filter.bytes());
    }

    #[test]
    fn a_filter_reads_back_as_written_and_keeps_taking_ids() {
        let inserted = ids(50);
        let filter = IdFilter::of_ids(2000, inserted.iter().map(String::as_str));
        let encoded = filter.encode();
        let mut decoded = IdFilter::decode(&encoded).unwrap();
        assert_eq!(decoded.encode(), encoded);
        assert_eq!(decoded.count(), 50);
        assert!(inserted.iter().all(|id| decoded.may_contain(id)));
        decoded.insert("added-later");
        assert!(decoded.may_contain("added-later"));
        assert!(inserted.iter().all(|id| decoded.may_contain(id)));
    }

    #[test]
    fn a_corrupt_truncated_or_foreign_filter_is_refused() {
        let filter = IdFilter::of_ids(10, ids(10).iter().map(String::as_str));
        let encoded = filter.encode().to_vec();
        let mut flipped = encoded.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x10;
        assert_eq!(IdFilter::decode(&flipped).err(), Some("checksum mismatch"));
        assert!(IdFilter::decode(&encoded[..encoded.len() - 3]).is_err());
        assert!(IdFilter::decode(&encoded[..HEADER - 1]).is_err());
        assert!(IdFilter::decode(b"{\"not\":\"a filter\"}").is_err());
        assert!(IdFilter::decode(b"").is_err());
    }

    #[test]
    fn a_filter_hashed_otherwise_is_refused() {
        // A well-formed file whose canaries are missing: as if written by
        // a build that hashed ids differently.
        let bloom: Bloom<str> = Bloom::new_for_fp_rate_with_seed(10, 1e-4, &[7; 32]).unwrap();
        let mut rest = 0u32.to_le_bytes().to_vec();
        rest.extend_from_slice(bloom.as_slice());
        let mut stored = MAGIC.to_vec();
        stored.push(FORMAT);
        stored.extend_from_slice(&crc32c::crc32c(&rest).to_le_bytes());
        stored.extend_from_slice(&rest);
        assert_eq!(
            IdFilter::decode(&stored).err(),
            Some("hashing differs from this build")
        );
    }

    fn segment_body(ids: &[String]) -> Bytes {
        let lines: Vec<String> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                serde_json::json!({
                    "seq": 1_000_000 + n as u64, "messageId": id, "conversationId": "c1",
                    "senderUserId": "ann", "senderDisplayName": "Ann", "senderRole": "user",
                    "type": "text", "body": "hi", "clientTimestamp": "t",
                    "serverReceivedAt": "1970-01-01T00:00:01Z"
                })
                .to_string()
            })
            .collect();
        Bytes::from(lines.join("\n") + "\n")
    }

    #[tokio::test]
    async fn a_missing_or_corrupt_filter_is_built_from_its_segment_and_stored() {
        let store = crate::test_support::MemoryStore::default();
        let conversation = crate::domain::ConversationId::parse("c1").unwrap();
        let segment = keys::batch_for_seq(&conversation, 1_000_000);
        let filter_key = keys::id_filter(&segment).unwrap();
        let inserted = ids(3);
        store
            .put(&segment, segment_body(&inserted), "application/x-ndjson")
            .await
            .unwrap();
        let Loaded::Filter(built, Some(messages)) =
            load_or_build(&store, &segment, true).await.unwrap()
        else {
            panic!("built from the segment");
        };
        assert_eq!(messages.len(), 3);
        assert!(inserted.iter().all(|id| built.may_contain(id)));
        let written = store.get(&filter_key).await.unwrap().expect("stored");
        assert_eq!(written, built.encode());

        let Loaded::Filter(_, None) = load_or_build(&store, &segment, true).await.unwrap() else {
            panic!("read from its stored filter");
        };

        // Altered to claim nothing: refused by its checksum, rebuilt.
        let empty = IdFilter::with_capacity(2000).encode().to_vec();
        assert_eq!(empty.len(), written.len(), "both sized for a segment");
        let mut forged = written[..HEADER].to_vec();
        forged.extend_from_slice(&empty[HEADER..]);
        store
            .put(&filter_key, Bytes::from(forged), "application/octet-stream")
            .await
            .unwrap();
        let Loaded::Filter(rebuilt, Some(_)) = load_or_build(&store, &segment, true).await.unwrap()
        else {
            panic!("a corrupt filter is rebuilt, not trusted");
        };
        assert!(inserted.iter().all(|id| rebuilt.may_contain(id)));
        let stored = store.get(&filter_key).await.unwrap().unwrap();
        assert!(IdFilter::decode(&stored).is_ok(), "and stored again");

        store.delete(std::slice::from_ref(&segment)).await.unwrap();
        store.delete(&[filter_key]).await.unwrap();
        assert!(matches!(
            load_or_build(&store, &segment, true).await.unwrap(),
            Loaded::Vanished
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_or_are_refused_without_a_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
            hashes in proptest::num::u32::ANY,
            bits in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            if let Ok(filter) = IdFilter::decode(&bytes) {
                let _ = filter.may_contain("x");
            }
            // Well framed (magic, checksum, the crate's header) with any
            // hash count and bitmap, zero-length included.
            let mut rest = 0u32.to_le_bytes().to_vec();
            rest.push(1);
            rest.extend_from_slice(&(bits.len() as u64).to_le_bytes());
            rest.extend_from_slice(&hashes.to_le_bytes());
            rest.extend_from_slice(&[9; 32]);
            rest.extend_from_slice(&bits);
            let mut framed = MAGIC.to_vec();
            framed.push(FORMAT);
            framed.extend_from_slice(&crc32c::crc32c(&rest).to_le_bytes());
            framed.extend_from_slice(&rest);
            if let Ok(filter) = IdFilter::decode(&framed) {
                let _ = filter.may_contain("x");
            }
        }

        #[test]
        fn a_changed_byte_is_never_trusted(at in 0usize..4096, flip in 1u8..=255) {
            let encoded = IdFilter::of_ids(100, ids(20).iter().map(String::as_str)).encode();
            let mut changed = encoded.to_vec();
            let at = at % changed.len();
            changed[at] ^= flip;
            proptest::prop_assert!(IdFilter::decode(&changed).is_err());
        }
    }
}
