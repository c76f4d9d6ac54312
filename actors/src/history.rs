//! Reading message history back from storage.
//!
//! Batches are NDJSON objects named `{epochMillis}-{uuid}.ndjson`. Lines this
//! service wrote carry a `seq`; the writer guarantees every message of a
//! batch has a lower `seq` than any message of a batch with a larger
//! epochMillis, so key order is history order. Chats3's one-message files
//! have no `seq`: theirs is derived from the key (`epochMillis × 1000` plus
//! the line index), which orders them as Chats3 does.

use crate::domain::{ConversationId, SequencedMessage, StoredMessage};
use crate::store::{Store, StoreError, keys};

/// Which side of a sequence number to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Messages with `seq < bound`, newest first.
    Before(u64),
    /// Messages with `seq > bound`, oldest first.
    After(u64),
}

/// The batch keys of a conversation in history order.
pub async fn batch_keys(
    store: &dyn Store,
    id: &ConversationId,
) -> Result<Vec<(i64, String)>, StoreError> {
    let mut keys: Vec<(i64, String)> = store
        .list(&keys::messages_prefix(id))
        .await?
        .into_iter()
        .filter_map(|k| {
            keys::batch_epoch_ms(&k)
                .filter(|ms| *ms >= 0)
                .map(|ms| (ms, k))
        })
        .collect();
    keys.sort();
    Ok(keys)
}

/// Parses one batch object. Lines that do not parse are skipped with a
/// warning rather than making the whole history unreadable.
pub fn parse_batch(epoch_ms: i64, key: &str, body: &[u8]) -> Vec<SequencedMessage> {
    let base = u64::try_from(epoch_ms).unwrap_or(0) * 1000;
    body.split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .enumerate()
        .filter_map(
            |(index, line)| match serde_json::from_slice::<StoredMessage>(line) {
                Ok(stored) => Some(SequencedMessage {
                    seq: stored.seq.unwrap_or(base + index as u64),
                    message: stored.message,
                }),
                Err(e) => {
                    tracing::warn!(key, error = %e, "skipping unreadable history line");
                    None
                }
            },
        )
        .collect()
}

/// Reads up to `limit` messages on one side of a sequence number, touching
/// only as many batch objects as needed. Returns them in history order
/// (oldest first) and whether more exist beyond them.
///
/// A batch is named after its first message's `seq / 1000`, so batches with
/// a smaller name hold only older messages; batches sharing a name are read
/// together as one group.
pub async fn read_page(
    store: &dyn Store,
    id: &ConversationId,
    side: Side,
    limit: usize,
) -> Result<(Vec<SequencedMessage>, bool), StoreError> {
    let keys = batch_keys(store, id).await?;
    let mut groups: Vec<(u64, Vec<&str>)> = Vec::new();
    for (ms, key) in &keys {
        let base = (*ms as u64).saturating_mul(1000);
        match groups.last_mut() {
            Some((b, group)) if *b == base => group.push(key),
            _ => groups.push((base, vec![key])),
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
    for (base, group) in ordered {
        if found.len() > limit {
            break;
        }
        for key in group {
            let Some(body) = store.get(key).await? else {
                continue;
            };
            found.extend(
                parse_batch((base / 1000) as i64, key, &body)
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
    let more = found.len() > limit;
    found.truncate(limit);
    if let Side::Before(_) = side {
        found.reverse();
    }
    Ok((found, more))
}

/// The newest `limit` stored messages, oldest first, and whether older ones exist.
pub async fn read_tail(
    store: &dyn Store,
    id: &ConversationId,
    limit: usize,
) -> Result<(Vec<SequencedMessage>, bool), StoreError> {
    read_page(store, id, Side::Before(u64::MAX), limit).await
}

/// The largest epochMillis among stored batch keys, so new batches sort after.
pub async fn newest_batch_ms(
    store: &dyn Store,
    id: &ConversationId,
) -> Result<Option<i64>, StoreError> {
    Ok(batch_keys(store, id).await?.last().map(|(ms, _)| *ms))
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
