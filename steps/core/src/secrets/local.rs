//! Secrets in one JSON file readable only by its owner (mode 0600), written atomically.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{SecretStore, SecretValue};
use crate::BackendError;

pub struct LocalSecretStore {
    path: PathBuf,
    // Serializes read-modify-write cycles within this process.
    write_lock: Mutex<()>,
}

impl LocalSecretStore {
    pub fn open(path: &Path) -> Result<LocalSecretStore, BackendError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| BackendError::io("create directory", dir, e))?;
        }
        Ok(LocalSecretStore {
            path: path.to_path_buf(),
            write_lock: Mutex::new(()),
        })
    }

    fn read_all(&self) -> Result<BTreeMap<String, String>, BackendError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| BackendError::Corrupt {
                location: self.path.display().to_string(),
                // Never echo the file's text: it holds secrets.
                reason: format!("not a JSON object of strings ({})", crate::error::json_error_kind(&e)),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(BackendError::io("read", &self.path, e)),
        }
    }

    fn write_all(&self, secrets: &BTreeMap<String, String>) -> Result<(), BackendError> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut temp =
            tempfile::NamedTempFile::new_in(dir).map_err(|e| BackendError::io("create temporary file", dir, e))?;
        // NamedTempFile is created 0600 already; set it explicitly so the rule is visible here.
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o600))
            .map_err(|e| BackendError::io("chmod 0600", temp.path(), e))?;
        let json = serde_json::to_vec_pretty(secrets).map_err(|e| BackendError::Corrupt {
            location: self.path.display().to_string(),
            reason: e.to_string(),
        })?;
        temp.write_all(&json)
            .map_err(|e| BackendError::io("write", &self.path, e))?;
        temp.persist(&self.path)
            .map_err(|e| BackendError::io("rename into place", &self.path, e.error))?;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SecretStore for LocalSecretStore {
    async fn get(&self, name: &str) -> Result<Option<SecretValue>, BackendError> {
        Ok(self.read_all()?.remove(name).map(SecretValue::new))
    }

    async fn put(&self, name: &str, value: &SecretValue) -> Result<(), BackendError> {
        let _guard = self.lock();
        let mut secrets = self.read_all()?;
        secrets.insert(name.to_string(), value.expose().to_string());
        self.write_all(&secrets)
    }

    async fn create_if_absent(&self, name: &str, value: &SecretValue) -> Result<bool, BackendError> {
        let _guard = self.lock();
        let mut secrets = self.read_all()?;
        if secrets.contains_key(name) {
            return Ok(false);
        }
        secrets.insert(name.to_string(), value.expose().to_string());
        self.write_all(&secrets)?;
        Ok(true)
    }
}
