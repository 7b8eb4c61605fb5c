//! The port through which a Distributed Map reads its items (`ItemReader`) and writes its
//! results (`ResultWriter`). The engine holds no S3 client: its host binds this trait to
//! whatever stands for S3 (Sluice's object store, a local directory, memory in tests).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why an object call failed; the engine turns it into `States.ItemReaderFailed` or
/// `States.ResultWriterFailed` with this text as the cause.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ObjectError {
    #[error("The specified bucket does not exist: s3://{0}")]
    NoSuchBucket(String),
    #[error("The specified key does not exist: s3://{bucket}/{key}")]
    NoSuchKey { bucket: String, key: String },
    #[error("'{0}' is not a valid bucket name or object key")]
    InvalidName(String),
    #[error("s3://{bucket}/{key}: {message}")]
    Io {
        bucket: String,
        key: String,
        message: String,
    },
    #[error("no object storage is bound to this engine (S3 calls need one: `--s3-dir DIR` locally)")]
    Unbound,
}

/// One object as `ListObjectsV2` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSummary {
    pub key: String,
    pub size: u64,
    /// Quoted, as S3 returns it.
    pub etag: String,
    pub last_modified: DateTime<Utc>,
    pub storage_class: String,
}

/// One page of a listing; `next` continues it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectPage {
    pub objects: Vec<ObjectSummary>,
    pub next: Option<String>,
}

/// S3 as the engine needs it.
#[async_trait]
pub trait ObjectStorage: Send + Sync {
    async fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, ObjectError>;

    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), ObjectError>;

    /// Objects whose key starts with `prefix`, in key order, at most 1,000 a page; `after`
    /// is the `next` of the previous page.
    async fn list_objects(&self, bucket: &str, prefix: &str, after: Option<&str>) -> Result<ObjectPage, ObjectError>;
}

/// The default binding: every call fails with [`ObjectError::Unbound`].
#[derive(Debug, Default)]
pub struct NoObjectStorage;

#[async_trait]
impl ObjectStorage for NoObjectStorage {
    async fn get_object(&self, _: &str, _: &str) -> Result<Vec<u8>, ObjectError> {
        Err(ObjectError::Unbound)
    }
    async fn put_object(&self, _: &str, _: &str, _: Vec<u8>) -> Result<(), ObjectError> {
        Err(ObjectError::Unbound)
    }
    async fn list_objects(&self, _: &str, _: &str, _: Option<&str>) -> Result<ObjectPage, ObjectError> {
        Err(ObjectError::Unbound)
    }
}

/// S3's page size for `ListObjectsV2`.
pub const LIST_PAGE_SIZE: usize = 1000;

fn etag_of(body: &[u8]) -> String {
    use md5::Digest;
    format!("\"{}\"", hex::encode(md5::Md5::digest(body)))
}

/// Objects in memory (tests, conformance cases): buckets exist once something is put in them
/// or [`MemoryObjectStorage::create_bucket`] names them.
#[derive(Debug, Default)]
pub struct MemoryObjectStorage {
    buckets: Mutex<Buckets>,
}

/// Bucket -> key -> (body, last modified).
type Buckets = BTreeMap<String, BTreeMap<String, (Vec<u8>, DateTime<Utc>)>>;

