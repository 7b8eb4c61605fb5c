//! Values sealed with AES-256-GCM in the control table, for every caller that keeps a secret
//! there (the re-identification vault, the Gmail OAuth token cache, the client-credentials token
//! cache).
//!
//! A value is sealed under the newest key of a [`Keyring`], with a random 96-bit nonce and the
//! associated data its caller names (what the value belongs to, so that a ciphertext copied to
//! another item does not open). Its item holds `key_version`, `nonce` and `ciphertext`; opening
//! picks the key by version, so after a rotation older values open for as long as their version
//! is kept in the keyring.
//!
//! A keyring is one secret: `{"current": 2, "keys": {"1": "<64 hex>", "2": "<64 hex>"}}`. A secret
//! holding one bare 64-hex key (how the vault and client-credentials keys were first stored)
//! reads as a keyring whose only version is 1, and items without `key_version` (written before
//! versions existed) can be read as version 1 by the callers that wrote such items.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::BackendError;
use crate::item::{AttrValue, Item};
use crate::secrets::{SecretStore, SecretValue};

/// A key's version in its keyring: 1 for the first key, one more for each rotation.
pub type KeyVersion = u32;

pub const KEY_BYTES: usize = 32;
pub const NONCE_BYTES: usize = 12;

/// The item attributes of a sealed value.
pub const KEY_VERSION_ATTRIBUTE: &str = "key_version";
pub const NONCE_ATTRIBUTE: &str = "nonce";
pub const CIPHERTEXT_ATTRIBUTE: &str = "ciphertext";

const FIRST_VERSION: KeyVersion = 1;

/// What [`SealedValue::from_item`] makes of an item without `key_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingKeyVersion {
    /// Every item of this kind was written with a version: one without is malformed.
    Malformed,
    /// Items of this kind were written before key versions existed, under the first key.
    MeansFirstVersion,
}

/// A sealed value as its item stores it. Its `Debug` shows the version and sizes only.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub key_version: KeyVersion,
    pub nonce: [u8; NONCE_BYTES],
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for SealedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedValue")
            .field("key_version", &self.key_version)
            .field("ciphertext_bytes", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

impl SealedValue {
    /// Adds the value's attributes to `item` (its key and the caller's attributes stay).
    pub fn write_into(self, item: &mut Item) {
        item.insert(KEY_VERSION_ATTRIBUTE.into(), AttrValue::N(self.key_version.to_string()));
        item.insert(NONCE_ATTRIBUTE.into(), AttrValue::B(self.nonce.to_vec()));
        item.insert(CIPHERTEXT_ATTRIBUTE.into(), AttrValue::B(self.ciphertext));
    }

    /// The sealed value an item holds.
    pub fn from_item(item: &Item, missing_version: MissingKeyVersion) -> Result<SealedValue, OpenError> {
        let malformed = |problem| OpenError::Malformed { problem };
        let key_version = match item.get(KEY_VERSION_ATTRIBUTE) {
            Some(stored) => stored
                .as_i64()
                .and_then(|version| KeyVersion::try_from(version).ok())
                .ok_or_else(|| malformed("a key_version that is not a version number"))?,
            None => match missing_version {
                MissingKeyVersion::Malformed => return Err(malformed("no key_version")),
                MissingKeyVersion::MeansFirstVersion => FIRST_VERSION,
            },
        };
        let nonce = item
            .get(NONCE_ATTRIBUTE)
            .and_then(AttrValue::as_bytes)
            .and_then(|bytes| <[u8; NONCE_BYTES]>::try_from(bytes).ok())
            .ok_or_else(|| malformed("no 12-byte nonce"))?;
        let ciphertext = item
            .get(CIPHERTEXT_ATTRIBUTE)
            .and_then(AttrValue::as_bytes)
            .ok_or_else(|| malformed("no ciphertext"))?
            .to_vec();
        Ok(SealedValue {
            key_version,
            nonce,
            ciphertext,
        })
    }
}

/// Why a sealed value does not open. Never carries a key or any plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("{problem}")]
    Malformed { problem: &'static str },
    #[error("key version {version} is not in the keyring")]
    KeyVersionNotHeld { version: KeyVersion },
    #[error("decryption failed (wrong key, or the entry was altered or moved)")]
    Undecryptable,
}

/// Why a keyring secret cannot be read or written. Names the secret, never a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("key secret {name}: {source}")]
    Backend {
        name: String,
        #[source]
        source: BackendError,
    },
    #[error("key secret {name}: {reason}")]
    Invalid { name: String, reason: String },
}

