//! The directory backend: `<root>/objects/<key>` with metadata in `<root>/object-meta/<key>.json`.
//! Writes go to a temporary file and are renamed into place, so readers never see half a file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{LocalObject, ObjectInfo, ObjectKey, ObjectStore, PutOptions};
use crate::BackendError;

pub struct LocalObjectStore {
    objects: PathBuf,
    metadata: PathBuf,
}

impl LocalObjectStore {
    pub fn open(root: &Path) -> Result<LocalObjectStore, BackendError> {
        let store = LocalObjectStore {
            objects: root.join("objects"),
            metadata: root.join("object-meta"),
        };
        crate::private::private_dir(root)?;
        for dir in [&store.objects, &store.metadata] {
            crate::private::private_dir(dir)?;
        }
        Ok(store)
    }

    fn object_path(&self, key: &ObjectKey) -> PathBuf {
        self.objects.join(key.as_str())
    }

    fn metadata_path(&self, key: &ObjectKey) -> PathBuf {
        self.metadata.join(format!("{}.json", key.as_str()))
    }

    fn write_atomically(
        &self,
        target: &Path,
        write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
    ) -> Result<(), BackendError> {
        let dir = target.parent().unwrap_or(&self.objects);
        std::fs::create_dir_all(dir).map_err(|e| BackendError::io("create directory", dir, e))?;
        let mut temp =
            tempfile::NamedTempFile::new_in(dir).map_err(|e| BackendError::io("create temporary file", dir, e))?;
        write(temp.as_file_mut()).map_err(|e| BackendError::io("write", target, e))?;
        temp.persist(target)
            .map_err(|e| BackendError::io("rename into place", target, e.error))?;
        Ok(())
    }

    fn write_metadata(&self, key: &ObjectKey, metadata: &BTreeMap<String, String>) -> Result<(), BackendError> {
        let json = serde_json::to_vec(metadata).map_err(|e| BackendError::Corrupt {
            location: key.to_string(),
            reason: e.to_string(),
        })?;
        self.write_atomically(&self.metadata_path(key), |file| file.write_all(&json))
    }

    fn read_metadata(&self, key: &ObjectKey) -> Result<BTreeMap<String, String>, BackendError> {
        let path = self.metadata_path(key);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| BackendError::Corrupt {
                location: path.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(BackendError::io("read", &path, e)),
        }
    }

    fn info(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, BackendError> {
        let path = self.object_path(key);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(Some(ObjectInfo {
                key: key.clone(),
                size: meta.len(),
                metadata: self.read_metadata(key)?,
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BackendError::io("stat", &path, e)),
        }
    }

    fn not_found(key: &ObjectKey) -> BackendError {
        BackendError::NotFound {
            what: format!("object {key}"),
        }
    }
}

#[async_trait]
impl ObjectStore for LocalObjectStore {
    async fn put_bytes(&self, key: &ObjectKey, body: Bytes, options: &PutOptions) -> Result<ObjectInfo, BackendError> {
        self.write_atomically(&self.object_path(key), |file| file.write_all(&body))?;
        self.write_metadata(key, &options.metadata)?;
        Ok(ObjectInfo {
            key: key.clone(),
            size: body.len() as u64,
            metadata: options.metadata.clone(),
        })
    }

    async fn put_file(&self, key: &ObjectKey, path: &Path, options: &PutOptions) -> Result<ObjectInfo, BackendError> {
        let mut source = std::fs::File::open(path).map_err(|e| BackendError::io("open", path, e))?;
        self.write_atomically(&self.object_path(key), |file| {
            std::io::copy(&mut source, file).map(drop)
        })?;
        self.write_metadata(key, &options.metadata)?;
        self.info(key)?.ok_or_else(|| Self::not_found(key))
    }

    async fn get_bytes(&self, key: &ObjectKey, max_bytes: u64) -> Result<Bytes, BackendError> {
        let info = self.info(key)?.ok_or_else(|| Self::not_found(key))?;
        if info.size > max_bytes {
            return Err(BackendError::InvalidKey {
                key: key.to_string(),
                reason: "object is larger than the caller's read limit",
            });
        }
        let path = self.object_path(key);
        std::fs::read(&path)
            .map(Bytes::from)
            .map_err(|e| BackendError::io("read", &path, e))
    }

    async fn download(&self, key: &ObjectKey) -> Result<LocalObject, BackendError> {
        let path = self.object_path(key);
        if !path.is_file() {
            return Err(Self::not_found(key));
        }
        Ok(LocalObject { path, _temp: None })
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, BackendError> {
        self.info(key)
    }

    async fn copy(
        &self,
        from: &ObjectKey,
        to: &ObjectKey,
        extra_metadata: &BTreeMap<String, String>,
    ) -> Result<ObjectInfo, BackendError> {
        let source = self.object_path(from);
        if !source.is_file() {
            return Err(Self::not_found(from));
        }
        let mut metadata = self.read_metadata(from)?;
        metadata.extend(extra_metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut reader = std::fs::File::open(&source).map_err(|e| BackendError::io("open", &source, e))?;
        self.write_atomically(&self.object_path(to), |file| std::io::copy(&mut reader, file).map(drop))?;
        self.write_metadata(to, &metadata)?;
        self.info(to)?.ok_or_else(|| Self::not_found(to))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), BackendError> {
        for path in [self.object_path(key), self.metadata_path(key)] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(BackendError::io("delete", &path, e)),
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError> {
        let mut keys = Vec::new();
        collect_files(&self.objects, &self.objects, &mut keys)?;
        keys.retain(|key| key.starts_with(prefix));
        keys.sort();
        let mut infos = Vec::with_capacity(keys.len());
        for key in keys {
            let Ok(key) = ObjectKey::new(key) else { continue };
            if let Some(info) = self.info(&key)? {
                infos.push(info);
            }
        }
        Ok(infos)
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), BackendError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(BackendError::io("list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| BackendError::io("list", dir, e))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(|e| BackendError::io("stat", &path, e))?;
        if file_type.is_dir() {
            collect_files(root, &path, out)?;
        } else if file_type.is_file() {
            let is_temp = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".tmp"));
            if let (false, Ok(relative)) = (is_temp, path.strip_prefix(root))
                && let Some(text) = relative.to_str()
            {
                out.push(text.replace(std::path::MAIN_SEPARATOR, "/"));
            }
        }
    }
    Ok(())
}