impl MemoryObjectStorage {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.lock().entry(bucket.to_string()).or_default();
    }

    /// Puts an object synchronously (seeding before a run).
    pub fn insert(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        self.lock()
            .entry(bucket.to_string())
            .or_default()
            .insert(key.to_string(), (body.into(), Utc::now()));
    }

    /// The keys of a bucket, in order.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.lock()
            .get(bucket)
            .map(|b| b.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buckets> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl ObjectStorage for MemoryObjectStorage {
    async fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, ObjectError> {
        let buckets = self.lock();
        let objects = buckets
            .get(bucket)
            .ok_or_else(|| ObjectError::NoSuchBucket(bucket.to_string()))?;
        objects
            .get(key)
            .map(|(body, _)| body.clone())
            .ok_or_else(|| ObjectError::NoSuchKey {
                bucket: bucket.to_string(),
                key: key.to_string(),
            })
    }

    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), ObjectError> {
        self.insert(bucket, key, body);
        Ok(())
    }

    async fn list_objects(&self, bucket: &str, prefix: &str, after: Option<&str>) -> Result<ObjectPage, ObjectError> {
        let buckets = self.lock();
        let objects = buckets
            .get(bucket)
            .ok_or_else(|| ObjectError::NoSuchBucket(bucket.to_string()))?;
        let mut page = ObjectPage::default();
        let start = after.unwrap_or(prefix);
        for (key, (body, modified)) in
            objects.range::<str, _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
        {
            if after == Some(key.as_str()) {
                continue;
            }
            if !key.starts_with(prefix) {
                break;
            }
            if page.objects.len() == LIST_PAGE_SIZE {
                page.next = page.objects.last().map(|o| o.key.clone());
                break;
            }
            page.objects.push(ObjectSummary {
                key: key.clone(),
                size: body.len() as u64,
                etag: etag_of(body),
                last_modified: *modified,
                storage_class: "STANDARD".into(),
            });
        }
        Ok(page)
    }
}

/// Objects as files: bucket `B`, key `K` is the file `ROOT/B/K` (what `--s3-dir` binds).
#[derive(Debug, Clone)]
pub struct DirectoryObjectStorage {
    root: PathBuf,
}

impl DirectoryObjectStorage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf, ObjectError> {
        if bucket.is_empty() || bucket.contains(['/', '\\']) || bucket == "." || bucket == ".." {
            return Err(ObjectError::InvalidName(bucket.to_string()));
        }
        Ok(self.root.join(bucket))
    }

    /// Refuses keys that would leave the bucket's directory.
    fn object_path(&self, bucket: &str, key: &str) -> Result<PathBuf, ObjectError> {
        let dir = self.bucket_dir(bucket)?;
        let bad = key.is_empty()
            || key.starts_with('/')
            || key.contains('\0')
            || key.split('/').any(|part| part == ".." || part == ".");
        if bad {
            return Err(ObjectError::InvalidName(key.to_string()));
        }
        Ok(dir.join(key))
    }

    fn io_error(bucket: &str, key: &str, e: std::io::Error) -> ObjectError {
        ObjectError::Io {
            bucket: bucket.to_string(),
            key: key.to_string(),
            message: e.to_string(),
        }
    }
}

fn walk(dir: &Path, base: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = if base.is_empty() {
            name
        } else {
            format!("{base}/{name}")
        };
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &key, out)?;
        } else {
            out.push(key);
        }
    }
    Ok(())
}

