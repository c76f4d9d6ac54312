//! What the actor-level tests share: an in-memory store that can be
//! switched off or slowed (writes and reads), and small helpers to make and post messages.

use crate::System;
use crate::domain::{ConversationId, MessageType, NewMessage, Sender};
use crate::handle::ConversationHandle;
use crate::history;
use crate::store::{Store, StoreError, Version};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Objects in a map; `down` makes every call fail.
#[derive(Default)]
pub(crate) struct MemoryStore {
    pub(crate) objects: Mutex<BTreeMap<String, Bytes>>,
    pub(crate) down: AtomicBool,
    pub(crate) puts: AtomicUsize,
    pub(crate) reads: AtomicUsize,
    /// Milliseconds each put waits before it lands.
    pub(crate) put_delay_ms: AtomicU64,
    /// Milliseconds each get waits before it answers.
    pub(crate) get_delay_ms: AtomicU64,
}

/// The version of a stored body: a hash of its content.
fn version_of(body: &[u8]) -> Version {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    Version::Tag(format!("{:016x}", hasher.finish()))
}

impl MemoryStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::backend(
                "GetObject",
                std::io::Error::other("storage is down"),
            ))
        } else {
            Ok(())
        }
    }

    /// Counts a put and waits `put_delay_ms` before it lands.
    async fn delay_put(&self) {
        let delay = self.put_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.puts.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.check()?;
        let delay = self.get_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.objects.lock().unwrap().get(key).cloned())
    }

    async fn get_versioned(&self, key: &str) -> Result<(Option<Bytes>, Version), StoreError> {
        let body = self.get(key).await?;
        let version = body.as_deref().map_or(Version::Absent, version_of);
        Ok((body, version))
    }

    async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> Result<(), StoreError> {
        self.check()?;
        self.delay_put().await;
        self.objects.lock().unwrap().insert(key.to_owned(), body);
        Ok(())
    }

    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        _content_type: &str,
        expected: &Version,
    ) -> Result<Version, StoreError> {
        self.check()?;
        self.delay_put().await;
        let mut objects = self.objects.lock().unwrap();
        let stored = objects.get(key).map_or(Version::Absent, |b| version_of(b));
        if stored != *expected {
            return Err(StoreError::Changed);
        }
        let written = version_of(&body);
        objects.insert(key.to_owned(), body);
        Ok(written)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.check()?;
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .objects
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        self.check()?;
        let mut objects = self.objects.lock().unwrap();
        for key in keys {
            objects.remove(key);
        }
        Ok(())
    }

    async fn attachment_link(
        &self,
        conversation: &crate::domain::ConversationId,
        attachment_id: &str,
        variant: crate::domain::AttachmentVariant,
        _ttl: Duration,
    ) -> Result<String, StoreError> {
        self.check()?;
        Ok(format!(
            "memory://{conversation}/{attachment_id}/{}",
            variant.name()
        ))
    }
}

/// A text message saying `body`.
pub(crate) fn text(body: &str) -> NewMessage {
    NewMessage {
        message_id: None,
        kind: MessageType::Text,
        body: body.into(),
        client_timestamp: "2025-01-01T00:00:00Z".into(),
        attachment_id: None,
        filename: None,
        mimetype: None,
        url: None,
    }
}

/// Ann, a user.
pub(crate) fn ann() -> Sender {
    Sender {
        user_id: "u-ann".into(),
        display_name: "Ann".into(),
        avatar_url: None,
        role: crate::domain::Role::User,
    }
}

/// The bodies of the stored history, oldest first.
pub(crate) async fn stored_bodies(store: &MemoryStore, id: &ConversationId) -> Vec<String> {
    let (messages, _) = history::read_tail(store, id, 10_000).await.unwrap();
    messages.into_iter().map(|m| m.message.body).collect()
}

/// Waits (5 s at most) until `check` holds.
pub(crate) async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A created conversation of `system`, with its id.
pub(crate) async fn created(system: &System, name: &str) -> (ConversationId, ConversationHandle) {
    let id = ConversationId::parse(name).unwrap();
    let conversation = system.conversation(id.clone());
    conversation.create().await.unwrap();
    (id, conversation)
}

/// Posts `m0` .. `m{count-1}` as Ann, one at a time.
pub(crate) async fn post_numbered(conversation: &ConversationHandle, count: usize) {
    for i in 0..count {
        conversation
            .post(&ann(), text(&format!("m{i}")))
            .await
            .unwrap();
    }
}

/// The bodies `post_numbered` posts.
pub(crate) fn numbered(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("m{i}")).collect()
}
