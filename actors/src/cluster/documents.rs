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

use crate::conversation::reactions::{self, ReactionMap};
use crate::conversation::read_marks::{self, ReadMark, ReadMarks};
use crate::conversation::revisions::{Revision, Revisions};
use crate::domain::ConversationId;
use crate::store::{Store, StoreError, keys};
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

/// One document as the holder keeps it: `None` until first needed.
#[derive(Debug, Default)]
struct Kept<T> {
    value: Option<T>,
    /// Changed since it was last written.
    changed: bool,
}

impl<T: DeserializeOwned + Serialize + Default> Kept<T> {
    /// The document, read from `key` on first use.
    async fn get(&mut self, store: &dyn Store, key: &str) -> Result<&mut T, StoreError> {
        if self.value.is_none() {
            let stored = store.get(key).await?;
            let value = stored
                .and_then(|body| serde_json::from_slice(&body).ok())
                .unwrap_or_default();
            self.value = Some(value);
        }
        Ok(self.value.get_or_insert_with(T::default))
    }

    /// Writes the document to `key` if it changed.
    async fn save(&mut self, store: &dyn Store, key: &str) -> Result<(), StoreError> {
        let (true, Some(value)) = (self.changed, &self.value) else {
            return Ok(());
        };
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        store
            .put(key, Bytes::from(body), "application/json")
            .await?;
        self.changed = false;
        Ok(())
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

    /// Writes the documents that changed since they were last written.
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
