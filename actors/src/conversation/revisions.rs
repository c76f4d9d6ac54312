//! Edits and soft deletes, kept as `revisions.json` (messageId → revision)
//! and laid over messages wherever they are read, so batches stay
//! append-only and Chats3's layout is untouched.
//!
//! A revision names its message's sequence too and applies only to the
//! message with that id *and* that sequence: an id another sender reused
//! (history written before ids were unique) never carries an edit across.
//! Revisions written before they named a sequence are attributed once, at
//! load, to the newest loaded message with their id (the one the old code
//! edited); until then they apply to no system message.

pub(crate) use crate::domain::Revision;
use crate::domain::{Message, Role, SequencedMessage};
use std::collections::HashMap;

/// Every revision of a conversation.
pub(crate) type Revisions = HashMap<String, Revision>;

/// How long after sending its author may change a message.
pub const EDIT_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Applies a message's revision, if any.
pub(crate) fn overlay(revisions: &Revisions, message: &mut SequencedMessage) {
    if let Some(r) = revisions.get(&message.message.message_id)
        && applies_to(r, message)
    {
        apply(r, &mut message.message);
    }
}

fn applies_to(revision: &Revision, message: &SequencedMessage) -> bool {
    match revision.seq {
        Some(seq) => seq == message.seq,
        None => message.message.sender_role != Role::System,
    }
}

/// Gives revisions without a sequence the newest of `loaded` (oldest
/// first) with their id that is not a system message. Returns whether any
/// changed, so the file is rewritten with them.
pub(crate) fn attribute_legacy(revisions: &mut Revisions, loaded: &[SequencedMessage]) -> bool {
    let mut changed = false;
    for m in loaded.iter().rev() {
        if m.message.sender_role == Role::System {
            continue;
        }
        if let Some(r) = revisions.get_mut(&m.message.message_id)
            && r.seq.is_none()
        {
            r.seq = Some(m.seq);
            changed = true;
        }
    }
    changed
}

/// Writes a revision into a message.
pub(crate) fn apply(revision: &Revision, message: &mut Message) {
    message.body = revision.body.clone();
    message.edited_at = revision.edited_at.clone();
    message.deleted = revision.deleted_at.as_ref().map(|_| true);
    message.deleted_at = revision.deleted_at.clone();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64, id: &str, role: Role) -> SequencedMessage {
        SequencedMessage::sample(seq, id, role)
    }

    fn edit(seq: Option<u64>) -> Revision {
        Revision {
            body: "edited".into(),
            edited_at: Some("t".into()),
            deleted_at: None,
            seq,
        }
    }

    #[test]
    fn a_revision_reaches_only_the_message_with_its_sequence() {
        let revisions = Revisions::from([("m".to_owned(), edit(Some(2)))]);
        let mut victim = message(1, "m", Role::User);
        let mut own = message(2, "m", Role::User);
        overlay(&revisions, &mut victim);
        overlay(&revisions, &mut own);
        assert_eq!(victim.message.body, "original");
        assert_eq!(own.message.body, "edited");
    }

    #[test]
    fn old_revisions_go_to_the_newest_loaded_user_message_and_never_to_system_ones() {
        let mut revisions =
            Revisions::from([("m".to_owned(), edit(None)), ("s".to_owned(), edit(None))]);
        let mut system = message(5, "s", Role::System);
        overlay(&revisions, &mut system);
        assert_eq!(system.message.body, "original");
        let loaded = [
            message(1, "m", Role::User),
            message(3, "m", Role::User),
            message(5, "s", Role::System),
        ];
        assert!(attribute_legacy(&mut revisions, &loaded));
        assert_eq!(revisions["m"].seq, Some(3));
        assert_eq!(revisions["s"].seq, None);
        assert!(!attribute_legacy(&mut revisions, &loaded));
    }
}
