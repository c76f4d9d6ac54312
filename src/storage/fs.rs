//! The embedded default store: a local directory with the same keys as S3.
//! Writes go to a temporary file that is renamed into place, so a reader
//! never sees half an object. With `synced` (the default, `[durability]
//! sync = "fsync"`) a write is on disk before it is answered: the file is
//! synced before the rename and its directory after, so a power loss keeps
//! what the write-ahead log let go once storage held it.
//!
//! An object's version ([`Version`]) is the SHA-256 of its content. A
//! conditional write ([`Store::put_if`]) holds an exclusive lock on a lock
//! file in the key's directory (`.chats3-put-if.lock`, which listings
//! skip like every dot file) while it compares the stored version and
//! replaces the object, so conditional writes of one directory happen one
//! at a time, also across processes sharing the directory. A plain `put`
//! takes no lock: keys that conditional writes guard are written with
//! them only.

use super::StorageCounters;
use super::links::DownloadLinks;
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chats3_actors::domain::{AttachmentVariant, ConversationId};
use chats3_actors::store::{Store, StoreError, Version};
use sha2::{Digest, Sha256};
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

/// The lock file conditional writes of a directory hold.
const LOCK_FILE: &str = ".chats3-put-if.lock";

fn io_error(e: std::io::Error) -> StoreError {
    StoreError::backend("file system call", e)
}

/// The version of an object holding `body`: its SHA-256, base64url.
fn version_of(body: &[u8]) -> Version {
    Version::Tag(URL_SAFE_NO_PAD.encode(Sha256::digest(body)))
}

/// Runs a blocking file system call in a task of its own.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| StoreError::backend("file system task", e))?
        .map_err(io_error)
}

/// Writes `body` to `path` (under `root`) through a temporary file renamed
/// into place; `synced`, the file and then every directory the write
/// created or changed are synced, so the object is on disk once this returns.
fn write_replacing(root: &Path, path: &Path, body: &[u8], synced: bool) -> std::io::Result<()> {
    let (parent, created) = create_parent(root, path)?;
    replace(parent, path, body, synced)?;
    sync_created(&created, synced)
}

/// Writes `body` to `path` like [`write_replacing`] if what it holds is
/// still `expected`, under the directory's lock; `None` when it is not.
fn write_if(
    root: &Path,
    path: &Path,
    body: &[u8],
    synced: bool,
    expected: &Version,
) -> std::io::Result<Option<Version>> {
    let (parent, created) = create_parent(root, path)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(parent.join(LOCK_FILE))?;
    lock.lock()?;
    let stored = match std::fs::read(path) {
        Ok(stored) => version_of(&stored),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Version::Absent,
        Err(e) => return Err(e),
    };
    if stored != *expected {
        return Ok(None);
    }
    replace(parent, path, body, synced)?;
    sync_created(&created, synced)?;
    Ok(Some(version_of(body)))
}

/// Creates the directory of `path` (under `root`); answers it and the
/// directories this created, each of which must reach its parent's entry.
fn create_parent<'a>(root: &Path, path: &'a Path) -> std::io::Result<(&'a Path, Vec<&'a Path>)> {
    let parent = path
        .parent()
        .ok_or_else(|| std::io::Error::other("key has no parent"))?;
    let mut created = Vec::new();
    let mut missing = Some(parent);
    while let Some(dir) = missing.filter(|dir| *dir != root && !dir.exists()) {
        created.push(dir);
        missing = dir.parent();
    }
    std::fs::create_dir_all(parent)?;
    Ok((parent, created))
}

/// Replaces `path` (in `parent`) with `body` through a temporary file
/// renamed into place; `synced`, the file and the directory are synced.
fn replace(parent: &Path, path: &Path, body: &[u8], synced: bool) -> std::io::Result<()> {
    let temp = parent.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
    if let Err(e) = write_file(&temp, body, synced).and_then(|()| std::fs::rename(&temp, path)) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    if synced {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Syncs the entries of the directories a write `created` (`synced` only).
fn sync_created(created: &[&Path], synced: bool) -> std::io::Result<()> {
    if synced {
        for above in created.iter().filter_map(|dir| dir.parent()) {
            sync_dir(above)?;
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

    async fn get_versioned(&self, key: &str) -> Result<(Option<Bytes>, Version), StoreError> {
        let body = self.get(key).await?;
        let version = body.as_deref().map_or(Version::Absent, version_of);
        Ok((body, version))
    }

    async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let root = self.root.clone();
        let synced = self.synced;
        let result = blocking(move || write_replacing(&root, &path, &body, synced)).await;
        self.counters.count(&self.counters.puts, &result);
        result
    }

    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        _content_type: &str,
        expected: &Version,
    ) -> Result<Version, StoreError> {
        let path = self.path(key)?;
        let root = self.root.clone();
        let synced = self.synced;
        let expected = expected.clone();
        let result = blocking(move || write_if(&root, &path, &body, synced, &expected))
            .await
            .and_then(|written| written.ok_or(StoreError::Changed));
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

    #[tokio::test]
    async fn a_conditional_write_replaces_only_the_version_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let links = Arc::new(DownloadLinks::new(b"k".to_vec(), "http://x".into()));
        let store = FsStore::open(dir.path(), true, Arc::default(), links).unwrap();
        let key = "c/doc.json";
        let body = |text: &'static str| Bytes::from_static(text.as_bytes());
        assert_eq!(
            store.get_versioned(key).await.unwrap(),
            (None, Version::Absent)
        );

        let first = store
            .put_if(key, body("1"), "x", &Version::Absent)
            .await
            .unwrap();
        let created_again = store
            .put_if(key, body("other"), "x", &Version::Absent)
            .await;
        assert!(
            matches!(created_again, Err(StoreError::Changed)),
            "{created_again:?}"
        );
        assert_eq!(
            store.get_versioned(key).await.unwrap(),
            (Some(body("1")), first.clone())
        );

        let second = store.put_if(key, body("2"), "x", &first).await.unwrap();
        assert_ne!(first, second);
        let stale = store.put_if(key, body("stale"), "x", &first).await;
        assert!(matches!(stale, Err(StoreError::Changed)), "{stale:?}");
        assert_eq!(
            store.get_versioned(key).await.unwrap(),
            (Some(body("2")), second)
        );
        assert_eq!(
            store.list("c/").await.unwrap(),
            vec![key],
            "the lock is not an object"
        );
    }
}
