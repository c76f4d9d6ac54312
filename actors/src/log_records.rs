//! The records of the write-ahead log: what a session, nonce or
//! conversation change looks like on disk (JSON of [`LogRecord`], tagged by
//! `kind`), and the one pass at start that rebuilds the registries from
//! them and gathers each conversation's changes for its replay. Kinds this
//! build does not know are skipped.

use crate::changes::Change;
use crate::domain::{ConversationId, Session};
use crate::nonces::NonceJournal;
use crate::retention::{Owner, Retention};
use crate::sessions::{SessionJournal, TOUCH_EVERY};
use crate::ttl_registry::Journaling;
use crate::wal::{Recovered, Wal, WalError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// How often a registry checks whether the log grew enough for a
/// checkpoint.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);

/// One record of the log, as the registries write and read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub(crate) enum LogRecord {
    /// A session was opened; its life starts at its `lastActiveAt`.
    SessionCreated {
        /// The session.
        session: Session,
    },
    /// A session was used at `at` (logged at most once a minute).
    SessionTouched {
        /// The session's id.
        id: String,
        /// Epoch milliseconds.
        at: i64,
    },
    /// A session ended (its user left).
    SessionDeleted {
        /// The session's id.
        id: String,
    },
    /// Part of the live sessions at a checkpoint, each living from its
    /// `lastActiveAt`.
    SessionSnapshot {
        /// The sessions.
        sessions: Vec<Session>,
    },
    /// A ticket nonce was used at `at`.
    NonceUsed {
        /// The nonce.
        nonce: String,
        /// Epoch milliseconds.
        at: i64,
    },
    /// Part of the remembered nonces at a checkpoint.
    NonceSnapshot {
        /// The nonces with the time each was used.
        nonces: Vec<UsedNonce>,
    },
    /// A conversation's acknowledged change.
    Conversation {
        /// The conversation's id.
        conversation_id: String,
        /// The change.
        change: Change,
    },
    /// A record of a kind this build does not read.
    #[serde(other)]
    Other,
}

/// A [`LogRecord::Conversation`] as written, borrowing what it logs.
#[derive(Serialize)]
#[serde(tag = "kind", rename = "conversation", rename_all = "camelCase")]
struct ConversationRecord<'a, M> {
    conversation_id: &'a str,
    change: &'a Change<M>,
}

/// The bytes of a conversation's change in the log.
pub(crate) fn encode_change<M: Serialize>(
    conversation_id: &str,
    change: &Change<M>,
) -> Result<Vec<u8>, WalError> {
    serde_json::to_vec(&ConversationRecord {
        conversation_id,
        change,
    })
    .map_err(|e| WalError::Failed(Arc::new(io::Error::from(e))))
}

/// A nonce and when it was used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UsedNonce {
    /// The nonce.
    pub(crate) nonce: String,
    /// Epoch milliseconds.
    pub(crate) at: i64,
}

impl LogRecord {
    /// The record's bytes in the log.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, WalError> {
        serde_json::to_vec(self).map_err(|e| WalError::Failed(Arc::new(io::Error::from(e))))
    }

    /// The record in `bytes`; `None` when they are not a record at all.
    pub(crate) fn decode(bytes: &[u8]) -> Option<LogRecord> {
        serde_json::from_slice(bytes).ok()
    }
}

/// The registries as the log left them, before expiry is applied: each
/// session with its life's start in `last_active_at`, each nonce with the
/// time it was used.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Restored {
    /// Sessions by id.
    pub(crate) sessions: HashMap<String, Session>,
    /// Nonces and when they were used.
    pub(crate) nonces: HashMap<String, i64>,
    /// Each conversation's changes with their log positions, in log order.
    pub(crate) conversations: HashMap<ConversationId, Vec<(u64, Change)>>,
}

impl Restored {
    /// Applies one record, logged at `lsn`, on top of what came before it.
    /// A snapshot adds to what is there (later records may already be
    /// applied on top of an older state), and a time never moves back.
    pub(crate) fn apply(&mut self, lsn: u64, record: LogRecord) {
        match record {
            LogRecord::SessionCreated { session } => self.keep_session(session),
            LogRecord::SessionSnapshot { sessions } => {
                sessions.into_iter().for_each(|s| self.keep_session(s))
            }
            LogRecord::SessionTouched { id, at } => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.last_active_at = session.last_active_at.max(at);
                }
            }
            LogRecord::SessionDeleted { id } => {
                self.sessions.remove(&id);
            }
            LogRecord::NonceUsed { nonce, at } => self.keep_nonce(nonce, at),
            LogRecord::NonceSnapshot { nonces } => nonces
                .into_iter()
                .for_each(|n| self.keep_nonce(n.nonce, n.at)),
            LogRecord::Conversation {
                conversation_id,
                change,
            } => match ConversationId::parse(&conversation_id) {
                Some(id) => self
                    .conversations
                    .entry(id)
                    .or_default()
                    .push((lsn, change)),
                None => {
                    tracing::warn!(
                        lsn,
                        "skipping a logged change of an invalid conversation id"
                    )
                }
            },
            LogRecord::Other => {}
        }
    }

    fn keep_session(&mut self, session: Session) {
        match self.sessions.get_mut(&session.session_id) {
            Some(held) if held.last_active_at >= session.last_active_at => {}
            _ => {
                self.sessions.insert(session.session_id.clone(), session);
            }
        }
    }

    fn keep_nonce(&mut self, nonce: String, at: i64) {
        let held = self.nonces.entry(nonce).or_insert(at);
        *held = (*held).max(at);
    }
}

