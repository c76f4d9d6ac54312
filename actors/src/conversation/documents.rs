//! Small JSON objects a conversation rewrites whole (`reactions.json`,
//! `revisions.json`): the latest state wins, one write is in flight at a
//! time, changes wait for one scheduled write (so a burst of reactions
//! costs one serialization of the map, not one per reaction), and a failed
//! write is retried. At stop the write in flight is
//! awaited before the final state is written, so an older write can never
//! land over a newer one.

use tokio::task::JoinHandle;

/// Which document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    Reactions,
    Revisions,
}

/// Save bookkeeping of one document.
#[derive(Debug, Default)]
pub struct Document {
    version: u64,
    saved: u64,
    saving: bool,
    /// A write is scheduled; changes until then join it.
    scheduled: bool,
    /// The write in flight: its version and its task (which yields success).
    in_flight: Option<(u64, JoinHandle<bool>)>,
}

impl Document {
    /// The document changed in memory.
    pub fn touch(&mut self) {
        self.version += 1;
    }

    /// Whether a write must be scheduled for a change (none is yet).
    pub fn schedule(&mut self) -> bool {
        !std::mem::replace(&mut self.scheduled, true)
    }

    /// The scheduled write is due.
    pub fn due(&mut self) {
        self.scheduled = false;
    }

    /// Whether a write should start now; if so, marks it in flight and
    /// returns the version being written.
    pub fn begin(&mut self) -> Option<u64> {
        if self.saving || self.saved == self.version {
            return None;
        }
        self.saving = true;
        Some(self.version)
    }

    /// Keeps the task writing the version `begin` returned.
    pub fn writing(&mut self, version: u64, task: JoinHandle<bool>) {
        self.in_flight = Some((version, task));
    }

    /// Waits for the write in flight, if any, and books its outcome.
    pub async fn settle(&mut self) {
        if let Some((version, task)) = self.in_flight.take() {
            let ok = task.await.unwrap_or(false);
            self.finished(version, ok);
        }
    }

    /// A write of `version` finished.
    pub fn finished(&mut self, version: u64, ok: bool) {
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
        }
    }

    /// The current version was written outside a task (at stop).
    pub fn saved_now(&mut self) {
        self.saved = self.version;
    }

    /// Whether the stored copy is behind the state in memory.
    pub fn dirty(&self) -> bool {
        self.saved != self.version
    }
}

#[cfg(test)]
mod tests {
    use super::Document;

    #[test]
    fn one_write_in_flight_and_latest_wins() {
        let mut d = Document::default();
        assert_eq!(d.begin(), None);
        d.touch();
        assert_eq!(d.begin(), Some(1));
        d.touch();
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
        d.touch();
        assert!(d.schedule());
        d.touch();
        assert!(!d.schedule(), "already scheduled");
        d.due();
        assert_eq!(d.begin(), Some(2));
        assert!(
            d.schedule(),
            "a change after the write began schedules another"
        );
    }

    #[tokio::test]
    async fn settling_books_the_write_in_flight() {
        let mut d = Document::default();
        d.touch();
        let version = d.begin().unwrap();
        d.writing(version, tokio::spawn(async { true }));
        d.touch();
        d.settle().await;
        assert_eq!(d.begin(), Some(2), "the newer version is still to write");
    }
}
