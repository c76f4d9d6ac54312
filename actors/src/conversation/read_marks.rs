//! Read marks: each user's last-read position in a conversation (the
//! message and its sequence), stored as `reads.json`
//! (`{userId: {messageId, seq}}`). A mark only moves forward, and the map
//! is bounded: past [`MAX_READERS`] users the one whose mark is oldest is
//! forgotten (they count as having read nothing).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Users with a read mark per conversation at most: several times any
/// participant limit, so only users gone long ago are forgotten.
pub(crate) const MAX_READERS: usize = 2_000;

/// One user's last-read position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadMark {
    /// The last message read.
    pub message_id: String,
    /// Its sequence.
    pub seq: u64,
}

/// The read marks of one conversation by user id.
pub(crate) type ReadMarks = BTreeMap<String, ReadMark>;

/// Whether a mark at `seq` would move `user_id`'s mark forward.
pub(crate) fn advances(marks: &ReadMarks, user_id: &str, seq: u64) -> bool {
    marks.get(user_id).is_none_or(|mark| mark.seq < seq)
}

/// Moves `user_id`'s mark forward to `mark` (a mark at or before the one
/// held changes nothing); whether it changed. Keeps the map bounded.
pub(crate) fn advance(marks: &mut ReadMarks, user_id: &str, mark: ReadMark) -> bool {
    if !advances(marks, user_id, mark.seq) {
        return false;
    }
    marks.insert(user_id.to_owned(), mark);
    while marks.len() > MAX_READERS {
        let oldest = marks
            .iter()
            .min_by_key(|(_, mark)| mark.seq)
            .map(|(user, _)| user.clone());
        match oldest {
            Some(user) => marks.remove(&user),
            None => break,
        };
    }
    true
}

/// The compact form a history page carries: `{userId: messageId}`.
pub(crate) fn readers(marks: &ReadMarks) -> BTreeMap<String, String> {
    marks
        .iter()
        .map(|(user, mark)| (user.clone(), mark.message_id.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(id: &str, seq: u64) -> ReadMark {
        ReadMark {
            message_id: id.into(),
            seq,
        }
    }

    #[test]
    fn a_mark_only_moves_forward() {
        let mut marks = ReadMarks::new();
        assert!(advance(&mut marks, "u", mark("b", 2)));
        assert!(!advance(&mut marks, "u", mark("a", 1)));
        assert!(!advance(&mut marks, "u", mark("b", 2)));
        assert_eq!(marks["u"], mark("b", 2));
        assert!(advance(&mut marks, "u", mark("c", 3)));
        assert_eq!(readers(&marks)["u"], "c");
    }

    #[test]
    fn the_oldest_mark_goes_past_the_bound() {
        let mut marks = ReadMarks::new();
        for n in 0..=MAX_READERS as u64 {
            advance(&mut marks, &format!("u{n}"), mark("m", n + 1));
        }
        assert_eq!(marks.len(), MAX_READERS);
        assert!(!marks.contains_key("u0"));
        assert!(marks.contains_key(&format!("u{MAX_READERS}")));
    }
}
