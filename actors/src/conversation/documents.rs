//! Small JSON objects a conversation rewrites whole (`reactions.json`,
//! `revisions.json`, `reads.json`): the latest state wins, one write is in flight at a
//! time, changes wait for one scheduled write (so a burst of reactions
//! costs one serialization of the map, not one per reaction), and a failed
//! write is retried. At stop the write in flight is
//! awaited before the final state is written, so an older write can never
//! land over a newer one.

use super::protocol::Internal;
use super::{ConversationMsg, ConversationState};
use crate::error::Report;
use crate::log_needs::NONE;
use crate::store::keys;
use bytes::Bytes;
use ractor::ActorRef;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long a failed document write waits before it is tried again.
const DOCUMENT_RETRY: Duration = Duration::from_secs(1);

/// Which document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DocumentKind {
    Reactions,
    Revisions,
    ReadMarks,
}

/// Every document, in the order they are saved at stop.
const KINDS: [DocumentKind; 3] = [
    DocumentKind::Reactions,
    DocumentKind::Revisions,
    DocumentKind::ReadMarks,
];

/// Save bookkeeping of one document.
#[derive(Debug)]
pub(crate) struct Document {
    version: u64,
    saved: u64,
    saving: bool,
    /// A write is scheduled; changes until then join it.
    scheduled: bool,
    /// The write in flight: its version and its task (which yields success).
    in_flight: Option<(u64, JoinHandle<bool>)>,
    /// The log need of the oldest change no write has taken yet.
    unsaved_need: u64,
    /// The log need of the oldest change the write in flight takes.
    writing_need: u64,
}

impl Default for Document {
    fn default() -> Self {
        Document {
            version: 0,
            saved: 0,
            saving: false,
            scheduled: false,
            in_flight: None,
            unsaved_need: NONE,
            writing_need: NONE,
        }
    }
}

impl Document {
    /// The document changed in memory; `need` bounds the change's log
    /// position (`NONE` for a change that is not logged).
    pub(crate) fn touch(&mut self, need: u64) {
        self.version += 1;
        self.unsaved_need = self.unsaved_need.min(need);
    }

    /// The oldest log position a change not yet saved needs.
    pub(crate) fn need(&self) -> u64 {
        self.unsaved_need.min(self.writing_need)
    }

    /// Whether a write must be scheduled for a change (none is yet).
    pub(crate) fn schedule(&mut self) -> bool {
        !std::mem::replace(&mut self.scheduled, true)
    }

    /// The scheduled write is due.
    pub(crate) fn due(&mut self) {
        self.scheduled = false;
    }

    /// Whether a write should start now; if so, marks it in flight and
    /// returns the version being written.
    pub(crate) fn begin(&mut self) -> Option<u64> {
        if self.saving || self.saved == self.version {
            return None;
        }
        self.saving = true;
        self.writing_need = std::mem::replace(&mut self.unsaved_need, NONE);
        Some(self.version)
    }

    /// Keeps the task writing the version `begin` returned.
    pub(crate) fn writing(&mut self, version: u64, task: JoinHandle<bool>) {
        self.in_flight = Some((version, task));
    }

    /// Waits for the write in flight, if any, and books its outcome.
    pub(crate) async fn settle(&mut self) {
        if let Some((version, task)) = self.in_flight.take() {
            let ok = task.await.unwrap_or(false);
            self.finished(version, ok);
        }
    }

    /// A write of `version` finished.
    pub(crate) fn finished(&mut self, version: u64, ok: bool) {
        self.saving = false;
        if self
            .in_flight
            .as_ref()
            .is_some_and(|(writing, _)| *writing == version)
        {
            self.in_flight = None;
        }
        if ok {
            self.saved = self.saved.max(version);
        } else {
            self.unsaved_need = self.unsaved_need.min(self.writing_need);
        }
        self.writing_need = NONE;
    }

    /// The current version was written outside a task (at stop).
    pub(crate) fn saved_now(&mut self) {
        self.saved = self.version;
        self.unsaved_need = NONE;
        self.writing_need = NONE;
    }

    /// Whether the stored copy is behind the state in memory.
    pub(crate) fn dirty(&self) -> bool {
        self.saved != self.version
    }

    /// Saved, with no write scheduled or in flight.
    pub(crate) fn settled(&self) -> bool {
        !self.dirty() && !self.saving && !self.scheduled && self.in_flight.is_none()
    }
}

impl ConversationState {
    fn document(&mut self, kind: DocumentKind) -> &mut Document {
        match kind {
            DocumentKind::Reactions => &mut self.reactions_doc,
            DocumentKind::Revisions => &mut self.revisions_doc,
            DocumentKind::ReadMarks => &mut self.read_marks_doc,
        }
    }

    fn document_body(&self, kind: DocumentKind) -> (String, Bytes) {
        let (key, body) = match kind {
            DocumentKind::Reactions => (
                keys::reactions(&self.args.id),
                serde_json::to_vec(&self.reactions),
            ),
            DocumentKind::Revisions => (
                keys::revisions(&self.args.id),
                serde_json::to_vec(&*self.revisions),
            ),
            DocumentKind::ReadMarks => (
                keys::read_marks(&self.args.id),
                serde_json::to_vec(&self.read_marks),
            ),
        };
        (key, Bytes::from(body.unwrap_or_else(|_| b"{}".to_vec())))
    }

