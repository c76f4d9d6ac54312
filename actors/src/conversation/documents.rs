//! Small JSON objects a conversation rewrites whole (`reactions.json`,
//! `revisions.json`): the latest state wins, one write is in flight at a
//! time, and a failed write is retried.

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
}

impl Document {
    /// The document changed in memory.
    pub fn touch(&mut self) {
        self.version += 1;
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

    /// A write of `version` finished.
    pub fn finished(&mut self, version: u64, ok: bool) {
        self.saving = false;
        if ok {
            self.saved = self.saved.max(version);
        }
    }

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
}
