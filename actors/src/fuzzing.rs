//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, never
//! in a release build): the decoders of stored bytes that are otherwise
//! private to the crate.

use crate::domain::SequencedMessage;

/// Reads one stored NDJSON history object named after `epoch_ms`.
pub fn parse_history_batch(epoch_ms: i64, body: &[u8]) -> Vec<SequencedMessage> {
    crate::ndjson::parse_batch(epoch_ms, "fuzz", body)
}

/// Reads one stored id filter; a filter that decodes asks about an id
/// without a panic and encodes back to the same bytes. Answers whether it
/// decoded.
pub fn decode_id_filter(stored: &[u8]) -> bool {
    match crate::id_filter::IdFilter::decode(stored) {
        Ok(filter) => {
            let _ = filter.may_contain("fuzz");
            assert_eq!(
                filter.encode().as_ref(),
                stored,
                "a decoded filter re-encodes as read"
            );
            true
        }
        Err(_) => false,
    }
}
