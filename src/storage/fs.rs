//! The embedded default store: a local directory with the same keys as S3.
//! Writes go to a temporary file that is renamed into place, so a reader
//! never sees half an object. With `synced` (the default, `[durability]
//! sync = "fsync"`) a write is on disk before it is answered: the file is
//! synced before the rename and its directory after, so a power loss keeps
//! what the write-ahead log let go once storage held it.

use super::StorageCounters;
use super::links::DownloadLinks;
use async_trait::async_trait;
use bytes::Bytes;
use chats3_actors::domain::{AttachmentVariant, ConversationId};
use chats3_actors::store::{Store, StoreError};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A store rooted at a directory.
pub struct FsStore {
    root: PathBuf,
    /// Whether writes are synced to disk before they are answered.
    synced: bool,
    counters: Arc<StorageCounters>,
    links: Arc<DownloadLinks>,
}

impl FsStore {
    /// Creates the root directory if needed; attachments are downloaded
    /// through `links`; `synced` writes are on disk before they are
    /// answered.
    pub fn open(
        root: impl AsRef<Path>,
        synced: bool,
        counters: Arc<StorageCounters>,
        links: Arc<DownloadLinks>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.as_ref())?;
        Ok(FsStore {
            root: root.as_ref().to_path_buf(),
            synced,
            counters,
            links,
        })
    }

    /// The file of a key; keys with `..`, absolute parts or empty segments
    /// are refused so nothing escapes the root.
    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let relative = Path::new(key);
        let clean = !key.is_empty()
            && !key.contains("//")
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !clean {
            return Err(StoreError::Unusable(format!("refusing unsafe key {key:?}")));
        }
        Ok(self.root.join(relative))
    }
}

fn io_error(e: std::io::Error) -> StoreError {
    StoreError::backend("file system call", e)
}

/// Writes `body` to `path` (under `root`) through a temporary file renamed
/// into place; `synced`, the file and then every directory the write
/// created or changed are synced, so the object is on disk once this returns.
fn write_replacing(root: &Path, path: &Path, body: &[u8], synced: bool) -> std::io::Result<()> {
    let parent = path
        .parent()
        .ok_or_else(|| std::io::Error::other("key has no parent"))?;
    // The directories this write creates: each must reach its parent's entry.
    let mut created = Vec::new();
    let mut missing = Some(parent);
    while let Some(dir) = missing.filter(|dir| *dir != root && !dir.exists()) {
        created.push(dir);
        missing = dir.parent();
    }
    std::fs::create_dir_all(parent)?;
    let temp = parent.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
    if let Err(e) = write_file(&temp, body, synced).and_then(|()| std::fs::rename(&temp, path)) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    if synced {
        sync_dir(parent)?;
        for dir in created {
            if let Some(above) = dir.parent() {
                sync_dir(above)?;
            }
        }
    }
    Ok(())
}

/// Creates `path` holding `body`, synced to disk if `synced`.
fn write_file(path: &Path, body: &[u8], synced: bool) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    std::io::Write::write_all(&mut file, body)?;
    if synced {
        file.sync_all()?;
    }
    Ok(())
}

/// Syncs a directory's entries (a rename or a new file in it) to disk.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[async_trait]
impl Store for FsStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let path = self.path(key)?;
        let result = match tokio::fs::read(&path).await {
            Ok(data) => Ok(Some(Bytes::from(data))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(e)),
        };
        self.counters.count(&self.counters.gets, &result);
        result
    }

    async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let root = self.root.clone();
        let synced = self.synced;
        let result =
            tokio::task::spawn_blocking(move || write_replacing(&root, &path, &body, synced))
                .await
                .map_err(|e| StoreError::backend("file system task", e))
                .and_then(|written| written.map_err(io_error));
        self.counters.count(&self.counters.puts, &result);
        result
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let result = async {
            // List the deepest directory the prefix names, then filter.
            let dir_part = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
            let start = if dir_part.is_empty() {
                self.root.clone()
            } else {
                self.path(dir_part)?
            };
            let mut keys = Vec::new();
            let mut pending = vec![start];
            while let Some(dir) = pending.pop() {
                let mut entries = match tokio::fs::read_dir(&dir).await {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_error(e)),
                };
                while let Some(entry) = entries.next_entry().await.map_err(io_error)? {
                    let path = entry.path();
                    if entry.file_type().await.map_err(io_error)?.is_dir() {
                        pending.push(path);
                        continue;
                    }
                    if entry.file_name().to_string_lossy().starts_with('.') {
                        continue;
                    }
                    let Ok(relative) = path.strip_prefix(&self.root) else {
                        continue;
                    };
                    let key = relative
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    if key.starts_with(prefix) {
                        keys.push(key);
                    }
                }
            }
            Ok(keys)
        }
        .await;
        self.counters.count(&self.counters.lists, &result);
        result
    }

    async fn usage(&self, prefix: &str) -> Result<u64, StoreError> {
        let mut total = 0;
        for key in self.list(prefix).await? {
            match tokio::fs::metadata(self.path(&key)?).await {
                Ok(meta) => total += meta.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        Ok(total)
    }

    async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        let result = async {
            for key in keys {
                match tokio::fs::remove_file(self.path(key)?).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(e)),
                }
            }
            Ok(())
        }
        .await;
        self.counters.count(&self.counters.deletes, &result);
        result
    }

    async fn attachment_link(
        &self,
        conversation: &ConversationId,
        attachment_id: &str,
        variant: AttachmentVariant,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        Ok(self.links.link(conversation, attachment_id, variant, ttl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trips_lists_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let links = Arc::new(DownloadLinks::new(b"k".to_vec(), "http://x".into()));
        let store = FsStore::open(dir.path(), true, Arc::default(), links).unwrap();
        store
            .put("a/b/c.json", Bytes::from_static(b"1"), "x")
            .await
            .unwrap();
        store
            .put("a/b/d.json", Bytes::from_static(b"2"), "x")
            .await
            .unwrap();
        store
            .put("a/e.json", Bytes::from_static(b"3"), "x")
            .await
            .unwrap();
        assert_eq!(
            store.get("a/b/c.json").await.unwrap().unwrap(),
            Bytes::from_static(b"1")
        );
        assert_eq!(store.get("a/none").await.unwrap(), None);
        let mut keys = store.list("a/b/").await.unwrap();
        keys.sort();
        assert_eq!(keys, vec!["a/b/c.json", "a/b/d.json"]);
        assert_eq!(store.list("a/").await.unwrap().len(), 3);
        assert!(store.list("zzz/").await.unwrap().is_empty());
        for bad in ["../x", "/etc/passwd", "a//b", ""] {
            assert!(store.get(bad).await.is_err(), "{bad}");
        }
    }
}
