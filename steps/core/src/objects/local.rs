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
            Ok(meta) if meta.is_file() => {
                let mut metadata = self.read_metadata(key)?;
                let stamp = file_stamp(&meta);
                // The content hash this store wrote, while the file is still the one it wrote;
                // a file put or rewritten by hand is told by its size and time instead.
                let version = match metadata.remove(VERSION_METADATA) {
                    Some(written) => match written.split_once('@') {
                        Some((hash, at)) if at == stamp => hash.to_string(),
                        _ => stamp,
                    },
                    None => stamp,
                };
                Ok(Some(ObjectInfo {
                    key: key.clone(),
                    size: meta.len(),
                    metadata,
                    version: Some(version),
                }))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BackendError::io("stat", &path, e)),
        }
    }

    /// Writes `source` at `key`, hashing the bytes on their way (xxh3-128: the content's version).
    fn write_hashed(&self, key: &ObjectKey, mut source: std::fs::File) -> Result<u128, BackendError> {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        self.write_atomically(&self.object_path(key), |file| {
            let mut buffer = vec![0u8; 256 * 1024];
            loop {
                let read = std::io::Read::read(&mut source, &mut buffer)?;
                if read == 0 {
                    return Ok(());
                }
                hasher.update(&buffer[..read]);
                file.write_all(&buffer[..read])?;
            }
        })?;
        Ok(hasher.digest128())
    }

    /// The content hash the sidecar of `key` recorded, while the file at `path` is still the one
    /// that was written.
    fn recorded_hash(&self, key: &ObjectKey, path: &Path) -> Result<Option<u128>, BackendError> {
        let meta = std::fs::metadata(path).map_err(|e| BackendError::io("stat", path, e))?;
        let recorded = self.read_metadata(key)?.remove(VERSION_METADATA);
        Ok(recorded.and_then(|written| {
            let (hash, at) = written.split_once('@')?;
            let hex = hash.strip_prefix("xxh3-")?;
            (at == file_stamp(&meta)).then(|| u128::from_str_radix(hex, 16).ok())?
        }))
    }

    /// The xxh3-128 of a file's bytes.
    fn hash_of(path: &Path) -> Result<u128, BackendError> {
        let mut source = std::fs::File::open(path).map_err(|e| BackendError::io("open", path, e))?;
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let read = std::io::Read::read(&mut source, &mut buffer).map_err(|e| BackendError::io("read", path, e))?;
            if read == 0 {
                return Ok(hasher.digest128());
            }
            hasher.update(&buffer[..read]);
        }
    }

    /// Puts a second name on the file at `source`, at `target`, replacing what was there; false
    /// when the file system refuses (another device, no hard links), and nothing changed.
    /// Sharing the bytes is safe because this store never writes a file in place: every write
    /// makes a new file and renames it over the old one, so neither name sees the other's.
    fn link_into_place(&self, source: &Path, target: &Path) -> Result<bool, BackendError> {
        if same_file(source, target) {
            // Renaming a second name of a file over the first does nothing and leaves both.
            return Ok(true);
        }
        let dir = target.parent().unwrap_or(&self.objects);
        std::fs::create_dir_all(dir).map_err(|e| BackendError::io("create directory", dir, e))?;
        let linked = match tempfile::Builder::new()
            .prefix(".tmp")
            .make_in(dir, |path| std::fs::hard_link(source, path))
        {
            Ok(linked) => linked,
            Err(_) => return Ok(false),
        };
        linked
            .persist(target)
            .map_err(|e| BackendError::io("rename into place", target, e.error))?;
        Ok(true)
    }

    /// The sidecar of a finished write: the caller's metadata, and the content's version tied to
    /// the file as written.
    fn finish_write(
        &self,
        key: &ObjectKey,
        metadata: &BTreeMap<String, String>,
        hash: u128,
    ) -> Result<ObjectInfo, BackendError> {
        let path = self.object_path(key);
        let meta = std::fs::metadata(&path).map_err(|e| BackendError::io("stat", &path, e))?;
        let mut sidecar = metadata.clone();
        sidecar.insert(
            VERSION_METADATA.to_string(),
            format!("xxh3-{hash:032x}@{}", file_stamp(&meta)),
        );
        self.write_metadata(key, &sidecar)?;
        Ok(ObjectInfo {
            key: key.clone(),
            size: meta.len(),
            metadata: metadata.clone(),
            version: Some(format!("xxh3-{hash:032x}")),
        })
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
        self.finish_write(key, &options.metadata, xxhash_rust::xxh3::xxh3_128(&body))
    }

    async fn put_file(&self, key: &ObjectKey, path: &Path, options: &PutOptions) -> Result<ObjectInfo, BackendError> {
        let source = std::fs::File::open(path).map_err(|e| BackendError::io("open", path, e))?;
        let hash = self.write_hashed(key, source)?;
        self.finish_write(key, &options.metadata, hash)
    }

    async fn put_temp_file(
        &self,
        key: &ObjectKey,
        file: tempfile::NamedTempFile,
        options: &PutOptions,
    ) -> Result<ObjectInfo, BackendError> {
        let hash = Self::hash_of(file.path())?;
        let target = self.object_path(key);
        let dir = target.parent().unwrap_or(&self.objects);
        std::fs::create_dir_all(dir).map_err(|e| BackendError::io("create directory", dir, e))?;
        // Renamed into place when it is on the same file system; copied when it is not.
        match file.persist(&target) {
            Ok(_) => {}
            Err(refused) => {
                let source = refused
                    .file
                    .reopen()
                    .map_err(|e| BackendError::io("open", refused.file.path(), e))?;
                self.write_hashed(key, source)?;
            }
        }
        self.finish_write(key, &options.metadata, hash)
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
        metadata.remove(VERSION_METADATA);
        // The bytes are shared, not copied (a 1 GB copy is seconds of writing), where the file
        // system allows it.
        let recorded = self.recorded_hash(from, &source)?;
        let target = self.object_path(to);
        if self.link_into_place(&source, &target)? {
            let hash = match recorded {
                Some(hash) => hash,
                None => Self::hash_of(&target)?,
            };
            return self.finish_write(to, &metadata, hash);
        }
        let reader = std::fs::File::open(&source).map_err(|e| BackendError::io("open", &source, e))?;
        let hash = self.write_hashed(to, reader)?;
        self.finish_write(to, &metadata, hash)
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
        // Only the directory the prefix names is walked, not the whole store.
        let under = match prefix.rsplit_once('/') {
            Some((dir, _)) if !dir.is_empty() && ObjectKey::new(dir).is_ok() => self.objects.join(dir),
            _ => self.objects.clone(),
        };
        collect_files(&self.objects, &under, &mut keys)?;
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

/// The sidecar entry holding the content hash of what this store wrote (never user metadata).
const VERSION_METADATA: &str = "sluice-content-version";

/// Whether two paths name the very same file.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

/// A file's size and modification time, which a rewrite changes.
fn file_stamp(meta: &std::fs::Metadata) -> String {
    let modified = meta
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos());
    format!("{}-{modified}", meta.len())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, LocalObjectStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalObjectStore::open(dir.path()).unwrap();
        (dir, store)
    }

    fn key(text: &str) -> ObjectKey {
        ObjectKey::new(text).unwrap()
    }

    fn temp_files_in(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(temp_files_in(&path));
            } else if path.file_name().unwrap().to_string_lossy().starts_with(".tmp") {
                found.push(path);
            }
        }
        found
    }

    async fn version(store: &LocalObjectStore, key: &ObjectKey) -> String {
        store.head(key).await.unwrap().unwrap().version.unwrap()
    }

    /// A temporary file is moved into place, not copied, and its version is its content's, as if
    /// its bytes had been put.
    #[tokio::test]
    async fn a_temporary_file_is_moved_into_place_with_its_contents_version() {
        let (dir, store) = store();
        let mut temp = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        std::io::Write::write_all(&mut temp, b"id,name\n1,x\n").unwrap();
        let temp_path = temp.path().to_path_buf();
        let options = PutOptions {
            metadata: BTreeMap::from([("source".to_string(), "test".to_string())]),
            ..PutOptions::default()
        };
        let put = store.put_temp_file(&key("clean/a.csv"), temp, &options).await.unwrap();
        assert!(!temp_path.exists(), "the temporary file was moved, not copied");
        assert_eq!(
            std::fs::read(store.object_path(&key("clean/a.csv"))).unwrap(),
            b"id,name\n1,x\n"
        );
        store
            .put_bytes(&key("clean/b.csv"), Bytes::from_static(b"id,name\n1,x\n"), &options)
            .await
            .unwrap();
        assert_eq!(
            version(&store, &key("clean/a.csv")).await,
            version(&store, &key("clean/b.csv")).await
        );
        assert_eq!(put.version, Some(version(&store, &key("clean/a.csv")).await));
        let head = store.head(&key("clean/a.csv")).await.unwrap().unwrap();
        assert_eq!(head.metadata.get("source").map(String::as_str), Some("test"));
    }

    /// A copy shares the bytes, yet a later write at either key leaves the other as it was.
    #[tokio::test]
    async fn a_copy_shares_bytes_but_never_sees_a_later_write() {
        let (dir, store) = store();
        let options = PutOptions::default();
        store
            .put_bytes(&key("raw/a.csv"), Bytes::from_static(b"first"), &options)
            .await
            .unwrap();
        let copied = store
            .copy(&key("raw/a.csv"), &key("staged/a.csv"), &BTreeMap::new())
            .await
            .unwrap();
        assert_eq!(copied.version, Some(version(&store, &key("raw/a.csv")).await));
        store
            .put_bytes(&key("raw/a.csv"), Bytes::from_static(b"second"), &options)
            .await
            .unwrap();
        assert_eq!(
            std::fs::read(store.object_path(&key("staged/a.csv"))).unwrap(),
            b"first"
        );
        store
            .put_bytes(&key("staged/a.csv"), Bytes::from_static(b"third"), &options)
            .await
            .unwrap();
        assert_eq!(std::fs::read(store.object_path(&key("raw/a.csv"))).unwrap(), b"second");
        // Copying onto a name that already shares the file leaves no stray temporary name.
        store
            .copy(&key("raw/a.csv"), &key("quarantine/a.csv"), &BTreeMap::new())
            .await
            .unwrap();
        store
            .copy(&key("raw/a.csv"), &key("quarantine/a.csv"), &BTreeMap::new())
            .await
            .unwrap();
        assert_eq!(temp_files_in(dir.path()), Vec::<PathBuf>::new());
        assert_eq!(
            version(&store, &key("quarantine/a.csv")).await,
            version(&store, &key("raw/a.csv")).await
        );
    }

    /// A source changed by hand since this store wrote it: the copy's version is the hash of
    /// the bytes it now holds, not the one recorded.
    #[tokio::test]
    async fn a_copy_of_a_file_changed_by_hand_hashes_what_it_holds() {
        let (_dir, store) = store();
        let options = PutOptions::default();
        store
            .put_bytes(&key("raw/a.csv"), Bytes::from_static(b"written"), &options)
            .await
            .unwrap();
        std::fs::write(store.object_path(&key("raw/a.csv")), b"edited by hand, longer").unwrap();
        let copied = store
            .copy(&key("raw/a.csv"), &key("staged/a.csv"), &BTreeMap::new())
            .await
            .unwrap();
        let expected = format!("xxh3-{:032x}", xxhash_rust::xxh3::xxh3_128(b"edited by hand, longer"));
        assert_eq!(copied.version, Some(expected));
    }
}
