//! The reaction, revision and read-mark documents of a conversation in a
//! cluster, kept by the instance holding its storing lease: read from
//! storage the first time an entry changes one, changed by the entries
//! in stream order, and written once per storing step that changed them,
//! before the stored mark moves past those entries. Every change is an
//! assignment (a reaction set or unset, a message's latest revision, a
//! read mark moved forward), so a new holder that finds a document
//! already holding changes above the mark (its predecessor wrote it and
//! was killed before moving the mark) applies them again to the same
//! result: each change reaches storage once, whichever instance made it.
//!
//! Each document is written with a conditional write
//! ([`Store::put_if`]) that replaces only the version its holder read: a
//! holder whose lease passed to another instance while it was paused
//! cannot overwrite what the new holder wrote. Its write fails with
//! [`StoreError::Changed`] and it forgets its copy; read again, the
//! document holds the newer writer's changes.

use crate::conversation::reactions::{self, ReactionMap};
use crate::conversation::read_marks::{self, ReadMark, ReadMarks};
use crate::conversation::revisions::{Revision, Revisions};
use crate::domain::ConversationId;
use crate::store::{Store, StoreError, Version, keys};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A change an entry of the stream makes to one of the documents.
#[derive(Debug, Clone)]
pub(crate) enum DocumentChange {
    /// A message's latest edit or its delete.
    Revision {
        message_id: String,
        revision: Revision,
    },
    /// A reaction added or removed.
    Reaction {
        message_id: String,
        user_id: String,
        emoji: String,
        added: bool,
    },
    /// A reader's mark moved forward.
    ReadMark { user_id: String, mark: ReadMark },
}

/// One document as the holder keeps it: `None` until first needed, then
/// with the version of it that storage holds.
#[derive(Debug, Default)]
struct Kept<T> {
    value: Option<(T, Version)>,
    /// Changed since it was last written.
    changed: bool,
}

impl<T: DeserializeOwned + Serialize + Default> Kept<T> {
    /// The document, read from `key` on first use.
    async fn get(&mut self, store: &dyn Store, key: &str) -> Result<&mut T, StoreError> {
        if self.value.is_none() {
            let (stored, version) = store.get_versioned(key).await?;
            let value = stored
                .and_then(|body| serde_json::from_slice(&body).ok())
                .unwrap_or_default();
            self.value = Some((value, version));
        }
        let (value, _) = self
            .value
            .get_or_insert_with(|| (T::default(), Version::Absent));
        Ok(value)
    }

    /// Writes the document to `key` if it changed, replacing only the
    /// version it was read as. When another writer came first
    /// ([`StoreError::Changed`]) the copy is forgotten: the next use reads
    /// the newer document.
    async fn save(&mut self, store: &dyn Store, key: &str) -> Result<(), StoreError> {
        let (true, Some((value, version))) = (self.changed, &mut self.value) else {
            return Ok(());
        };
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        match store
            .put_if(key, Bytes::from(body), "application/json", version)
            .await
        {
            Ok(written) => {
                *version = written;
                self.changed = false;
                Ok(())
            }
            Err(StoreError::Changed) => {
                self.value = None;
                self.changed = false;
                Err(StoreError::Changed)
            }
            Err(e) => Err(e),
        }
    }
}

/// The three documents of one conversation, as its lease holder keeps them.
#[derive(Debug, Default)]
pub(crate) struct HeldDocuments {
    reactions: Kept<ReactionMap>,
    revisions: Kept<Revisions>,
    read_marks: Kept<ReadMarks>,
}

impl HeldDocuments {
    /// Makes `changes` (in stream order) to the documents, reading each
    /// from storage the first time it is needed.
    pub(crate) async fn apply(
        &mut self,
        store: &dyn Store,
        id: &ConversationId,
        changes: &[DocumentChange],
    ) -> Result<(), StoreError> {
        for change in changes {
            match change {
                DocumentChange::Revision {
                    message_id,
                    revision,
                } => {
                    let revisions = self.revisions.get(store, &keys::revisions(id)).await?;
                    revisions.insert(message_id.clone(), revision.clone());
                    self.revisions.changed = true;
                }
                DocumentChange::Reaction {
                    message_id,
                    user_id,
                    emoji,
                    added,
                } => {
                    let map = self.reactions.get(store, &keys::reactions(id)).await?;
                    if reactions::apply(map, message_id, user_id, emoji, *added) {
                        self.reactions.changed = true;
                    }
                }
                DocumentChange::ReadMark { user_id, mark } => {
                    let marks = self.read_marks.get(store, &keys::read_marks(id)).await?;
                    if read_marks::advance(marks, user_id, mark.clone()) {
                        self.read_marks.changed = true;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the documents that changed since they were last written;
    /// fails with [`StoreError::Changed`] when another writer replaced one
    /// since it was read (the caller then starts again from what storage
    /// and the stream hold).
    pub(crate) async fn save(
        &mut self,
        store: &dyn Store,
        id: &ConversationId,
    ) -> Result<(), StoreError> {
        self.reactions.save(store, &keys::reactions(id)).await?;
        self.revisions.save(store, &keys::revisions(id)).await?;
        self.read_marks.save(store, &keys::read_marks(id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::MemoryStore;

    fn thumbs_up_from(user_id: &str) -> DocumentChange {
        DocumentChange::Reaction {
            message_id: "m1".into(),
            user_id: user_id.into(),
            emoji: "👍".into(),
            added: true,
        }
    }

    async fn stored_reactions(store: &MemoryStore, id: &ConversationId) -> ReactionMap {
        let body = store.get(&keys::reactions(id)).await.unwrap().unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    #[tokio::test]
    async fn a_holder_behind_another_writer_overwrites_nothing_and_reads_again() {
        let store = MemoryStore::default();
        let id = ConversationId::parse("held").unwrap();
        let mut stale = HeldDocuments::default();
        stale
            .apply(&store, &id, &[thumbs_up_from("ann")])
            .await
            .unwrap();
        stale.save(&store, &id).await.unwrap();
        let mut next = HeldDocuments::default();
        next.apply(&store, &id, &[thumbs_up_from("bob")])
            .await
            .unwrap();
        next.save(&store, &id).await.unwrap();
        let newer = stored_reactions(&store, &id).await;

        stale
            .apply(&store, &id, &[thumbs_up_from("cat")])
            .await
            .unwrap();
        let saved = stale.save(&store, &id).await;

        assert!(matches!(saved, Err(StoreError::Changed)), "{saved:?}");
        assert_eq!(stored_reactions(&store, &id).await, newer);
        stale
            .apply(&store, &id, &[thumbs_up_from("cat")])
            .await
            .unwrap();
        stale.save(&store, &id).await.unwrap();
        let mut users = stored_reactions(&store, &id).await["m1"]["👍"].clone();
        users.sort();
        assert_eq!(users, ["ann", "bob", "cat"]);
    }
}