/// For callers whose errors speak of the backend only: an unreadable keyring is corrupt
/// stored data, as an unreadable single key always was.
impl From<KeyringError> for BackendError {
    fn from(err: KeyringError) -> BackendError {
        match err {
            KeyringError::Backend { source, .. } => source,
            KeyringError::Invalid { name, reason } => BackendError::Corrupt {
                location: format!("secret {name}"),
                reason,
            },
        }
    }
}

/// A value opened: its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Plaintext(Vec<u8>);

impl Plaintext {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Plaintext(<redacted>)")
    }
}

#[derive(Clone)]
struct VersionedKey {
    bytes: [u8; KEY_BYTES],
    cipher: Aes256Gcm,
}

impl VersionedKey {
    fn new(bytes: &[u8; KEY_BYTES]) -> VersionedKey {
        VersionedKey {
            bytes: *bytes,
            cipher: Aes256Gcm::new(bytes.into()),
        }
    }
}

/// Versioned 256-bit keys: seals with the newest (the current version), opens any version it
/// holds. Its `Debug` shows the versions, never a key.
#[derive(Clone)]
pub struct Keyring {
    current: KeyVersion,
    keys: BTreeMap<KeyVersion, VersionedKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The keyring secret's JSON form.
#[derive(Serialize, Deserialize)]
struct KeyringDocument {
    current: KeyVersion,
    keys: BTreeMap<KeyVersion, String>,
}

impl Keyring {
    /// A keyring of one key, version 1.
    pub fn single(key: &[u8; KEY_BYTES]) -> Keyring {
        Keyring {
            current: FIRST_VERSION,
            keys: BTreeMap::from([(FIRST_VERSION, VersionedKey::new(key))]),
        }
    }

    /// The version new seals use.
    pub fn current_version(&self) -> KeyVersion {
        self.current
    }

    /// Adds `key` as the next version and makes it current; returns that version, or `None`
    /// (changing nothing) when the newest version is already the last number there is.
    pub fn add_version(&mut self, key: &[u8; KEY_BYTES]) -> Option<KeyVersion> {
        let newest = self.keys.keys().max().copied().unwrap_or(0);
        let next = newest.checked_add(1)?;
        self.keys.insert(next, VersionedKey::new(key));
        self.current = next;
        Some(next)
    }

    /// Forgets `version`: values sealed under it no longer open. The current version is kept
    /// (new seals need it); returns whether `version` was forgotten.
    #[must_use]
    pub fn retire(&mut self, version: KeyVersion) -> bool {
        version != self.current && self.keys.remove(&version).is_some()
    }

    /// Seals `plaintext` under the current version with a fresh random nonce, bound to
    /// `associated_data` (which is not stored: whoever opens it names it again).
    ///
    /// # Panics
    /// Only for a plaintext beyond AES-GCM's limit of 64 GiB, far past any item's size.
    pub fn seal(&self, associated_data: &[u8], plaintext: &[u8]) -> SealedValue {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: associated_data,
        };
        let ciphertext = match self.current_key().cipher.encrypt(Nonce::from_slice(&nonce), payload) {
            Ok(ciphertext) => ciphertext,
            Err(_) => unreachable!("AES-GCM encryption fails only past 64 GiB"),
        };
        SealedValue {
            key_version: self.current,
            nonce,
            ciphertext,
        }
    }

    /// Opens `sealed` with the key of its version and the associated data it was sealed with.
    pub fn open(&self, sealed: &SealedValue, associated_data: &[u8]) -> Result<Plaintext, OpenError> {
        let key = self.keys.get(&sealed.key_version).ok_or(OpenError::KeyVersionNotHeld {
            version: sealed.key_version,
        })?;
        let payload = Payload {
            msg: &sealed.ciphertext,
            aad: associated_data,
        };
        key.cipher
            .decrypt(Nonce::from_slice(&sealed.nonce), payload)
            .map(Plaintext)
            .map_err(|_| OpenError::Undecryptable)
    }

    fn current_key(&self) -> &VersionedKey {
        match self.keys.get(&self.current) {
            Some(key) => key,
            // Every constructor holds the current version's key and `retire` keeps it.
            None => unreachable!("a keyring always holds its current version"),
        }
    }

    /// The keyring stored under `name`, created with one random key on first use (concurrent
    /// first uses agree on one: only one creation wins and everyone reads it back).
    pub async fn load_or_create(secrets: &dyn SecretStore, name: &str) -> Result<Keyring, KeyringError> {
        if let Some(keyring) = Self::load_existing(secrets, name).await? {
            return Ok(keyring);
        }
        let first = Keyring::single(&random_key());
        secrets
            .create_if_absent(name, &first.to_secret(name)?)
            .await
            .map_err(|source| backend(name, source))?;
        Self::load_existing(secrets, name)
            .await?
            .ok_or_else(|| invalid(name, "vanished right after it was created".into()))
    }

