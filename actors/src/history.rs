//! Reading message history back from storage.
//!
//! Batches and segments are NDJSON objects named `{epochMillis}-{uuid}.ndjson`. Lines this
//! service wrote carry a `seq`; the writer guarantees every message of a
//! batch has a lower `seq` than any message of a batch with a larger
//! epochMillis, so key order is history order. Chats3's one-message files
//! have no `seq`: theirs is derived from the key (`epochMillis × 1000` plus
//! the line index), which orders them as Chats3 does.

use crate::domain::{ConversationId, SequencedMessage};
use crate::ndjson::parse_batch;
use crate::store::{Store, StoreError, keys};

/// Which side of a sequence number to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Messages with `seq < bound`, newest first.
    Before(u64),
    /// Messages with `seq > bound`, oldest first.
    After(u64),
}

/// Reads up to `limit` messages on one side of a sequence number, touching
/// only as many objects as needed (see [`crate::segments`] for how they are
/// found). Returns them in history order (oldest first) and whether more
/// exist beyond them.
///
/// An object is named after its first message's `seq / 1000`, so objects
/// with a smaller name hold only older messages; objects sharing a name are
/// read together as one group. An object that vanished between the listing
/// and the read was compacted meanwhile: the read starts over once.
pub(crate) async fn read_page(
    store: &dyn Store,
    id: &ConversationId,
    side: Side,
    limit: usize,
) -> Result<(Vec<SequencedMessage>, bool), StoreError> {
    match read_page_once(store, id, side, limit).await? {
        Some(page) => Ok(page),
        None => Ok(read_page_once(store, id, side, limit)
            .await?
            .unwrap_or_default()),
    }
}

async fn read_page_once(
    store: &dyn Store,
    id: &ConversationId,
    side: Side,
    limit: usize,
) -> Result<Option<(Vec<SequencedMessage>, bool)>, StoreError> {
    let objects = crate::segments::history_objects(store, id).await?;
    let mut groups: Vec<(u64, Vec<&str>)> = Vec::new();
    for (base, key) in &objects {
        match groups.last_mut() {
            Some((b, group)) if b == base => group.push(key),
            _ => groups.push((*base, vec![key])),
        }
    }
    let mut found: Vec<SequencedMessage> = Vec::new();
    let ordered: Box<dyn Iterator<Item = &(u64, Vec<&str>)> + Send> = match side {
        Side::Before(bound) => Box::new(groups.iter().rev().filter(move |(base, _)| *base < bound)),
        Side::After(bound) => {
            let start = groups
                .iter()
                .rposition(|(base, _)| *base <= bound)
                .unwrap_or(0);
            Box::new(groups[start..].iter())
        }
    };
    for (_, group) in ordered {
        if found.len() > limit {
            break;
        }
        for key in group {
            let Some(body) = store.get(key).await? else {
                return Ok(None);
            };
            let ms = keys::batch_epoch_ms(key).unwrap_or(0);
            found.extend(
                parse_batch(ms, key, &body)
                    .into_iter()
                    .filter(|m| match side {
                        Side::Before(bound) => m.seq < bound,
                        Side::After(bound) => m.seq > bound,
                    }),
            );
        }
    }
    match side {
        Side::Before(_) => found.sort_by_key(|m| std::cmp::Reverse(m.seq)),
        Side::After(_) => found.sort_by_key(|m| m.seq),
    }
    found.dedup_by_key(|m| m.seq);
    let more = found.len() > limit;
    found.truncate(limit);
    if let Side::Before(_) = side {
        found.reverse();
    }
    Ok(Some((found, more)))
}

/// How a [`scan_before`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanEnd {
    /// Every stored message before the bound was visited.
    Exhausted,
    /// The visitor asked to stop.
    Stopped,
    /// The budget ran out: messages before this sequence are left.
    Budget(u64),
}

/// Times a scan lists the objects again after one vanished (compacted
/// meanwhile) before it gives up.
const SCAN_RELISTS: usize = 3;

/// Visits the stored messages with `seq < bound`, newest first, reading
/// one group of objects (those sharing a name) at a time, so a scan of
/// the whole history holds one segment in memory, not the history. Stops
/// when `visit` answers `true`, or before the next group once `budget`
/// messages were visited. An object that vanished was compacted meanwhile:
/// the scan lists again and goes on below what it already visited (a few
/// times; then it ends as if the budget ran out).
pub(crate) async fn scan_before(
    store: &dyn Store,
    id: &ConversationId,
    mut bound: u64,
    budget: usize,
    mut visit: impl FnMut(SequencedMessage) -> bool + Send,
) -> Result<ScanEnd, StoreError> {
    let mut visited = 0;
    let mut relists = 0;
    'listing: loop {
        let objects = crate::segments::history_objects(store, id).await?;
        let mut groups: Vec<(u64, Vec<&str>)> = Vec::new();
        for (base, key) in objects.iter().filter(|(base, _)| *base < bound) {
            match groups.last_mut() {
                Some((b, group)) if b == base => group.push(key),
                _ => groups.push((*base, vec![key])),
            }
        }
        for (_, group) in groups.iter().rev() {
            if visited >= budget {
                return Ok(ScanEnd::Budget(bound));
            }
            let mut found: Vec<SequencedMessage> = Vec::new();
            for key in group {
                let Some(body) = store.get(key).await? else {
                    relists += 1;
                    if relists > SCAN_RELISTS {
                        // Still compacting: the caller goes on from here later.
                        return Ok(ScanEnd::Budget(bound));
                    }
                    continue 'listing;
                };
                let ms = keys::batch_epoch_ms(key).unwrap_or(0);
                found.extend(parse_batch(ms, key, &body));
            }
            let group_front = found.iter().map(|m| m.seq).min().unwrap_or(bound);
            found.retain(|m| m.seq < bound);
            found.sort_by_key(|m| std::cmp::Reverse(m.seq));
            found.dedup_by_key(|m| m.seq);
            for message in found {
                visited += 1;
                if visit(message) {
                    return Ok(ScanEnd::Stopped);
                }
            }
            // Older groups hold only messages older than any of this one's.
            bound = bound.min(group_front);
        }
        return Ok(ScanEnd::Exhausted);
    }
}

/// The newest `limit` stored messages, oldest first, and whether older ones exist.
pub(crate) async fn read_tail(
    store: &dyn Store,
    id: &ConversationId,
    limit: usize,
) -> Result<(Vec<SequencedMessage>, bool), StoreError> {
    read_page(store, id, Side::Before(u64::MAX), limit).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_lines_get_sequences_from_their_key() {
        let line = br#"{"messageId":"m","conversationId":"c","senderUserId":"u","senderDisplayName":"U","senderRole":"user","type":"text","body":"hi","clientTimestamp":"t","serverReceivedAt":"x"}"#;
        let mut body = line.to_vec();
        body.extend_from_slice(b"\nnot json\n");
        body.extend_from_slice(line);
        body.push(b'\n');
        let parsed = parse_batch(5, "k", &body);
        assert_eq!(
            parsed.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![5000, 5002]
        );
    }
}
