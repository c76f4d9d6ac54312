//! Search across the whole history, newest first: the hot tail in the
//! actor, then what is older from storage in a task, one stored object at
//! a time ([`history::scan_before`]). Each page visits at most
//! [`SCAN_BUDGET`] messages, so a rare word in a long history costs
//! several bounded requests rather than one unbounded one; and at most
//! [`CONCURRENT_SCANS`] storage scans run at once in the process.

use super::ConversationState;
use super::protocol::{Reply, SearchHit, SearchPage, SearchQuery};
use super::revisions::{self, Revisions};
use crate::domain::{Message, SequencedMessage};
use crate::error::ChatError;
use crate::history::{self, ScanEnd};
use std::borrow::Cow;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Messages one search page looks at, at most (the tail's included).
pub(crate) const SCAN_BUDGET: usize = 20_000;

/// Storage scans running at once in the process; each holds one stored
/// object (a segment: at most 4 MiB) at a time.
const CONCURRENT_SCANS: usize = 4;

/// Admits the storage scans.
static SCANS: Semaphore = Semaphore::const_new(CONCURRENT_SCANS);

impl ConversationState {
    /// Answers a page of hits: from the tail when it holds the page, else
    /// finished from storage in a task.
    pub(super) fn search(&self, query: SearchQuery, reply: Reply<SearchPage>) {
        if let Err(e) = self.meta() {
            let _ = reply.send(Err(e));
            return;
        }
        let bound = query.cursor.unwrap_or(u64::MAX);
        let mut hits = Hits::new(&query, self.revisions.clone());
        for message in self.tail.newest_before(bound) {
            if hits.visit(message) {
                let _ = reply.send(Ok(hits.page(ScanEnd::Stopped)));
                return;
            }
        }
        let front = self.tail.front_seq().unwrap_or(u64::MAX).min(bound);
        if self.tail.is_complete() || front == 0 {
            let _ = reply.send(Ok(hits.page(ScanEnd::Exhausted)));
            return;
        }
        let store = self.args.store.clone();
        let id = self.args.id.clone();
        tokio::spawn(async move {
            // The semaphore is never closed, so the permit always comes.
            let _permit = SCANS.acquire().await.ok();
            let budget = SCAN_BUDGET.saturating_sub(hits.visited);
            let result =
                history::scan_before(store.as_ref(), &id, front, budget, |m| hits.visit(&m))
                    .await
                    .map(|end| hits.page(end))
                    .map_err(ChatError::from);
            let _ = reply.send(result);
        });
    }
}

/// The hits of one page as the scan finds them.
struct Hits {
    needle: Needle,
    revisions: Arc<Revisions>,
    limit: usize,
    found: Vec<SearchHit>,
    visited: usize,
    /// The sequence of the oldest message visited.
    oldest: Option<u64>,
}

impl Hits {
    fn new(query: &SearchQuery, revisions: Arc<Revisions>) -> Self {
        Hits {
            needle: Needle::new(&query.text),
            revisions,
            limit: query.limit.max(1),
            found: Vec::new(),
            visited: 0,
            oldest: None,
        }
    }

    /// Looks at the next older message; `true` once the page holds one
    /// hit more than its limit (so whether more exist is known) or the
    /// budget is spent.
    fn visit(&mut self, message: &SequencedMessage) -> bool {
        self.visited += 1;
        self.oldest = Some(message.seq);
        let shown = if self.revisions.contains_key(&message.message.message_id) {
            let mut revised = message.clone();
            revisions::overlay(&self.revisions, &mut revised);
            Cow::Owned(revised)
        } else {
            Cow::Borrowed(message)
        };
        if self.needle.found_in(&shown.message) {
            self.found.push(SearchHit {
                seq: shown.seq,
                message: shown.into_owned().message,
            });
        }
        self.found.len() > self.limit || self.visited >= SCAN_BUDGET
    }

    /// The page, once the scan ended.
    fn page(mut self, end: ScanEnd) -> SearchPage {
        if self.found.len() > self.limit {
            self.found.truncate(self.limit);
            let next = self.found.last().map(|h| h.seq);
            return SearchPage {
                hits: self.found,
                next_cursor: next,
                has_more: true,
            };
        }
        let next_cursor = match end {
            ScanEnd::Exhausted => None,
            ScanEnd::Budget(bound) => Some(bound),
            // Stopped with no extra hit: the budget ran out in the tail or
            // in a stored object, at the oldest message visited.
            ScanEnd::Stopped => self.oldest.filter(|&seq| seq > 0),
        };
        SearchPage {
            hits: self.found,
            next_cursor,
            has_more: next_cursor.is_some(),
        }
    }
}

/// What a search looks for: the query lowercased, matched against each
/// message's text and file name lowercased, deleted messages never.
struct Needle {
    lower: String,
    /// The lowercased copy of an ASCII text, reused across messages.
    scratch: String,
}

impl Needle {
    fn new(text: &str) -> Self {
        Needle {
            lower: text.to_lowercase(),
            scratch: String::new(),
        }
    }

    fn found_in(&mut self, message: &Message) -> bool {
        if message.deleted == Some(true) || self.lower.is_empty() {
            return false;
        }
        self.in_text(&message.body)
            || message
                .filename
                .as_deref()
                .is_some_and(|name| self.in_text(name))
    }

    fn in_text(&mut self, text: &str) -> bool {
        if text.len() < self.lower.len() && text.is_ascii() {
            return false;
        }
        if text.is_ascii() {
            self.scratch.clear();
            self.scratch.push_str(text);
            self.scratch.make_ascii_lowercase();
            self.scratch.contains(self.lower.as_str())
        } else {
            text.to_lowercase().contains(self.lower.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    fn message(seq: u64, body: &str) -> SequencedMessage {
        let mut m = SequencedMessage::sample(seq, &format!("m{seq}"), Role::User);
        m.message.body = body.into();
        m
    }

    fn query(text: &str, limit: usize) -> SearchQuery {
        SearchQuery {
            text: text.into(),
            cursor: None,
            limit,
        }
    }

    #[test]
    fn matching_ignores_case_in_any_script_and_skips_deleted_messages() {
        let mut needle = Needle::new("ÄPFEL");
        assert!(needle.found_in(&message(1, "grüne äpfel").message));
        let mut needle = Needle::new("Hello");
        assert!(needle.found_in(&message(1, "say HELLO there").message));
        assert!(!needle.found_in(&message(1, "help").message));
        let mut gone = message(2, "hello");
        gone.message.deleted = Some(true);
        assert!(!needle.found_in(&gone.message));
        let mut file = message(3, "");
        file.message.filename = Some("Hello-report.pdf".into());
        assert!(needle.found_in(&file.message));
    }

    #[test]
    fn a_full_page_points_past_its_oldest_hit() {
        let mut hits = Hits::new(&query("x", 2), Arc::default());
        let mut stopped = false;
        for seq in (1..=10).rev() {
            if hits.visit(&message(seq, if seq % 2 == 0 { "x" } else { "y" })) {
                stopped = true;
                break;
            }
        }
        assert!(stopped);
        let page = hits.page(ScanEnd::Stopped);
        assert_eq!(page.hits.iter().map(|h| h.seq).collect::<Vec<_>>(), [10, 8]);
        assert_eq!((page.next_cursor, page.has_more), (Some(8), true));
    }

    #[test]
    fn an_exhausted_scan_ends_the_search_and_a_spent_budget_goes_on() {
        let mut hits = Hits::new(&query("x", 5), Arc::default());
        hits.visit(&message(3, "x"));
        let page = hits.page(ScanEnd::Exhausted);
        assert_eq!((page.hits.len(), page.next_cursor), (1, None));
        assert!(!page.has_more);
        let hits = Hits::new(&query("x", 5), Arc::default());
        let page = hits.page(ScanEnd::Budget(42));
        assert_eq!((page.next_cursor, page.has_more), (Some(42), true));
    }

    #[test]
    fn edits_are_searched_as_history_shows_them() {
        let revisions = Revisions::from([(
            "m1".to_owned(),
            revisions::Revision {
                body: "now about pears".into(),
                edited_at: Some("t".into()),
                deleted_at: None,
                seq: Some(1),
            },
        )]);
        let mut hits = Hits::new(&query("pears", 5), Arc::new(revisions));
        hits.visit(&message(1, "about apples"));
        let page = hits.page(ScanEnd::Exhausted);
        assert_eq!(page.hits[0].message.body, "now about pears");
    }
}
