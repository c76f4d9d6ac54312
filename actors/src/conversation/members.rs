//! Who is in a conversation: users with open streams (counted per stream),
//! users who joined recently and have not opened one yet, and the streams
//! themselves so that a leave can end them.

use crate::domain::Participant;
use std::collections::HashMap;
use tokio_util::sync::CancellationToken;

/// One user known to the conversation.
#[derive(Debug)]
pub(crate) struct Member {
    pub display_name: String,
    /// Open streams of this user.
    pub connections: usize,
    /// Join time while the user has not opened a stream yet.
    pub joined_at_ms: Option<i64>,
    /// Bumped on every close so a stale grace timer does nothing.
    pub generation: u64,
    /// Set by an explicit leave so the grace timer sends no second `peer-leave`.
    pub left: bool,
    /// Order of first appearance, for a stable `room-state`.
    order: u64,
}

/// An open stream.
#[derive(Debug)]
struct Stream {
    user_id: String,
    session_id: String,
    cancel: CancellationToken,
}

/// Participants and streams of one conversation.
#[derive(Debug, Default)]
pub(crate) struct Members {
    members: HashMap<String, Member>,
    streams: HashMap<u64, Stream>,
    next_stream: u64,
    next_order: u64,
}

impl Members {
    /// Users that count toward the participant limit: an open stream, or a
    /// join within `hold_ms` without a stream yet.
    pub(crate) fn counted(&self, now_ms: i64, hold_ms: i64) -> usize {
        self.members
            .values()
            .filter(|m| m.connections > 0 || m.joined_at_ms.is_some_and(|t| now_ms - t < hold_ms))
            .count()
    }

    /// Whether an active participant (open stream) already uses this name,
    /// compared case-insensitively after trimming.
    pub(crate) fn name_taken(&self, display_name: &str) -> bool {
        let wanted = display_name.trim().to_lowercase();
        self.members
            .values()
            .any(|m| m.connections > 0 && m.display_name.trim().to_lowercase() == wanted)
    }

    /// Records a join that has not opened a stream yet.
    pub(crate) fn joined(&mut self, user_id: &str, display_name: &str, now_ms: i64) {
        let member = self.entry(user_id, display_name);
        member.joined_at_ms = Some(now_ms);
        member.left = false;
    }

    fn entry(&mut self, user_id: &str, display_name: &str) -> &mut Member {
        let order = self.next_order;
        let member = self
            .members
            .entry(user_id.to_owned())
            .or_insert_with(|| Member {
                display_name: display_name.to_owned(),
                connections: 0,
                joined_at_ms: None,
                generation: 0,
                left: false,
                order,
            });
        if member.order == order {
            self.next_order += 1;
        }
        member.display_name = display_name.to_owned();
        member
    }

    /// Streams a session holds open.
    pub(crate) fn streams_of_session(&self, session_id: &str) -> usize {
        self.streams
            .values()
            .filter(|s| s.session_id == session_id)
            .count()
    }

    /// Counts a new stream; returns its id and its cancellation token, a
    /// child of `parent`.
    pub(crate) fn open_stream(
        &mut self,
        user_id: &str,
        display_name: &str,
        session_id: &str,
        parent: &CancellationToken,
    ) -> (u64, CancellationToken) {
        let member = self.entry(user_id, display_name);
        member.connections += 1;
        member.joined_at_ms = None;
        member.left = false;
        member.generation += 1;
        let id = self.next_stream;
        self.next_stream += 1;
        let cancel = parent.child_token();
        self.streams.insert(
            id,
            Stream {
                user_id: user_id.to_owned(),
                session_id: session_id.to_owned(),
                cancel: cancel.clone(),
            },
        );
        (id, cancel)
    }

    /// Uncounts a stream. Returns the user's new generation when that was
    /// their last stream (a `peer-leave` grace timer should start).
    pub(crate) fn close_stream(&mut self, stream_id: u64) -> Option<(String, u64)> {
        let stream = self.streams.remove(&stream_id)?;
        let member = self.members.get_mut(&stream.user_id)?;
        member.connections = member.connections.saturating_sub(1);
        if member.connections > 0 {
            return None;
        }
        member.generation += 1;
        (!member.left).then_some((stream.user_id, member.generation))
    }

