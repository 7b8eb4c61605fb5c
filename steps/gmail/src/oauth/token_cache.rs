//! The OAuth token cache: one item per account in the control table, its token AES-256-GCM
//! encrypted under a key from the secrets backend. The nonce is random per write; the
//! associated data binds the ciphertext to its account and key version, so an entry copied to
//! another account's key does not decrypt. Keys are versioned: rotation adds a version and
//! new writes use it, while entries written under older versions stay readable.

use std::collections::BTreeMap;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sluice_core::secrets::SecretValue;
use sluice_core::{AttrValue, BackendError, DeleteCondition, ItemKey, PutCondition, SecretStore, Table};

use super::{Sensitive, TokenGrant, now_epoch};
use crate::error::GmailError;

const SORT_KEY: &str = "token";
const NONCE_BYTES: usize = 12;

/// What is cached for an account (only ever stored encrypted).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredToken {
    pub access_token: Sensitive,
    pub refresh_token: Option<Sensitive>,
    /// Epoch seconds at which the access token stops working.
    pub expires_at: i64,
    pub scopes: Vec<String>,
}

impl StoredToken {
    /// The token after a grant; a refresh that returns no refresh token keeps the old one.
    pub fn from_grant(grant: TokenGrant, previous_refresh: Option<Sensitive>, now: i64) -> Self {
        StoredToken {
            access_token: grant.access_token,
            refresh_token: grant.refresh_token.or(previous_refresh),
            expires_at: now.saturating_add(grant.expires_in),
            scopes: grant.scope.split_whitespace().map(str::to_string).collect(),
        }
    }

    /// Usable for at least `skew` more seconds.
    pub fn is_fresh(&self, now: i64, skew: i64) -> bool {
        self.expires_at > now.saturating_add(skew)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// The token keys: versions to 256-bit keys, and which version new writes use. Stored as one
/// JSON secret: `{"current": 2, "keys": {"1": "<64 hex>", "2": "<64 hex>"}}`.
#[derive(Clone)]
pub struct TokenKeyring {
    current: u32,
    keys: BTreeMap<u32, [u8; 32]>,
}

#[derive(Serialize, Deserialize)]
struct KeyringDocument {
    current: u32,
    keys: BTreeMap<u32, String>,
}

impl TokenKeyring {
    /// Reads the keyring, creating it with one random key on first use (concurrent first uses
    /// agree on one: only one creation wins and everyone reads it back).
    pub async fn load_or_create(secrets: &dyn SecretStore, name: &str) -> Result<TokenKeyring, GmailError> {
        if let Some(stored) = secrets.get(name).await? {
            return Self::parse(name, &stored);
        }
        let first = TokenKeyring {
            current: 1,
            keys: BTreeMap::from([(1, random_key())]),
        };
        secrets.create_if_absent(name, &first.to_secret()).await?;
        let stored = secrets.get(name).await?.ok_or_else(|| GmailError::TokenKey {
            name: name.to_string(),
            reason: "vanished right after it was created".into(),
        })?;
        Self::parse(name, &stored)
    }

    /// Adds a new key version and makes it current; returns it. Entries under older versions
    /// stay readable and are re-encrypted under the new one when next written.
    pub async fn rotate(secrets: &dyn SecretStore, name: &str) -> Result<u32, GmailError> {
        let mut ring = Self::load_or_create(secrets, name).await?;
        let next = ring.keys.keys().max().copied().unwrap_or(0) + 1;
        ring.keys.insert(next, random_key());
        ring.current = next;
        secrets.put(name, &ring.to_secret()).await?;
        Ok(next)
    }

    pub fn current_version(&self) -> u32 {
        self.current
    }

    fn parse(name: &str, stored: &SecretValue) -> Result<TokenKeyring, GmailError> {
        let problem = |reason: &str| GmailError::TokenKey {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        let document: KeyringDocument = serde_json::from_str(stored.expose())
            .map_err(|_| problem("is not a keyring document ({\"current\": n, \"keys\": {...}})"))?;
        let mut keys = BTreeMap::new();
        for (version, hex_key) in &document.keys {
            let key = hex::decode(hex_key.trim())
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| problem(&format!("key version {version} is not 64 hex characters")))?;
            keys.insert(*version, key);
        }
        if !keys.contains_key(&document.current) {
            return Err(problem(&format!("the current version {} has no key", document.current)));
        }
        Ok(TokenKeyring {
            current: document.current,
            keys,
        })
    }

    fn to_secret(&self) -> SecretValue {
        let document = KeyringDocument {
            current: self.current,
            keys: self.keys.iter().map(|(v, k)| (*v, hex::encode(k))).collect(),
        };
        SecretValue::new(serde_json::to_string(&document).unwrap_or_default())
    }

    fn cipher(&self, version: u32) -> Option<Aes256Gcm> {
        self.keys
            .get(&version)
            .map(|key| Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)))
    }
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    key
}

