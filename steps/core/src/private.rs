//! The embedded backends' files are private to their owner: the data directory (and each
//! directory Sluice makes in it) 0700, its database and secret files 0600. They hold raw
//! attachments, pending OAuth states with their PKCE verifiers, task tokens, key hashes and the
//! de-identification vault. Modes an older version left looser are tightened on open.

use std::path::Path;

use crate::BackendError;

/// Creates `dir` (and its parents) and makes it 0700. A directory that already existed is
/// tightened only when it is Sluice's own (it holds `sluice.db`, `objects/` or
/// `object-meta/`) and not a shared one (sticky, like `/tmp`): pointing `data_dir` at a
/// directory of the user's must not change that directory.
pub fn private_dir(dir: &Path) -> Result<(), BackendError> {
    let existed = dir.exists();
    std::fs::create_dir_all(dir).map_err(|e| BackendError::io("create directory", dir, e))?;
    let sluices = ["sluice.db", "objects", "object-meta"]
        .iter()
        .any(|n| dir.join(n).exists());
    if !existed || (sluices && !is_sticky(dir)) {
        restrict(dir, 0o700)?;
    }
    Ok(())
}

#[cfg(unix)]
fn is_sticky(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o1000 != 0)
}

#[cfg(not(unix))]
fn is_sticky(_dir: &Path) -> bool {
    false
}

/// Makes the file at `path` 0600 if it exists (creating it empty when `create`).
pub fn private_file(path: &Path, create: bool) -> Result<(), BackendError> {
    if create && !path.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options
            .open(path)
            .map_err(|e| BackendError::io("create file", path, e))?;
    }
    if path.exists() {
        restrict(path, 0o600)?;
    }
    Ok(())
}

/// A SQLite database file and its WAL and shared-memory companions, 0600 (SQLite gives the
/// companions the database file's mode).
pub fn private_database(path: &Path) -> Result<(), BackendError> {
    private_file(path, true)?;
    for suffix in ["-wal", "-shm"] {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        private_file(Path::new(&companion), false)?;
    }
    Ok(())
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> Result<(), BackendError> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)
        .map_err(|e| BackendError::io("read the mode of", path, e))?
        .permissions()
        .mode();
    if current & 0o777 != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| BackendError::io("restrict the mode of", path, e))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> Result<(), BackendError> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn directories_and_databases_become_private_and_loose_modes_are_fixed() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        super::private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        let db = data.join("sluice.db");
        super::private_database(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        // Left world-readable by an older version: tightened (it is Sluice's: it holds sluice.db).
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let wal = data.join("sluice.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        super::private_dir(&data).unwrap();
        super::private_database(&db).unwrap();
        assert_eq!((mode(&data), mode(&db), mode(&wal)), (0o700, 0o600, 0o600));
        // A directory of the user's, not Sluice's, keeps its mode.
        let mine = root.path().join("mine");
        std::fs::create_dir(&mine).unwrap();
        std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o755)).unwrap();
        super::private_dir(&mine).unwrap();
        assert_eq!(mode(&mine), 0o755);
    }
}
