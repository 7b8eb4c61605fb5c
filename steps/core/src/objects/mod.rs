//! The objects port: S3 on AWS, a directory locally.

mod local;
mod s3;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use crate::BackendError;

pub use local::LocalObjectStore;
pub use s3::S3ObjectStore;

/// An object key that is safe on S3 and on a file system: relative, `/`-separated, no empty,
/// `.` or `..` segments, no backslashes and no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub const MAX_LEN: usize = 1024;

    pub fn new(key: impl Into<String>) -> Result<ObjectKey, BackendError> {
        let key = key.into();
        let invalid = |reason| BackendError::InvalidKey {
            key: key.chars().take(200).collect(),
            reason,
        };
        if key.is_empty() {
            return Err(invalid("is empty"));
        }
        if key.len() > Self::MAX_LEN {
            return Err(invalid("is longer than 1024 bytes"));
        }
        if key.chars().any(char::is_control) {
            return Err(invalid("contains a control character"));
        }
        if key.contains('\\') {
            return Err(invalid("contains a backslash"));
        }
        if key.starts_with('/') {
            return Err(invalid("is absolute"));
        }
        if key
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..")
        {
            return Err(invalid("has an empty, '.' or '..' segment"));
        }
        Ok(ObjectKey(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment (the file name).
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// A sibling key: the same prefix with another last segment.
    pub fn with_file_name(&self, name: &str) -> Result<ObjectKey, BackendError> {
        match self.0.rsplit_once('/') {
            Some((prefix, _)) => ObjectKey::new(format!("{prefix}/{name}")),
            None => ObjectKey::new(name),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ObjectKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Options of a write.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// User metadata (`x-amz-meta-*` on S3). Keys are lowercase ASCII; values are never PII.
    pub metadata: BTreeMap<String, String>,
    pub content_type: Option<String>,
}

/// What a stored object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: ObjectKey,
    pub size: u64,
    pub metadata: BTreeMap<String, String>,
    /// What tells this version of the object from another written at the same key: S3's ETag,
    /// the file's size and modification time on the directory backend. `None` when the backend
    /// did not say (a write's answer may not).
    pub version: Option<String>,
}

/// A readable local copy of an object: the file itself for the directory backend, a temporary
/// download (deleted on drop) for S3. Large objects are read from disk, never held in memory.
#[derive(Debug)]
pub struct LocalObject {
    path: PathBuf,
    _temp: Option<tempfile::TempPath>,
}

impl LocalObject {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn open(&self) -> Result<std::fs::File, BackendError> {
        std::fs::File::open(&self.path).map_err(|e| BackendError::io("open", &self.path, e))
    }
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Writes `body` at `key`, replacing what was there.
    async fn put_bytes(&self, key: &ObjectKey, body: Bytes, options: &PutOptions) -> Result<ObjectInfo, BackendError>;

    /// Writes the file at `path` at `key`; large files go up in parts.
    async fn put_file(&self, key: &ObjectKey, path: &Path, options: &PutOptions) -> Result<ObjectInfo, BackendError>;

    /// Writes the temporary file `file` at `key`, taking it over: the directory backend moves it
    /// into place instead of copying its bytes when it can.
    async fn put_temp_file(
        &self,
        key: &ObjectKey,
        file: tempfile::NamedTempFile,
        options: &PutOptions,
    ) -> Result<ObjectInfo, BackendError> {
        self.put_file(key, file.path(), options).await
    }

    /// Reads a whole object into memory, refusing one larger than `max_bytes`.
    async fn get_bytes(&self, key: &ObjectKey, max_bytes: u64) -> Result<Bytes, BackendError>;

    /// A readable local copy of the object, for streaming readers.
    async fn download(&self, key: &ObjectKey) -> Result<LocalObject, BackendError>;

    /// The object's size and metadata, or `None` when it does not exist.
    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, BackendError>;

    /// Copies `from` to `to` with its metadata plus `extra_metadata`.
    async fn copy(
        &self,
        from: &ObjectKey,
        to: &ObjectKey,
        extra_metadata: &BTreeMap<String, String>,
    ) -> Result<ObjectInfo, BackendError>;

    /// Deletes `key`; deleting a missing object is not an error.
    async fn delete(&self, key: &ObjectKey) -> Result<(), BackendError>;

    /// Every object whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError>;
}

/// Moves an object: copy, then delete the source (S3 has no rename).
pub async fn move_object(
    store: &dyn ObjectStore,
    from: &ObjectKey,
    to: &ObjectKey,
    extra_metadata: &BTreeMap<String, String>,
) -> Result<ObjectInfo, BackendError> {
    let info = store.copy(from, to, extra_metadata).await?;
    store.delete(from).await?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_reject_traversal_and_control_characters() {
        for bad in [
            "",
            "/etc/passwd",
            "raw/../secrets",
            "raw//x",
            "raw/./x",
            "a\\b",
            "raw/x\ny",
            "raw/\u{7f}",
        ] {
            assert!(ObjectKey::new(bad).is_err(), "{bad:?} should be rejected");
        }
        for good in [
            "raw/abc/report.csv",
            "staged/ab/file name é.csv",
            "quarantine/x.csv.reason.json",
        ] {
            assert_eq!(ObjectKey::new(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn sibling_keys_keep_the_prefix() {
        let key = ObjectKey::new("staged/abc/data.csv").unwrap();
        assert_eq!(key.file_name(), "data.csv");
        assert_eq!(
            key.with_file_name("data.rejects.csv").unwrap().as_str(),
            "staged/abc/data.rejects.csv"
        );
    }
}
