//! What the server sends up a WebSocket: one text frame per stream item,
//! `{"seq": N, "event": {...}}`, where `event` is exactly the JSON of the
//! SSE block's `data:` line and `seq` the value of its `id:` line (`null`
//! where the block has none).

use crate::http::event_stream::feed::Item;
use bytes::Bytes;

/// The text frame's payload of `item`; `None` for a heartbeat, which is
/// a ping.
pub(super) fn text(item: Item) -> Option<Bytes> {
    match item {
        Item::Event(frame) => Some(frame.ws()),
        Item::Control(block) => Some(from_sse(&block)),
        Item::Heartbeat => None,
    }
}

/// `{"seq":N,"event":DATA}` of an SSE block `id: N\ndata: DATA\n\n`.
fn from_sse(block: &[u8]) -> Bytes {
    let mut seq: Option<u64> = None;
    let mut data: &[u8] = b"null";
    for line in block.split(|b| *b == b'\n') {
        if let Some(id) = line.strip_prefix(b"id: ") {
            seq = std::str::from_utf8(id).ok().and_then(|id| id.parse().ok());
        } else if let Some(json) = line.strip_prefix(b"data: ") {
            data = json;
        }
    }
    let head = match seq {
        Some(seq) => format!("{{\"seq\":{seq},\"event\":"),
        None => "{\"seq\":null,\"event\":".to_owned(),
    };
    let mut frame = Vec::with_capacity(head.len() + data.len() + 1);
    frame.extend_from_slice(head.as_bytes());
    frame.extend_from_slice(data);
    frame.push(b'}');
    Bytes::from(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parsed(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn a_control_block_becomes_its_data_with_its_id_as_seq() {
        let block = b"id: 12\ndata: {\"type\":\"system\",\"data\":\"connected\"}\n\n";
        assert_eq!(
            parsed(&from_sse(block)),
            json!({"seq": 12, "event": {"type": "system", "data": "connected"}})
        );
        let without_id = b"data: {\"type\":\"resync\"}\n\n";
        assert_eq!(
            parsed(&from_sse(without_id)),
            json!({"seq": null, "event": {"type": "resync"}})
        );
    }

    #[test]
    fn a_heartbeat_has_no_text_frame() {
        assert!(text(Item::Heartbeat).is_none());
        let frame = text(Item::Control(Bytes::from_static(b"id: 1\ndata: 5\n\n"))).unwrap();
        assert_eq!(parsed(&frame), json!({"seq": 1, "event": 5}));
    }
}
