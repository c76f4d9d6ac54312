//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, never
//! in a release build): the decoders of stored bytes that are otherwise
//! private to the crate.

use crate::domain::SequencedMessage;

/// Reads one stored NDJSON history object named after `epoch_ms`.
pub fn parse_history_batch(epoch_ms: i64, body: &[u8]) -> Vec<SequencedMessage> {
    crate::ndjson::parse_batch(epoch_ms, "fuzz", body)
}