#[async_trait]
impl ObjectStorage for DirectoryObjectStorage {
    async fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, ObjectError> {
        let path = self.object_path(bucket, key)?;
        match tokio::fs::read(&path).await {
            Ok(body) => Ok(body),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.bucket_dir(bucket)?.is_dir() {
                    Err(ObjectError::NoSuchKey {
                        bucket: bucket.to_string(),
                        key: key.to_string(),
                    })
                } else {
                    Err(ObjectError::NoSuchBucket(bucket.to_string()))
                }
            }
            Err(e) => Err(Self::io_error(bucket, key, e)),
        }
    }

    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), ObjectError> {
        let path = self.object_path(bucket, key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| Self::io_error(bucket, key, e))?;
        }
        // Written beside and renamed, so a reader never sees half an object.
        let partial = path.with_extension(format!("partial-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&partial, body)
            .await
            .map_err(|e| Self::io_error(bucket, key, e))?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|e| Self::io_error(bucket, key, e))
    }

    async fn list_objects(&self, bucket: &str, prefix: &str, after: Option<&str>) -> Result<ObjectPage, ObjectError> {
        let dir = self.bucket_dir(bucket)?;
        if !dir.is_dir() {
            return Err(ObjectError::NoSuchBucket(bucket.to_string()));
        }
        // Only the folder the prefix names (up to its last '/') can hold matching keys.
        let base = prefix.rsplit_once('/').map_or("", |(folder, _)| folder).to_string();
        if base.split('/').any(|part| part == ".." || part == ".") {
            return Err(ObjectError::InvalidName(prefix.to_string()));
        }
        let root = if base.is_empty() { dir.clone() } else { dir.join(&base) };
        let mut keys = tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            match walk(&root, &base, &mut keys) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(keys),
                other => other.map(|_| keys),
            }
        })
        .await
        .map_err(|e| ObjectError::Io {
            bucket: bucket.to_string(),
            key: prefix.to_string(),
            message: e.to_string(),
        })?
        .map_err(|e| Self::io_error(bucket, prefix, e))?;
        keys.retain(|k| k.starts_with(prefix) && after.is_none_or(|a| k.as_str() > a));
        keys.sort();
        let mut page = ObjectPage::default();
        for key in keys.into_iter().take(LIST_PAGE_SIZE + 1) {
            if page.objects.len() == LIST_PAGE_SIZE {
                page.next = page.objects.last().map(|o| o.key.clone());
                break;
            }
            let path = dir.join(&key);
            let body = tokio::fs::read(&path)
                .await
                .map_err(|e| Self::io_error(bucket, &key, e))?;
            let modified = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .map(DateTime::<Utc>::from)
                .unwrap_or_else(|_| Utc::now());
            page.objects.push(ObjectSummary {
                size: body.len() as u64,
                etag: etag_of(&body),
                key,
                last_modified: modified,
                storage_class: "STANDARD".into(),
            });
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_refuses_keys_that_leave_the_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirectoryObjectStorage::new(dir.path());
        for key in ["../x", "a/../../x", "/etc/passwd", ""] {
            assert!(matches!(
                store.get_object("b", key).await,
                Err(ObjectError::InvalidName(_))
            ));
        }
        assert!(matches!(
            store.get_object("..", "x").await,
            Err(ObjectError::InvalidName(_))
        ));
    }

    #[tokio::test]
    async fn a_directory_lists_in_key_order_by_pages() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirectoryObjectStorage::new(dir.path());
        for i in (0..1005).rev() {
            store
                .put_object("b", &format!("p/{i:05}.json"), b"[]".to_vec())
                .await
                .unwrap();
        }
        store.put_object("b", "q/other", b"x".to_vec()).await.unwrap();
        let first = store.list_objects("b", "p/", None).await.unwrap();
        assert_eq!(first.objects.len(), 1000);
        assert_eq!(first.objects[0].key, "p/00000.json");
        assert_eq!(first.objects[0].etag, "\"d751713988987e9331980363e24189ce\"");
        let second = store.list_objects("b", "p/", first.next.as_deref()).await.unwrap();
        assert_eq!(second.objects.len(), 5);
        assert_eq!(second.next, None);
        assert!(matches!(
            store.get_object("b", "p/missing").await,
            Err(ObjectError::NoSuchKey { .. })
        ));
        assert!(matches!(
            store.get_object("nobucket", "k").await,
            Err(ObjectError::NoSuchBucket(_))
        ));
    }

    #[tokio::test]
    async fn memory_lists_like_a_directory() {
        let store = MemoryObjectStorage::new();
        for i in 0..1001 {
            store.insert("b", &format!("k{i:04}"), "x");
        }
        let first = store.list_objects("b", "k", None).await.unwrap();
        assert_eq!(first.objects.len(), 1000);
        let second = store.list_objects("b", "k", first.next.as_deref()).await.unwrap();
        assert_eq!(second.objects.len(), 1);
        assert_eq!(second.objects[0].key, "k1000");
    }
}
