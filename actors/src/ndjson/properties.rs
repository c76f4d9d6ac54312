//! Properties of the NDJSON codec: what is encoded reads back the same, a
//! corrupt or torn line costs only itself, and no bytes or key make the
//! reader panic.

use super::{encode_lines, parse_batch};
use crate::domain::{Message, MessageType, Role, SequencedMessage};
use proptest::prelude::*;

fn message() -> impl Strategy<Value = SequencedMessage> {
    (
        any::<u64>(),
        "[a-z0-9-]{1,36}",
        "\\PC{0,80}",
        proptest::option::of("\\PC{0,20}"),
        proptest::sample::select(vec![
            MessageType::Text,
            MessageType::File,
            MessageType::System,
        ]),
        proptest::sample::select(vec![Role::User, Role::Admin, Role::System]),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |(seq, id, body, filename, kind, role, deleted)| SequencedMessage {
                seq,
                message: Message {
                    message_id: id,
                    conversation_id: "c".into(),
                    sender_user_id: "u".into(),
                    sender_display_name: "U \" \\ <b>".into(),
                    sender_avatar_url: None,
                    sender_role: role,
                    kind,
                    body,
                    client_timestamp: "2025-01-01T00:00:00Z".into(),
                    server_received_at: "2025-01-01T00:00:00.000Z".into(),
                    attachment_id: None,
                    filename,
                    mimetype: None,
                    url: None,
                    edited_at: None,
                    deleted,
                    deleted_at: None,
                },
            },
        )
}

/// The lines of an encoded batch, without their newlines.
fn lines_of(body: &[u8]) -> Vec<Vec<u8>> {
    body.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

proptest! {
    #[test]
    fn encoded_messages_read_back_the_same(messages in proptest::collection::vec(message(), 0..12), epoch in any::<i64>()) {
        let body = encode_lines(&messages);
        prop_assert_eq!(parse_batch(epoch, "k", &body), messages);
    }

    #[test]
    fn a_corrupt_line_costs_only_itself(
        messages in proptest::collection::vec(message(), 1..12),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        torn in any::<bool>(),
    ) {
        let mut lines = lines_of(&encode_lines(&messages));
        let which = which.index(lines.len());
        let line = &mut lines[which];
        let at = at.index(line.len());
        if torn {
            line.truncate(at);
        } else {
            line[at] = 0xff;
        }
        let mut body = lines.join(&b'\n');
        body.push(b'\n');
        let mut expected = messages.clone();
        expected.remove(which);
        prop_assert_eq!(parse_batch(0, "k", &body), expected);
    }

    #[test]
    fn any_bytes_and_key_time_read_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..600), epoch in any::<i64>()) {
        let lines = body.split(|b| *b == b'\n').count();
        prop_assert!(parse_batch(epoch, "k", &body).len() <= lines);
    }

    #[test]
    fn lines_without_a_seq_are_ordered_by_their_key_time_and_place(
        messages in proptest::collection::vec(message(), 1..8),
        epoch in any::<i64>(),
    ) {
        let body: Vec<u8> = messages
            .iter()
            .flat_map(|m| {
                let mut line = serde_json::to_vec(&m.message).unwrap_or_default();
                line.push(b'\n');
                line
            })
            .collect();
        let parsed = parse_batch(epoch, "k", &body);
        prop_assert_eq!(parsed.len(), messages.len());
        for pair in parsed.windows(2) {
            prop_assert!(pair[0].seq <= pair[1].seq);
        }
    }
}

/// Found by `any_bytes_and_key_time_read_without_panicking`: a key named
/// after a huge time overflowed the derived seq (a panic in debug builds, a
/// wrapped, out-of-order seq in release).
#[test]
fn a_key_named_after_a_huge_time_reads_with_saturated_seqs() {
    let line = br#"{"messageId":"m","conversationId":"c","senderUserId":"u","senderDisplayName":"U","senderRole":"user","type":"text","body":"b","clientTimestamp":"","serverReceivedAt":""}"#;
    let mut body = line.to_vec();
    body.push(b'\n');
    body.extend_from_slice(line);
    let parsed = parse_batch(i64::MAX, "k", &body);
    assert_eq!(
        parsed.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![u64::MAX, u64::MAX]
    );
}