    /// The keyring stored under `name`, or `None` when there is none (never creates one: for
    /// readers, where a missing key means nothing was ever sealed).
    pub async fn load_existing(secrets: &dyn SecretStore, name: &str) -> Result<Option<Keyring>, KeyringError> {
        match secrets.get(name).await.map_err(|source| backend(name, source))? {
            Some(stored) => Self::parse(name, &stored).map(Some),
            None => Ok(None),
        }
    }

    /// Adds a random key version to the keyring stored under `name` and makes it current;
    /// returns it. Values under older versions still open, and callers that rewrite them seal
    /// them under the new one.
    pub async fn rotate(secrets: &dyn SecretStore, name: &str) -> Result<KeyVersion, KeyringError> {
        let mut keyring = Self::load_or_create(secrets, name).await?;
        let next = keyring
            .add_version(&random_key())
            .ok_or_else(|| invalid(name, format!("has no key version left after {}", KeyVersion::MAX)))?;
        secrets
            .put(name, &keyring.to_secret(name)?)
            .await
            .map_err(|source| backend(name, source))?;
        Ok(next)
    }

    fn parse(name: &str, stored: &SecretValue) -> Result<Keyring, KeyringError> {
        let text = stored.expose().trim();
        if let Some(key) = decode_key(text) {
            return Ok(Keyring::single(&key));
        }
        let document: KeyringDocument = serde_json::from_str(text).map_err(|_| {
            invalid(
                name,
                "is not a keyring document ({\"current\": n, \"keys\": {...}}) nor one 64-hex key".into(),
            )
        })?;
        let mut keys = BTreeMap::new();
        for (version, hex_key) in &document.keys {
            let key = decode_key(hex_key.trim())
                .ok_or_else(|| invalid(name, format!("key version {version} is not 64 hex characters")))?;
            keys.insert(*version, VersionedKey::new(&key));
        }
        if !keys.contains_key(&document.current) {
            return Err(invalid(
                name,
                format!("the current version {} has no key", document.current),
            ));
        }
        Ok(Keyring {
            current: document.current,
            keys,
        })
    }

    /// The keyring's secret. Failing rather than writing a default: a rotation that wrote an
    /// empty secret would lose every key.
    fn to_secret(&self, name: &str) -> Result<SecretValue, KeyringError> {
        let document = KeyringDocument {
            current: self.current,
            keys: self
                .keys
                .iter()
                .map(|(version, key)| (*version, hex::encode(key.bytes)))
                .collect(),
        };
        serde_json::to_string(&document)
            .map(SecretValue::new)
            .map_err(|err| invalid(name, format!("cannot be encoded: {err}")))
    }
}

fn decode_key(text: &str) -> Option<[u8; KEY_BYTES]> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| <[u8; KEY_BYTES]>::try_from(bytes).ok())
}

fn random_key() -> [u8; KEY_BYTES] {
    let mut key = [0u8; KEY_BYTES];
    rand::rng().fill_bytes(&mut key);
    key
}

fn backend(name: &str, source: BackendError) -> KeyringError {
    KeyringError::Backend {
        name: name.to_string(),
        source,
    }
}