    /// After the grace period: true when the user is still gone (and is
    /// forgotten), so `peer-leave` goes out.
    pub(crate) fn grace_expired(&mut self, user_id: &str, generation: u64) -> bool {
        let gone = self
            .members
            .get(user_id)
            .is_some_and(|m| m.connections == 0 && m.generation == generation && !m.left);
        if gone {
            self.members.remove(user_id);
        }
        gone
    }

    /// An explicit leave: no grace `peer-leave` later; with `end_session`
    /// that session's streams are ended.
    pub(crate) fn leave(&mut self, user_id: &str, end_session: Option<&str>) {
        if let Some(m) = self.members.get_mut(user_id) {
            m.left = true;
            m.joined_at_ms = None;
        }
        if let Some(session_id) = end_session {
            for s in self.streams.values().filter(|s| s.session_id == session_id) {
                s.cancel.cancel();
            }
        }
    }

    /// Forgets joins whose hold ran out without a stream.
    pub(crate) fn expire_holds(&mut self, now_ms: i64, hold_ms: i64) {
        self.members.retain(|_, m| {
            m.connections > 0
                || match m.joined_at_ms {
                    Some(t) => now_ms - t < hold_ms,
                    // Still waiting for its grace timer.
                    None => !m.left,
                }
        });
    }

    /// Members known (joined or streaming).
    pub(crate) fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Users with an open stream, with their display names.
    pub(crate) fn streaming_users(&self) -> Vec<(String, String)> {
        self.members
            .iter()
            .filter(|(_, m)| m.connections > 0)
            .map(|(u, m)| (u.clone(), m.display_name.clone()))
            .collect()
    }

    /// Number of open streams.
    pub(crate) fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Ends every stream (shutdown or stop).
    pub(crate) fn cancel_all(&self) {
        for s in self.streams.values() {
            s.cancel.cancel();
        }
    }

    /// Active participants for `room-state`, in order of first appearance.
    pub(crate) fn participants(&self, me: &str) -> Vec<Participant> {
        let mut active: Vec<(&String, &Member)> = self
            .members
            .iter()
            .filter(|(_, m)| m.connections > 0)
            .collect();
        active.sort_by_key(|(_, m)| m.order);
        active
            .into_iter()
            .map(|(id, m)| Participant {
                user_id: id.clone(),
                display_name: m.display_name.clone(),
                is_me: id == me,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_counts_streams_and_recent_joins() {
        let mut m = Members::default();
        m.joined("a", "Ann", 0);
        m.open_stream("b", "Bob", "s-b", &CancellationToken::new());
        assert_eq!(m.counted(1_000, 60_000), 2);
        assert_eq!(m.counted(61_000, 60_000), 1);
        assert!(m.name_taken(" bob "));
        assert!(!m.name_taken("ann"), "only open streams hold a name");
    }

    #[test]
    fn last_stream_close_starts_grace_and_reconnect_cancels_it() {
        let mut m = Members::default();
        let (s1, _) = m.open_stream("a", "Ann", "s", &CancellationToken::new());
        let (s2, _) = m.open_stream("a", "Ann", "s", &CancellationToken::new());
        assert_eq!(m.close_stream(s1), None);
        let (user, generation) = m.close_stream(s2).unwrap();
        assert_eq!(user, "a");
        let (s3, _) = m.open_stream("a", "Ann", "s", &CancellationToken::new());
        assert!(!m.grace_expired("a", generation));
        let (_, g2) = m.close_stream(s3).unwrap();
        assert!(m.grace_expired("a", g2));
        assert!(m.participants("a").is_empty());
    }

    #[test]
    fn leave_ends_the_sessions_streams() {
        let mut m = Members::default();
        let (_, token) = m.open_stream("a", "Ann", "s1", &CancellationToken::new());
        let (_, other) = m.open_stream("a", "Ann", "s2", &CancellationToken::new());
        m.leave("a", Some("s1"));
        assert!(token.is_cancelled());
        assert!(!other.is_cancelled());
    }
}
