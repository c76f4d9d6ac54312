//! NDJSON history reading: any object body and key time reads without a
//! panic; a line that does not parse is skipped, so no more messages come
//! back than the body has lines.
#![no_main]

use chats3_actors::fuzzing::parse_history_batch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (epoch, body) = match data.split_at_checked(8) {
        Some((head, body)) => (
            i64::from_le_bytes(head.try_into().unwrap_or_default()),
            body,
        ),
        None => (0, data),
    };
    let lines = body.split(|b| *b == b'\n').count();
    assert!(parse_history_batch(epoch, body).len() <= lines);
});