fn invalid(name: &str, reason: String) -> KeyringError {
    KeyringError::Invalid {
        name: name.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::ItemKey;
    use crate::secrets::LocalSecretStore;

    const AAD: &[u8] = b"orders#EMAIL_01";

    fn stored(sealed: SealedValue) -> Item {
        let mut item = ItemKey::new("sealed#test", "value").to_item();
        sealed.write_into(&mut item);
        item
    }

    fn reopened(keyring: &Keyring, item: &Item) -> Result<Vec<u8>, OpenError> {
        let sealed = SealedValue::from_item(item, MissingKeyVersion::Malformed)?;
        keyring.open(&sealed, AAD).map(Plaintext::into_bytes)
    }

    #[test]
    fn a_sealed_value_round_trips_through_its_item() {
        let keyring = Keyring::single(&[1; 32]);
        let item = stored(keyring.seal(AAD, b"ana@example.test"));
        assert_eq!(item.get(KEY_VERSION_ATTRIBUTE), Some(&AttrValue::N("1".into())));
        assert_eq!(
            item.get(NONCE_ATTRIBUTE).and_then(AttrValue::as_bytes).map(<[u8]>::len),
            Some(NONCE_BYTES)
        );
        assert_eq!(reopened(&keyring, &item).unwrap(), b"ana@example.test");
    }

    #[test]
    fn each_seal_takes_a_fresh_nonce() {
        let keyring = Keyring::single(&[1; 32]);
        let first = keyring.seal(AAD, b"same");
        let second = keyring.seal(AAD, b"same");
        assert_ne!(first.nonce, second.nonce);
        assert_ne!(first.ciphertext, second.ciphertext);
    }

    #[test]
    fn other_associated_data_is_refused() {
        let keyring = Keyring::single(&[1; 32]);
        let sealed = keyring.seal(AAD, b"ana@example.test");
        assert_eq!(keyring.open(&sealed, b"orders#EMAIL_02"), Err(OpenError::Undecryptable));
        assert_eq!(keyring.open(&sealed, b""), Err(OpenError::Undecryptable));
    }

    #[test]
    fn a_tampered_ciphertext_or_nonce_is_refused() {
        let keyring = Keyring::single(&[1; 32]);
        let sealed = keyring.seal(AAD, b"ana@example.test");
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert_eq!(keyring.open(&flipped, AAD), Err(OpenError::Undecryptable));
        let mut cut = sealed.clone();
        cut.ciphertext.truncate(3);
        assert_eq!(keyring.open(&cut, AAD), Err(OpenError::Undecryptable));
        let mut renonced = sealed;
        renonced.nonce[11] ^= 0x80;
        assert_eq!(keyring.open(&renonced, AAD), Err(OpenError::Undecryptable));
        assert_eq!(
            Keyring::single(&[2; 32]).open(&keyring.seal(AAD, b"x"), AAD),
            Err(OpenError::Undecryptable),
            "another key of the same version"
        );
    }

    #[test]
    fn rotation_seals_with_the_newest_key_and_still_opens_older_versions() {
        let mut keyring = Keyring::single(&[1; 32]);
        let under_v1 = stored(keyring.seal(AAD, b"old"));
        assert_eq!(keyring.add_version(&[2; 32]), Some(2));
        assert_eq!(keyring.current_version(), 2);
        let under_v2 = keyring.seal(AAD, b"new");
        assert_eq!(under_v2.key_version, 2);
        let under_v2 = stored(under_v2);
        assert_eq!(reopened(&keyring, &under_v1).unwrap(), b"old");
        assert_eq!(reopened(&keyring, &under_v2).unwrap(), b"new");

        assert!(!keyring.retire(2), "the current version is kept");
        assert!(keyring.retire(1));
        assert!(!keyring.retire(1), "already gone");
        let err = reopened(&keyring, &under_v1).unwrap_err();
        assert_eq!(err, OpenError::KeyVersionNotHeld { version: 1 });
        assert_eq!(err.to_string(), "key version 1 is not in the keyring");
        assert_eq!(reopened(&keyring, &under_v2).unwrap(), b"new");
    }

    #[test]
    fn the_last_version_number_is_not_overwritten_by_a_rotation() {
        let document = format!(
            r#"{{"current":{},"keys":{{"{}":"{}"}}}}"#,
            u32::MAX,
            u32::MAX,
            hex::encode([1u8; 32])
        );
        let mut keyring = Keyring::parse("ring", &SecretValue::new(document)).unwrap();
        let sealed = keyring.seal(AAD, b"value");
        assert_eq!(keyring.add_version(&[2; 32]), None);
        assert_eq!(keyring.current_version(), u32::MAX);
        assert_eq!(keyring.open(&sealed, AAD).unwrap().as_bytes(), b"value");
    }

    #[test]
    fn malformed_items_are_clear_errors() {
        let keyring = Keyring::single(&[1; 32]);
        let good = stored(keyring.seal(AAD, b"value"));
        let problem_of = |item: &Item, missing| match SealedValue::from_item(item, missing) {
            Err(OpenError::Malformed { problem }) => problem,
            other => panic!("expected a malformed item, got {other:?}"),
        };

        let mut short_nonce = good.clone();
        short_nonce.insert(NONCE_ATTRIBUTE.into(), AttrValue::B(vec![0; 8]));
        assert_eq!(
            problem_of(&short_nonce, MissingKeyVersion::Malformed),
            "no 12-byte nonce"
        );
        let mut nonce_as_text = good.clone();
        nonce_as_text.insert(NONCE_ATTRIBUTE.into(), AttrValue::S("abc".into()));
        assert_eq!(
            problem_of(&nonce_as_text, MissingKeyVersion::Malformed),
            "no 12-byte nonce"
        );
        let mut no_ciphertext = good.clone();
        no_ciphertext.remove(CIPHERTEXT_ATTRIBUTE);
        assert_eq!(
            problem_of(&no_ciphertext, MissingKeyVersion::Malformed),
            "no ciphertext"
        );
        let mut bad_version = good.clone();
        bad_version.insert(KEY_VERSION_ATTRIBUTE.into(), AttrValue::N("-1".into()));
        assert!(problem_of(&bad_version, MissingKeyVersion::MeansFirstVersion).contains("key_version"));

        let mut unversioned = good;
        unversioned.remove(KEY_VERSION_ATTRIBUTE);
        assert_eq!(problem_of(&unversioned, MissingKeyVersion::Malformed), "no key_version");
        let read_as_first = SealedValue::from_item(&unversioned, MissingKeyVersion::MeansFirstVersion).unwrap();
        assert_eq!(read_as_first.key_version, 1);
        assert_eq!(keyring.open(&read_as_first, AAD).unwrap().as_bytes(), b"value");
    }

    #[test]
    fn debug_output_shows_neither_keys_nor_plaintext() {
        let mut keyring = Keyring::single(&[0xab; 32]);
        assert_eq!(keyring.add_version(&[0xcd; 32]), Some(2));
        let sealed = keyring.seal(AAD, b"hunter2");
        let opened = keyring.open(&sealed, AAD).unwrap();
        let dump = format!("{keyring:?} {sealed:?} {opened:?}");
        assert!(
            !dump.contains("hunter2") && !dump.contains("171") && !dump.contains("205"),
            "{dump}"
        );
        assert!(dump.contains("current: 2"), "{dump}");
    }

    #[tokio::test]
    async fn a_stored_keyring_is_created_rotated_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = LocalSecretStore::open(&dir.path().join("secrets.json")).unwrap();
        assert!(Keyring::load_existing(&secrets, "ring").await.unwrap().is_none());
        let created = Keyring::load_or_create(&secrets, "ring").await.unwrap();
        let sealed = created.seal(AAD, b"value");
        assert_eq!(Keyring::rotate(&secrets, "ring").await.unwrap(), 2);
        let rotated = Keyring::load_existing(&secrets, "ring").await.unwrap().unwrap();
        assert_eq!(rotated.current_version(), 2);
        assert_eq!(rotated.open(&sealed, AAD).unwrap().as_bytes(), b"value");
        assert!(!secrets.get("ring").await.unwrap().unwrap().expose().contains("value"));
    }

    /// The vault's and client-credentials cache's keys were stored as one bare hex key.
    #[tokio::test]
    async fn a_bare_hex_key_secret_reads_as_version_1_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = LocalSecretStore::open(&dir.path().join("secrets.json")).unwrap();
        secrets
            .put("bare", &SecretValue::new(format!("{}\n", hex::encode([7u8; 32]))))
            .await
            .unwrap();
        let bare = Keyring::load_or_create(&secrets, "bare").await.unwrap();
        assert_eq!(bare.current_version(), 1);
        let sealed = Keyring::single(&[7; 32]).seal(AAD, b"value");
        assert_eq!(bare.open(&sealed, AAD).unwrap().as_bytes(), b"value");
        assert_eq!(Keyring::rotate(&secrets, "bare").await.unwrap(), 2);
        let rotated = Keyring::load_existing(&secrets, "bare").await.unwrap().unwrap();
        assert_eq!(rotated.open(&sealed, AAD).unwrap().as_bytes(), b"value");
    }

    #[tokio::test]
    async fn a_corrupt_keyring_secret_is_an_error_naming_the_secret_not_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = LocalSecretStore::open(&dir.path().join("secrets.json")).unwrap();
        let secret_key = hex::encode([9u8; 32]);
        for bad in [
            "nope".to_string(),
            hex::encode([9u8; 31]),
            r#"{"current":2,"keys":{"1":"00"}}"#.to_string(),
            format!(r#"{{"current":2,"keys":{{"1":"{secret_key}"}}}}"#),
        ] {
            secrets.put("ring", &SecretValue::new(bad)).await.unwrap();
            let err = Keyring::load_existing(&secrets, "ring").await.unwrap_err();
            assert!(matches!(err, KeyringError::Invalid { .. }), "{err:?}");
            let message = err.to_string();
            assert!(message.contains("ring") && !message.contains(&secret_key), "{message}");
            assert!(matches!(BackendError::from(err), BackendError::Corrupt { .. }));
        }
    }
}
