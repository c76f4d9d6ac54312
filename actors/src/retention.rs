//! What the write-ahead log must keep: every part of the system that
//! replays from the log (the session and nonce registries, the
//! conversations) reports the oldest log position it still needs, and the
//! log releases the segments before the oldest of all needs.

use crate::wal::Wal;
use std::collections::HashMap;
use std::sync::Mutex;

/// A part of the system that replays from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Owner {
    /// The session registry.
    Sessions,
    /// The ticket nonce registry.
    Nonces,
    /// The conversations (reported by their supervisor).
    Conversations,
}

/// The oldest log position each owner needs; the log keeps what the
/// neediest one needs.
pub(crate) struct Retention {
    wal: Wal,
    needs: Mutex<HashMap<Owner, u64>>,
}

impl Retention {
    /// Every one of `owners` needs the whole log until it reports.
    pub(crate) fn new(wal: Wal, owners: &[Owner]) -> Self {
        Retention {
            wal,
            needs: Mutex::new(owners.iter().map(|owner| (*owner, 0)).collect()),
        }
    }

    /// `owner` needs no record before `lsn` any more: the log may drop
    /// what no owner needs.
    pub(crate) fn needs_from(&self, owner: Owner, lsn: u64) {
        let oldest = {
            let mut needs = self.needs.lock().unwrap_or_else(|e| e.into_inner());
            let need = needs.entry(owner).or_insert(lsn);
            *need = (*need).max(lsn);
            Self::oldest(&needs)
        };
        if oldest > 0 {
            self.wal.release_before(oldest);
        }
    }

    /// The oldest position any owner needs.
    #[cfg(test)]
    pub(crate) fn needed_from(&self) -> u64 {
        Self::oldest(&self.needs.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn oldest(needs: &HashMap<Owner, u64>) -> u64 {
        needs.values().copied().min().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::{Owner, Retention};
    use crate::wal::{SyncMode, Wal, WalConfig};
    use std::time::Duration;

    /// Waits until the writer has handled the releases asked for: they are
    /// done before the next append is answered.
    async fn settle(wal: &Wal) {
        wal.append(vec![0; 10]).unwrap().await.unwrap();
    }

    #[tokio::test]
    async fn the_log_keeps_what_the_neediest_owner_needs() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(WalConfig {
            dir: dir.path().to_path_buf(),
            commit_interval: Duration::from_millis(1),
            sync: SyncMode::Write,
            segment_bytes: 1024,
            max_bytes: 1 << 20,
        })
        .unwrap();
        let mut positions = Vec::new();
        for _ in 0..40 {
            positions.push(wal.append(vec![1; 200]).unwrap().await.unwrap());
        }
        let full = wal.bytes();
        let retention = Retention::new(wal.clone(), &[Owner::Sessions, Owner::Nonces]);

        retention.needs_from(Owner::Sessions, positions[35]);
        settle(&wal).await;
        assert_eq!(retention.needed_from(), 0, "the nonces need everything");
        assert!(wal.bytes() > full, "nothing is released");

        retention.needs_from(Owner::Nonces, positions[20]);
        settle(&wal).await;
        assert_eq!(retention.needed_from(), positions[20]);
        let kept = wal.bytes();
        assert!(kept < full, "segments before the nonces' need go");

        retention.needs_from(Owner::Nonces, positions[10]);
        assert_eq!(
            retention.needed_from(),
            positions[20],
            "a need never moves back"
        );
        retention.needs_from(Owner::Nonces, positions[39]);
        settle(&wal).await;
        assert_eq!(retention.needed_from(), positions[35]);
        assert!(wal.bytes() < kept);
    }
}