/// Reads every record the log held at open and rebuilds the registries
/// from them; records that are not registry records are skipped.
pub(crate) fn replay(recovered: &mut Recovered) -> io::Result<Restored> {
    let mut restored = Restored::default();
    let (mut applied, mut unreadable) = (0usize, 0usize);
    while let Some((lsn, bytes)) = recovered.next_record()? {
        match LogRecord::decode(&bytes) {
            Some(record) => {
                applied += 1;
                restored.apply(lsn, record);
            }
            None => {
                unreadable += 1;
                tracing::warn!(lsn, "skipping a write-ahead log record that is not JSON");
            }
        }
    }
    tracing::info!(
        records = applied,
        unreadable,
        sessions = restored.sessions.len(),
        nonces = restored.nonces.len(),
        conversations = restored.conversations.len(),
        "read the write-ahead log"
    );
    Ok(restored)
}

/// The system's start from the log: what it held, and how each part
/// writes to it.
pub(crate) struct LogStart {
    /// The session registry's log; `None` when the log is off.
    pub(crate) sessions: Option<Journaling<Session>>,
    /// The nonce registry's log; `None` when the log is off.
    pub(crate) nonces: Option<Journaling<()>>,
    /// The conversations' log and where they report what they need;
    /// `None` when the log is off.
    pub(crate) conversations: Option<(Wal, Arc<Retention>)>,
    /// What the log held.
    pub(crate) restored: Restored,
}

impl LogStart {
    /// Reads `log` (when on) and sets the registries and the
    /// conversations to write to it, sharing one [`Retention`].
    pub(crate) fn open(log: Option<(Wal, Recovered)>) -> io::Result<LogStart> {
        let Some((wal, mut recovered)) = log else {
            return Ok(LogStart {
                sessions: None,
                nonces: None,
                conversations: None,
                restored: Restored::default(),
            });
        };
        let restored = replay(&mut recovered)?;
        let retention = Arc::new(Retention::new(
            wal.clone(),
            &[Owner::Sessions, Owner::Nonces, Owner::Conversations],
        ));
        Ok(LogStart {
            conversations: Some((wal.clone(), retention.clone())),
            sessions: Some(Journaling {
                wal: wal.clone(),
                journal: Arc::new(SessionJournal),
                retention: retention.clone(),
                owner: Owner::Sessions,
                checkpoint_every: CHECKPOINT_EVERY,
                touch_every: TOUCH_EVERY,
            }),
            nonces: Some(Journaling {
                wal,
                journal: Arc::new(NonceJournal),
                retention,
                owner: Owner::Nonces,
                checkpoint_every: CHECKPOINT_EVERY,
                touch_every: TOUCH_EVERY,
            }),
            restored,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, at: i64) -> Session {
        Session::sample(id, at)
    }

    #[test]
    fn records_read_back_as_written() {
        let records = [
            LogRecord::SessionCreated {
                session: session("a", 5),
            },
            LogRecord::SessionTouched {
                id: "a".into(),
                at: 9,
            },
            LogRecord::SessionDeleted { id: "a".into() },
            LogRecord::SessionSnapshot {
                sessions: vec![session("b", 1)],
            },
            LogRecord::NonceUsed {
                nonce: "n".into(),
                at: 3,
            },
            LogRecord::NonceSnapshot {
                nonces: vec![UsedNonce {
                    nonce: "m".into(),
                    at: 4,
                }],
            },
        ];
        for record in records {
            let bytes = record.encode().unwrap();
            assert_eq!(LogRecord::decode(&bytes), Some(record));
        }
    }

    #[test]
    fn a_conversation_change_reads_back_as_written() {
        let change = Change::Reaction {
            message_id: "m".into(),
            user_id: "u".into(),
            emoji: "👍".into(),
            added: true,
        };
        let bytes = encode_change("room-1", &change).unwrap();
        assert_eq!(
            LogRecord::decode(&bytes),
            Some(LogRecord::Conversation {
                conversation_id: "room-1".into(),
                change,
            })
        );
    }

    #[test]
    fn a_kind_from_elsewhere_is_other_and_garbage_is_nothing() {
        let future = br#"{"kind":"somethingNew","conversationId":"x","seq":4}"#;
        assert_eq!(LogRecord::decode(future), Some(LogRecord::Other));
        assert_eq!(LogRecord::decode(b"\x00\x01 not json"), None);
        assert_eq!(LogRecord::decode(br#"{"no":"kind"}"#), None);
    }

    #[test]
    fn replayed_records_keep_the_latest_time_and_honour_deletes() {
        let mut restored = Restored::default();
        restored.apply(
            0,
            LogRecord::SessionCreated {
                session: session("a", 10),
            },
        );
        restored.apply(
            0,
            LogRecord::SessionCreated {
                session: session("gone", 10),
            },
        );
        restored.apply(
            0,
            LogRecord::SessionTouched {
                id: "a".into(),
                at: 70,
            },
        );
        // A snapshot older than a touch logged before it does not undo it.
        restored.apply(
            0,
            LogRecord::SessionSnapshot {
                sessions: vec![session("a", 40)],
            },
        );
        restored.apply(0, LogRecord::SessionDeleted { id: "gone".into() });
        restored.apply(
            0,
            LogRecord::SessionTouched {
                id: "never-created".into(),
                at: 80,
            },
        );
        restored.apply(
            0,
            LogRecord::NonceUsed {
                nonce: "n".into(),
                at: 5,
            },
        );
        restored.apply(0, LogRecord::Other);
        assert_eq!(restored.sessions.len(), 1);
        assert_eq!(restored.sessions["a"].last_active_at, 70);
        assert_eq!(restored.nonces, HashMap::from([("n".to_owned(), 5)]));
    }
}
