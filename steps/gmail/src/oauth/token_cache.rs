//! The OAuth token cache: one item per account in the control table, its token sealed
//! ([`sluice_core::sealed`]) under the keyring from the secrets backend. The associated data
//! binds the ciphertext to its account and key version, so an entry copied to another account
//! does not decrypt. Keys are versioned: rotation adds a version and new writes use it, while
//! entries written under older versions stay readable.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sluice_core::sealed::{KeyVersion, MissingKeyVersion, SealedValue};
use sluice_core::{AttrValue, BackendError, DeleteCondition, ItemKey, PutCondition, Table};

use super::{Sensitive, TokenGrant, now_epoch};
use crate::error::GmailError;
// The tests (which take their imports from here) write keyring secrets by hand.
#[cfg(test)]
use sluice_core::{SecretStore, SecretValue};

/// The token keys: versions to 256-bit keys, and which version new writes use. Stored as one
/// JSON secret: `{"current": 2, "keys": {"1": "<64 hex>", "2": "<64 hex>"}}`.
pub use sluice_core::sealed::Keyring as TokenKeyring;

const SORT_KEY: &str = "token";

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

/// The version is part of the associated data (as it has been since the cache's first entries,
/// which must keep opening), on top of the `key_version` attribute that picks the key.
fn associated_data(account: &str, version: KeyVersion) -> Vec<u8> {
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
        let unreadable = |reason: String| GmailError::TokenCacheUnreadable {
            account: account.to_string(),
            reason,
        };
        let plaintext = SealedValue::from_item(&item, MissingKeyVersion::Malformed)
            .and_then(|sealed| {
                self.keyring
                    .open(&sealed, &associated_data(account, sealed.key_version))
            })
            .map_err(|err| unreadable(err.to_string()))?;
        let token = serde_json::from_slice(plaintext.as_bytes())
            .map_err(|_| unreadable("the decrypted token is not valid".into()))?;
        Ok(Some(token))
    }

    /// Encrypts and stores `token` under the current key version.
    pub async fn store(&self, account: &str, token: &StoredToken) -> Result<(), GmailError> {
        let plaintext = serde_json::to_vec(token).map_err(|err| GmailError::TokenCacheUnreadable {
            account: account.to_string(),
            reason: format!("cannot serialize: {err}"),
        })?;
        // `seal` uses the current version, so that is the version the associated data names.
        let aad = associated_data(account, self.keyring.current_version());
        let sealed = self.keyring.seal(&aad, &plaintext);
        let mut item = Self::key(account).to_item();
        sealed.write_into(&mut item);
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

    /// An entry and its keyring secret as the cache wrote them before [`sluice_core::sealed`],
    /// recorded from that code with the keys 1 = `[0x11; 32]` and 2 = `[0x22; 32]`, current 2.
    #[tokio::test]
    async fn a_token_cached_before_the_sealed_module_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (control, secrets) = fixture(dir.path()).await;
        let document = format!(
            r#"{{"current":2,"keys":{{"1":"{}","2":"{}"}}}}"#,
            hex::encode([0x11_u8; 32]),
            hex::encode([0x22_u8; 32])
        );
        secrets.put("keys", &SecretValue::new(document)).await.unwrap();
        let ciphertext = "51e94cb4652946d44bd0092cc517ffd779552879e1e5ebad93d59f1aa90c6aa1eeb6c0cb99ed09ede0f04cb6e6b7b4\
                          24228fdea93adaf5dd2ff3ba5f423e656102d6dcb8d2591b8b9400ddfc133272e5707737d7059f0db2c173f3234aaa\
                          3c19229a4e50480219e438772b9209f5887d97a7563483216ecbcebb98338498302ef2f4f3d87e1e7a6efb38f5a499\
                          55e77f3aae6d187bcfaa4efe9c53bd58b175";
        let mut item = TokenCache::key("ops@example.com").to_item();
        item.insert("key_version".into(), AttrValue::N("2".into()));
        item.insert(
            "nonce".into(),
            AttrValue::B(hex::decode("68e86a4c5d9ce7264db3cfff").unwrap()),
        );
        item.insert("ciphertext".into(), AttrValue::B(hex::decode(ciphertext).unwrap()));
        control.put(item.clone(), PutCondition::Always).await.unwrap();

        let keyring = TokenKeyring::load_or_create(&secrets, "keys").await.unwrap();
        assert_eq!(keyring.current_version(), 2);
        let cache = TokenCache::new(control.clone(), keyring);
        let back = cache.load("ops@example.com").await.unwrap().unwrap();
        assert_eq!(back.access_token.expose(), "ya29.access");
        assert_eq!(back.refresh_token.unwrap().expose(), "1//refresh");
        assert_eq!(back.expires_at, 2_000_000_000);
        assert_eq!(back.scopes, token().scopes);

        // Every entry of this cache names its key version: one without is unreadable.
        item.remove("key_version");
        control.put(item, PutCondition::Always).await.unwrap();
        let err = cache.load("ops@example.com").await.unwrap_err();
        assert!(err.to_string().contains("no key_version"), "{err}");
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
