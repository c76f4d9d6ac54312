//! Loading a conversation from storage: metadata, reactions, revisions,
//! read marks,
//! the upload quota's usage and the tail of history (with what the
//! flusher still holds from before a restart), then the changes the log
//! held at start that storage does not; a failed load is retried.

use super::documents::DocumentKind;
use super::protocol::Internal;
use super::read_marks::{self, ReadMark, ReadMarks};
use super::tail::Tail;
use super::{ConversationMsg, ConversationState, revisions};
use crate::changes::Change;
use crate::domain::{Conversation, SequencedMessage};
use crate::error::{ChatError, Report};
use crate::flusher::FlusherMsg;
use crate::log_needs::NONE;
use crate::log_records::LogRecord;
use crate::store::{StoreError, keys};
use crate::time::now_ms;
use crate::wal::WalError;
use ractor::ActorRef;
use std::sync::Arc;
use std::time::Duration;

impl ConversationState {
    /// Loads from storage; on failure answers 503 meanwhile and retries
    /// with backoff (250 ms doubling to 5 s).
    pub(super) async fn try_load(&mut self, myself: &ActorRef<ConversationMsg>) {
        match self.load().await {
            Ok(()) => {
                self.load_error = None;
                self.load_failures = 0;
                self.note_memory();
                let delay = self.args.settings.flush_interval;
                self.schedule_save(myself, DocumentKind::Revisions, delay);
                self.schedule_save(myself, DocumentKind::Reactions, delay);
                self.schedule_save(myself, DocumentKind::ReadMarks, delay);
            }
            Err(e) => {
                tracing::warn!(conversation = %self.args.id, error = %Report(&e), "loading conversation failed; retrying");
                self.load_error = Some(e);
                let delay = Duration::from_millis(250 << self.load_failures.min(5))
                    .min(Duration::from_secs(5));
                self.load_failures += 1;
                myself.send_after(delay, || Internal::Reload.into());
            }
        }
    }

    async fn load(&mut self) -> Result<(), ChatError> {
        let store = self.args.store.as_ref();
        let id = &self.args.id;
        if let Some(body) = store.get(&keys::meta(id)).await? {
            let meta: Conversation = serde_json::from_slice(&body)
                .map_err(|e| StoreError::unreadable("meta.json", e))?;
            self.meta = Some(meta);
        }
        if let Some(body) = store.get(&keys::reactions(id)).await? {
            self.reactions = serde_json::from_slice(&body).unwrap_or_default();
        }
        if let Some(body) = store.get(&keys::read_marks(id)).await? {
            let stored: ReadMarks = serde_json::from_slice(&body).unwrap_or_default();
            for (user, mark) in stored {
                read_marks::advance(&mut self.read_marks, &user, mark);
            }
        }
        let mut revisions: revisions::Revisions = match store.get(&keys::revisions(id)).await? {
            Some(body) => serde_json::from_slice(&body).unwrap_or_default(),
            None => Default::default(),
        };
        let quota = self.args.settings.max_upload_bytes_per_conversation;
        if quota > 0 && self.meta.is_some() {
            self.upload_bytes = store.usage(&keys::attachments_prefix(id)).await?;
        }
        // What the flusher holds is asked before storage is read: a batch
        // it stores meanwhile is then in both (and taken once), never in
        // neither (which would replay it from the log a second time).
        let unstored = match self.args.write_behind.flusher() {
            Some(flusher) => match flusher
                .call(FlusherMsg::Unstored, Some(self.args.settings.call_timeout))
                .await
            {
                Ok(ractor::rpc::CallResult::Success(unstored)) => unstored,
                _ => return Err(ChatError::ActorGone("the write-behind flusher")),
            },
            None => Vec::new(),
        };
        let (mut loaded, more) =
            crate::history::read_tail(store, id, self.args.settings.history_tail).await?;
        let stored_max = loaded.last().map_or(0, |m| m.seq);
        loaded.extend(unstored.into_iter().filter(|m| m.seq > stored_max));
        if revisions::attribute_legacy(&mut revisions, &loaded) {
            self.revisions_doc.touch(NONE);
        }
        for m in &mut loaded {
            revisions::overlay(&revisions, m);
        }
        self.revisions = Arc::new(revisions);
        self.last_seq = loaded.last().map_or(0, |m| m.seq);
        self.tail = Tail::new(self.args.settings.history_tail, loaded, !more);
        self.reread_after_a_failure().await?;
        self.apply_replay().await?;
        self.published_seq = self.last_seq;
        self.floor_seq = self.last_seq;
        self.load_shared().await
    }

