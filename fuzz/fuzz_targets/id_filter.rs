//! Stored id filters: any bytes decode or are refused without a panic
//! (no filter of zero bits or absurdly many hashes is trusted), and a
//! filter that decodes encodes back to the same bytes.
#![no_main]

use chats3_actors::fuzzing::decode_id_filter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    decode_id_filter(data);
});