fn associated_data(account: &str, version: u32) -> Vec<u8> {
    format!("sluice/gmail-token/v1\0{account}\0{version}").into_bytes()
}

/// The encrypted token cache in the control table (`pk = oauth#token#<account>`).
#[derive(Clone)]
pub struct TokenCache {
    control: Arc<dyn Table>,
    keyring: TokenKeyring,
}

impl TokenCache {
    pub fn new(control: Arc<dyn Table>, keyring: TokenKeyring) -> Self {
        TokenCache { control, keyring }
    }

    fn key(account: &str) -> ItemKey {
        ItemKey::new(format!("oauth#token#{account}"), SORT_KEY)
    }

    /// The cached token, `None` when there is none.
    pub async fn load(&self, account: &str) -> Result<Option<StoredToken>, GmailError> {
        let Some(item) = self.control.get(&Self::key(account)).await? else {
            return Ok(None);
        };
        let unreadable = |reason: &str| GmailError::TokenCacheUnreadable {
            account: account.to_string(),
            reason: reason.to_string(),
        };
        let version = item
            .get("key_version")
            .and_then(AttrValue::as_i64)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| unreadable("no key_version"))?;
        let nonce = item
            .get("nonce")
            .and_then(AttrValue::as_bytes)
            .filter(|n| n.len() == NONCE_BYTES)
            .ok_or_else(|| unreadable("no 12-byte nonce"))?;
        let ciphertext = item
            .get("ciphertext")
            .and_then(AttrValue::as_bytes)
            .ok_or_else(|| unreadable("no ciphertext"))?;
        let cipher = self
            .keyring
            .cipher(version)
            .ok_or_else(|| unreadable(&format!("key version {version} is not in the keyring")))?;
        let aad = associated_data(account, version);
        let plaintext = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| unreadable("decryption failed (wrong key, or the entry was altered or moved)"))?;
        let token = serde_json::from_slice(&plaintext).map_err(|_| unreadable("the decrypted token is not valid"))?;
        Ok(Some(token))
    }

    /// Encrypts and stores `token` under the current key version.
    pub async fn store(&self, account: &str, token: &StoredToken) -> Result<(), GmailError> {
        let version = self.keyring.current;
        let cipher = self.keyring.cipher(version).ok_or_else(|| GmailError::TokenKey {
            name: "token keyring".into(),
            reason: format!("the current version {version} has no key"),
        })?;
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let plaintext = serde_json::to_vec(token).map_err(|err| GmailError::TokenCacheUnreadable {
            account: account.to_string(),
            reason: format!("cannot serialize: {err}"),
        })?;
        let aad = associated_data(account, version);
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| GmailError::TokenKey {
                name: "token keyring".into(),
                reason: "encryption failed".into(),
            })?;
        let mut item = Self::key(account).to_item();
        item.insert("key_version".into(), AttrValue::N(version.to_string()));
        item.insert("nonce".into(), AttrValue::B(nonce.to_vec()));
        item.insert("ciphertext".into(), AttrValue::B(ciphertext));
        item.insert("updated_at".into(), AttrValue::N(now_epoch().to_string()));
        self.control.put(item, PutCondition::Always).await?;
        Ok(())
    }

    /// Forgets the account's token (revoked or unreadable).
    pub async fn delete(&self, account: &str) -> Result<(), GmailError> {
        match self.control.delete(&Self::key(account), DeleteCondition::Always).await {
            Ok(_) | Err(BackendError::NotFound { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::secrets::LocalSecretStore;
    use sluice_core::tables::SqliteDatabase;

    fn token() -> StoredToken {
        StoredToken {
            access_token: Sensitive::new("ya29.access"),
            refresh_token: Some(Sensitive::new("1//refresh")),
            expires_at: 2_000_000_000,
            scopes: vec!["https://www.googleapis.com/auth/gmail.readonly".into()],
        }
    }

    async fn fixture(dir: &std::path::Path) -> (Arc<dyn Table>, LocalSecretStore) {
        let database = SqliteDatabase::open_in_memory().unwrap();
        let control: Arc<dyn Table> = Arc::new(database.table("control"));
        let secrets = LocalSecretStore::open(&dir.join("secrets.json")).unwrap();
        (control, secrets)
    }

    #[tokio::test]
    async fn tokens_round_trip_and_are_not_stored_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let (control, secrets) = fixture(dir.path()).await;
        let keyring = TokenKeyring::load_or_create(&secrets, "keys").await.unwrap();
        let cache = TokenCache::new(control.clone(), keyring);
        cache.store("ops@example.com", &token()).await.unwrap();
        let raw = control.get(&TokenCache::key("ops@example.com")).await.unwrap().unwrap();
        let dump = format!("{raw:?}");
        assert!(!dump.contains("ya29") && !dump.contains("refresh"), "{dump}");
        let back = cache.load("ops@example.com").await.unwrap().unwrap();
        assert_eq!(back.access_token.expose(), "ya29.access");
        assert_eq!(back.refresh_token.unwrap().expose(), "1//refresh");
    }

    #[tokio::test]
    async fn rotation_keeps_old_entries_readable_and_new_writes_use_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let (control, secrets) = fixture(dir.path()).await;
        let old = TokenKeyring::load_or_create(&secrets, "keys").await.unwrap();
        TokenCache::new(control.clone(), old)
            .store("a", &token())
            .await
            .unwrap();
        assert_eq!(TokenKeyring::rotate(&secrets, "keys").await.unwrap(), 2);
        let rotated = TokenKeyring::load_or_create(&secrets, "keys").await.unwrap();
        assert_eq!(rotated.current_version(), 2);
        let cache = TokenCache::new(control.clone(), rotated);
        assert!(cache.load("a").await.unwrap().is_some(), "v1 entry still readable");
        cache.store("a", &token()).await.unwrap();
        let raw = control.get(&TokenCache::key("a")).await.unwrap().unwrap();
        assert_eq!(raw.get("key_version").and_then(AttrValue::as_i64), Some(2));
    }

    #[tokio::test]
    async fn an_entry_moved_to_another_account_does_not_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let (control, secrets) = fixture(dir.path()).await;
        let keyring = TokenKeyring::load_or_create(&secrets, "keys").await.unwrap();
        let cache = TokenCache::new(control.clone(), keyring);
        cache.store("victim", &token()).await.unwrap();
        let mut moved = control.get(&TokenCache::key("victim")).await.unwrap().unwrap();
        moved.insert("pk".into(), AttrValue::S("oauth#token#attacker".into()));
        control.put(moved, PutCondition::Always).await.unwrap();
        let err = cache.load("attacker").await.unwrap_err();
        assert_eq!(sluice_core::StepError::error_name(&err), "Auth.TokenCacheCorrupt");
    }

    #[tokio::test]
    async fn a_corrupt_keyring_secret_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let (_, secrets) = fixture(dir.path()).await;
        for bad in [
            "nope",
            r#"{"current":2,"keys":{"1":"00"}}"#,
            r#"{"current":1,"keys":{"1":"zz"}}"#,
        ] {
            secrets.put("keys", &SecretValue::new(bad)).await.unwrap();
            let err = TokenKeyring::load_or_create(&secrets, "keys").await.err().unwrap();
            assert!(err.to_string().contains("keys"), "{err}");
        }
    }
}