    /// When an earlier actor of this conversation failed (a panic), what it
    /// logged and storage may not hold yet is still needed of the log:
    /// those changes are read back and applied as after a crash, so a
    /// reaction or an edit it acknowledged and had not saved survives.
    async fn reread_after_a_failure(&self) -> Result<(), ChatError> {
        let write_behind = &self.args.write_behind;
        let (Some(wal), Some(from)) = (&self.args.log, write_behind.progress.log.oldest()) else {
            return Ok(());
        };
        if write_behind.has_replay() {
            return Ok(());
        }
        let (wal, id) = (wal.clone(), self.args.id.to_string());
        let read = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<(u64, Change)>> {
            let mut records = wal.read_from(from)?;
            let mut changes = Vec::new();
            while let Some((lsn, bytes)) = records.next_record()? {
                if lsn < from {
                    continue;
                }
                if let Some(LogRecord::Conversation {
                    conversation_id,
                    change,
                }) = LogRecord::decode(&bytes)
                    && conversation_id == id
                {
                    changes.push((lsn, change));
                }
            }
            Ok(changes)
        })
        .await
        .map_err(|e| ChatError::Log(WalError::Failed(Arc::new(std::io::Error::other(e)))))?
        .map_err(|e| ChatError::Log(WalError::Failed(Arc::new(e))))?;
        tracing::info!(conversation = %self.args.id, changes = read.len(), "reading back what a failed actor logged");
        write_behind.progress.log.set_outbox(NONE);
        write_behind.set_replay(read);
        Ok(())
    }

    /// Finishes or undoes the compactions the log names and a crash left
    /// unfinished (see [`crate::segments::repair_interrupted`]), all at
    /// once: a later one may have replaced an earlier one's segment.
    async fn repair_compactions(&self, changes: &[(u64, Change)]) -> Result<(), StoreError> {
        let (mut segments, mut replaced) = (Vec::new(), Vec::new());
        for (_, change) in changes {
            if let Change::Compacting {
                segments: written,
                replaced: gone,
            } = change
            {
                segments.extend_from_slice(written);
                replaced.extend_from_slice(gone);
            }
        }
        if segments.is_empty() && replaced.is_empty() {
            return Ok(());
        }
        let store = self.args.store.as_ref();
        let deleted =
            crate::segments::repair_interrupted(store, &self.args.id, &segments, &replaced).await?;
        if deleted > 0 {
            tracing::info!(conversation = %self.args.id, deleted, "deleted the copies interrupted compactions left");
        }
        Ok(())
    }

    /// Makes the changes the log held at start that storage does not: a
    /// message at or below the last sequence loaded is stored already (a
    /// batch lands whole and in order); revisions and reactions are laid
    /// on top of the stored documents, which are saved again. Nothing is
    /// broadcast: no stream is open yet.
    async fn apply_replay(&mut self) -> Result<(), ChatError> {
        if !self.args.write_behind.has_replay() {
            return Ok(());
        }
        self.args.write_behind.started().await?;
        let changes = self.args.write_behind.take_replay();
        if let Err(e) = self.repair_compactions(&changes).await {
            self.args.write_behind.set_replay(changes);
            return Err(e.into());
        }
        let now = now_ms();
        let (mut messages, mut skipped) = (0usize, 0usize);
        for (lsn, change) in changes {
            match change {
                Change::Message {
                    seq,
                    message,
                    remember_until,
                } => {
                    if seq <= self.last_seq {
                        skipped += 1;
                        continue;
                    }
                    messages += 1;
                    let sequenced = SequencedMessage {
                        seq,
                        message: *message,
                    };
                    self.keep_message(sequenced.clone(), remember_until, now);
                    self.hand_to_flusher(lsn, sequenced);
                }
                Change::Revision {
                    message_id,
                    revision,
                } => {
                    self.keep_revision(&message_id, revision, lsn);
                }
                Change::Reaction {
                    message_id,
                    user_id,
                    emoji,
                    added,
                } => {
                    self.keep_reaction(&message_id, &user_id, &emoji, added, lsn);
                }
                Change::ReadMark {
                    user_id,
                    message_id,
                    seq,
                } => {
                    self.keep_read_mark(&user_id, ReadMark { message_id, seq }, lsn);
                }
                Change::Compacting { .. } => {}
            }
        }
        self.note_documents();
        self.args.write_behind.progress.log.set_replay(NONE);
        tracing::info!(conversation = %self.args.id, messages, already_stored = skipped, "replayed the log's changes");
        Ok(())
    }
}
