//! The NDJSON codec of message objects: one JSON line per message, each
//! carrying its `seq` (Chats3's lines have none; theirs is derived from the
//! object's key). Shared by the flusher, history reads and compaction.

use crate::domain::{SequencedMessage, StoredMessage};
use bytes::Bytes;

/// Parses one batch object. Lines that do not parse are skipped with a
/// warning rather than making the whole history unreadable.
pub(crate) fn parse_batch(epoch_ms: i64, key: &str, body: &[u8]) -> Vec<SequencedMessage> {
    // The time comes from an object's key: one named after a time past
    // year 584 million must still read, so the derived seq saturates.
    let base = u64::try_from(epoch_ms).unwrap_or(0).saturating_mul(1000);
    body.split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .enumerate()
        .filter_map(
            |(index, line)| match serde_json::from_slice::<StoredMessage>(line) {
                Ok(stored) => Some(SequencedMessage {
                    seq: stored
                        .seq
                        .unwrap_or_else(|| base.saturating_add(index as u64)),
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

/// One NDJSON object: a line per message, each carrying its `seq`.
pub(crate) fn encode_lines(messages: &[SequencedMessage]) -> Bytes {
    let mut body = Vec::with_capacity(messages.len() * 256);
    for m in messages {
        let line = StoredMessage {
            seq: Some(m.seq),
            message: m.message.clone(),
        };
        if serde_json::to_writer(&mut body, &line).is_ok() {
            body.push(b'\n');
        }
    }
    Bytes::from(body)
}

#[cfg(test)]
mod properties;
