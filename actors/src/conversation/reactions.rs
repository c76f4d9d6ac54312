//! Reactions: `{messageId: {emoji: [userId…]}}`, one emoji per user per
//! message, stored as `reactions.json` exactly as Chats3 writes it.

use std::collections::BTreeMap;

/// The reaction map of one conversation.
pub type ReactionMap = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// Adds (replacing the user's other emojis on that message) or removes one
/// reaction. Returns whether anything changed. Empty entries are dropped.
pub(crate) fn apply(
    map: &mut ReactionMap,
    message_id: &str,
    user_id: &str,
    emoji: &str,
    added: bool,
) -> bool {
    let before = map.get(message_id).cloned();
    let entry = map.entry(message_id.to_owned()).or_default();
    if added {
        for (e, users) in entry.iter_mut() {
            if e != emoji {
                users.retain(|u| u != user_id);
            }
        }
        let users = entry.entry(emoji.to_owned()).or_default();
        if !users.iter().any(|u| u == user_id) {
            users.push(user_id.to_owned());
        }
    } else if let Some(users) = entry.get_mut(emoji) {
        users.retain(|u| u != user_id);
    }
    entry.retain(|_, users| !users.is_empty());
    if entry.is_empty() {
        map.remove(message_id);
    }
    map.get(message_id) != before.as_ref()
}

/// Whether [`apply`] would change anything.
pub(crate) fn changes(
    map: &ReactionMap,
    message_id: &str,
    user_id: &str,
    emoji: &str,
    added: bool,
) -> bool {
    let entry = map.get(message_id);
    let reacted_with = |e: &str| {
        entry
            .and_then(|emojis| emojis.get(e))
            .is_some_and(|users| users.iter().any(|u| u == user_id))
    };
    if added {
        let elsewhere = entry.is_some_and(|emojis| {
            emojis
                .iter()
                .any(|(e, users)| e != emoji && users.iter().any(|u| u == user_id))
        });
        !reacted_with(emoji) || elsewhere
    } else {
        reacted_with(emoji)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_tells_what_apply_would_do() {
        let mut map = ReactionMap::new();
        let steps = [
            ("m", "u", "a", true),
            ("m", "u", "a", true),
            ("m", "u", "b", true),
            ("m", "v", "b", true),
            ("m", "u", "a", false),
            ("m", "u", "b", false),
            ("m", "u", "b", false),
            ("n", "u", "a", false),
        ];
        for (message, user, emoji, added) in steps {
            let predicted = changes(&map, message, user, emoji, added);
            assert_eq!(apply(&mut map, message, user, emoji, added), predicted);
        }
    }

    #[test]
    fn one_emoji_per_user_per_message() {
        let mut map = ReactionMap::new();
        assert!(apply(&mut map, "m", "u1", "👍", true));
        assert!(
            !apply(&mut map, "m", "u1", "👍", true),
            "adding is idempotent"
        );
        assert!(apply(&mut map, "m", "u2", "👍", true));
        assert!(apply(&mut map, "m", "u1", "❤️", true));
        assert_eq!(map["m"]["👍"], vec!["u2"]);
        assert_eq!(map["m"]["❤️"], vec!["u1"]);
        assert!(
            !apply(&mut map, "m", "u1", "👍", false),
            "removes only the caller's"
        );
        apply(&mut map, "m", "u2", "👍", false);
        apply(&mut map, "m", "u1", "❤️", false);
        assert!(map.is_empty());
    }
}