    /// Writes a changed document after `delay`, unless a write is already
    /// scheduled: changes until then join it.
    pub(super) fn schedule_save(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        kind: DocumentKind,
        delay: Duration,
    ) {
        self.note_documents();
        if self.document(kind).dirty() && self.document(kind).schedule() {
            myself.send_after(delay, move || Internal::SaveDocument(kind).into());
        }
    }

    /// Tells the shutdown report how many documents are behind in storage,
    /// and the log what their unsaved changes need.
    pub(super) fn note_documents(&self) {
        let docs = [
            &self.reactions_doc,
            &self.revisions_doc,
            &self.read_marks_doc,
        ];
        let unsaved = docs.iter().filter(|d| d.dirty()).count();
        let need = docs.iter().map(|d| d.need()).min().unwrap_or(NONE);
        let progress = &self.args.write_behind.progress;
        progress.unsaved_documents.store(unsaved, Ordering::Release);
        progress.log.set_documents(need);
    }

    /// Writes a document in a task, one write at a time, latest state wins.
    fn save_document(&mut self, myself: &ActorRef<ConversationMsg>, kind: DocumentKind) {
        self.note_documents();
        let Some(version) = self.document(kind).begin() else {
            return;
        };
        let (key, body) = self.document_body(kind);
        let store = self.args.store.clone();
        let me = myself.clone();
        let task = tokio::spawn(async move {
            let ok = match store.put(&key, body, "application/json").await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(%key, error = %Report(&e), "saving document failed; retrying");
                    false
                }
            };
            let _ = me.cast(Internal::DocumentSaved { kind, version, ok }.into());
            ok
        });
        self.document(kind).writing(version, task);
    }

    /// A scheduled write is due.
    pub(super) fn save_due(&mut self, myself: &ActorRef<ConversationMsg>, kind: DocumentKind) {
        self.document(kind).due();
        self.save_document(myself, kind);
    }

    /// A write finished: the next waits a flush interval, a retry less.
    pub(super) fn document_saved(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        kind: DocumentKind,
        version: u64,
        ok: bool,
    ) {
        self.document(kind).finished(version, ok);
        self.note_documents();
        let delay = if ok {
            self.args.settings.flush_interval
        } else {
            DOCUMENT_RETRY
        };
        self.schedule_save(myself, kind, delay);
    }

    /// In a cluster the instance holding the conversation's storing lease
    /// saves its documents: the copies here count as saved, so this
    /// instance never writes them (at stop neither).
    pub(super) fn documents_saved_elsewhere(&mut self) {
        for kind in KINDS {
            self.document(kind).saved_now();
        }
        self.note_documents();
    }

    /// Writes what changed at stop, after the write in flight.
    pub(super) async fn save_at_stop(&mut self) {
        for kind in KINDS {
            self.document(kind).settle().await;
            if self.document(kind).dirty() {
                let (key, body) = self.document_body(kind);
                match self.args.store.put(&key, body, "application/json").await {
                    Ok(()) => self.document(kind).saved_now(),
                    Err(e) => {
                        tracing::error!(conversation = %self.args.id, %key, error = %Report(&e), "document not saved at stop")
                    }
                }
            }
        }
        self.note_documents();
    }
}

#[cfg(test)]
mod tests {
    use super::{Document, NONE};

    #[test]
    fn one_write_in_flight_and_latest_wins() {
        let mut d = Document::default();
        assert_eq!(d.begin(), None);
        d.touch(NONE);
        assert_eq!(d.begin(), Some(1));
        d.touch(NONE);
        assert_eq!(d.begin(), None, "one in flight");
        d.finished(1, true);
        assert!(d.dirty());
        assert_eq!(d.begin(), Some(2));
        d.finished(2, false);
        assert_eq!(d.begin(), Some(2), "failed writes are retried");
        d.finished(2, true);
        assert!(!d.dirty());
    }

    #[test]
    fn changes_until_the_scheduled_write_share_it() {
        let mut d = Document::default();
        d.touch(NONE);
        assert!(d.schedule());
        d.touch(NONE);
        assert!(!d.schedule(), "already scheduled");
        d.due();
        assert_eq!(d.begin(), Some(2));
        assert!(
            d.schedule(),
            "a change after the write began schedules another"
        );
    }

    #[test]
    fn the_need_is_held_until_a_write_of_it_succeeds() {
        let mut d = Document::default();
        assert_eq!(d.need(), NONE);
        d.touch(10);
        d.touch(20);
        assert_eq!(d.need(), 10);
        let version = d.begin().unwrap();
        d.touch(30);
        assert_eq!(d.need(), 10, "the write in flight holds the oldest");
        d.finished(version, false);
        assert_eq!(d.need(), 10, "a failed write gives its need back");
        let version = d.begin().unwrap();
        d.finished(version, true);
        assert_eq!(d.need(), NONE);
        d.touch(40);
        d.saved_now();
        assert_eq!(d.need(), NONE);
    }

    #[tokio::test]
    async fn settling_books_the_write_in_flight() {
        let mut d = Document::default();
        d.touch(NONE);
        let version = d.begin().unwrap();
        d.writing(version, tokio::spawn(async { true }));
        d.touch(NONE);
        d.settle().await;
        assert_eq!(d.begin(), Some(2), "the newer version is still to write");
    }
}
