//! The encrypted token cache in the control table: `cctoken#<client>` / `token`, holding the
//! token sealed ([`sluice_core::sealed`]) and bound (as associated data) to the client name and
//! id so an entry cannot be replayed for another client. Its TTL is the token's expiry. Entries
//! written before key versions existed have no `key_version` and were sealed under version 1.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_core::item::EXPIRES_AT;
use sluice_core::sealed::{Keyring, MissingKeyVersion, SealedValue};
use sluice_core::{AttrValue, BackendError, DeleteCondition, ItemKey, PutCondition, SecretStore, SecretValue, Table};
use tokio::sync::OnceCell;

use super::AccessToken;

/// The secret holding the cache's keyring (created with one random key on first use; at first
/// it held one bare hex key, which reads as version 1).
pub const CACHE_KEY_SECRET: &str = "cctoken-cache-key";

pub(super) struct TokenCache {
    key: ItemKey,
    associated_data: Vec<u8>,
    control: Arc<dyn Table>,
    secrets: Arc<dyn SecretStore>,
    keyring: OnceCell<Keyring>,
}

#[derive(Serialize, Deserialize)]
struct Plain {
    access_token: String,
    token_type: String,
    expires_at: i64,
}

impl TokenCache {
    pub(super) fn new(
        name: &str,
        client_id: &str,
        control: Arc<dyn Table>,
        secrets: Arc<dyn SecretStore>,
    ) -> TokenCache {
        TokenCache {
            key: ItemKey::new(format!("cctoken#{name}"), "token"),
            associated_data: format!("cctoken#{name}#{client_id}").into_bytes(),
            control,
            secrets,
            keyring: OnceCell::new(),
        }
    }

    async fn keyring(&self) -> Result<&Keyring, BackendError> {
        self.keyring
            .get_or_try_init(|| async {
                Keyring::load_or_create(self.secrets.as_ref(), CACHE_KEY_SECRET)
                    .await
                    .map_err(BackendError::from)
            })
            .await
    }

    fn corrupt(&self, reason: &str) -> BackendError {
        BackendError::Corrupt {
            location: format!("control item {}", self.key.pk),
            reason: reason.to_string(),
        }
    }

    /// The cached token, if one is stored and decrypts; a bad entry counts as a miss.
    pub(super) async fn load(&self) -> Result<Option<AccessToken>, BackendError> {
        let Some(item) = self.control.get(&self.key).await? else {
            return Ok(None);
        };
        match self.decrypt(&item).await {
            Ok(token) => Ok(Some(token)),
            Err(BackendError::Corrupt { reason, location }) => {
                tracing::warn!(%location, %reason, "ignoring an unreadable cached token");
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    async fn decrypt(&self, item: &sluice_core::Item) -> Result<AccessToken, BackendError> {
        let sealed = SealedValue::from_item(item, MissingKeyVersion::MeansFirstVersion)
            .map_err(|err| self.corrupt(&err.to_string()))?;
        let plain = self
            .keyring()
            .await?
            .open(&sealed, &self.associated_data)
            .map_err(|err| self.corrupt(&err.to_string()))?;
        let plain: Plain =
            serde_json::from_slice(plain.as_bytes()).map_err(|_| self.corrupt("decrypted text is not a token"))?;
        let expires_at =
            DateTime::from_timestamp(plain.expires_at, 0).ok_or_else(|| self.corrupt("expiry is out of range"))?;
        Ok(AccessToken {
            secret: SecretValue::new(plain.access_token),
            token_type: plain.token_type,
            expires_at,
        })
    }

    pub(super) async fn store(&self, token: &AccessToken) -> Result<(), BackendError> {
        let plain = serde_json::to_vec(&Plain {
            access_token: token.secret.expose().to_string(),
            token_type: token.token_type.clone(),
            expires_at: token.expires_at.timestamp(),
        })
        .map_err(|_| self.corrupt("cannot encode the token"))?;
        let sealed = self.keyring().await?.seal(&self.associated_data, &plain);
        let mut item = self.key.to_item();
        sealed.write_into(&mut item);
        item.insert("fetched_at".into(), AttrValue::N(Utc::now().timestamp().to_string()));
        item.insert(
            EXPIRES_AT.into(),
            AttrValue::N(token.expires_at.timestamp().to_string()),
        );
        self.control.put(item, PutCondition::Always).await
    }

    pub(super) async fn clear(&self) -> Result<(), BackendError> {
        self.control
            .delete(&self.key, DeleteCondition::Always)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partner_token() -> AccessToken {
        AccessToken {
            secret: SecretValue::new("eyJ.partner.token"),
            token_type: "Bearer".into(),
            expires_at: DateTime::from_timestamp(2_000_000_000, 0).unwrap_or_default(),
        }
    }

    /// An entry and its key as the cache wrote them before [`sluice_core::sealed`] (no
    /// `key_version`; the key one bare hex string), recorded from that code with `[0x33; 32]`.
    #[tokio::test]
    async fn a_token_cached_before_the_sealed_module_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (_, backends) = sluice_core::testing::local_test_backends(dir.path());
        let bare_key = SecretValue::new(hex::encode([0x33_u8; 32]));
        backends.secrets.put(CACHE_KEY_SECRET, &bare_key).await.unwrap();
        let cache = TokenCache::new(
            "partner",
            "client-123",
            backends.control.clone(),
            backends.secrets.clone(),
        );
        let ciphertext = "e1667b9ae5eddd995f3cbd6cadba50cd5e238e5fba06ad8c6bbd06926372857787724f3c30345b5560be3a836b\
                          a2c45e8360b531faa8bfeb201abed86b044e451c91efb619d39cf2acfd45f8270c746b406370ce6b7a6b169fa907\
                          2cbfb5b2d242b9";
        let mut item = cache.key.to_item();
        item.insert(
            "nonce".into(),
            AttrValue::B(hex::decode("63a8998526f8db2337fdc217").unwrap()),
        );
        item.insert("ciphertext".into(), AttrValue::B(hex::decode(ciphertext).unwrap()));
        item.insert("fetched_at".into(), AttrValue::N("1700000000".into()));
        item.insert(EXPIRES_AT.into(), AttrValue::N("2000000000".into()));
        backends.control.put(item, PutCondition::Always).await.unwrap();

        let back = cache.load().await.unwrap().expect("the old entry opens");
        assert_eq!(back.secret.expose(), "eyJ.partner.token");
        assert_eq!(back.token_type, "Bearer");
        assert_eq!(back.expires_at, partner_token().expires_at);

        cache.store(&partner_token()).await.unwrap();
        let rewritten = backends.control.get(&cache.key).await.unwrap().unwrap();
        assert_eq!(rewritten.get("key_version"), Some(&AttrValue::N("1".into())));
        assert_eq!(backends.secrets.get(CACHE_KEY_SECRET).await.unwrap(), Some(bare_key));
        assert!(cache.load().await.unwrap().is_some());
    }

    #[tokio::test]
    async fn after_a_rotation_the_cached_token_still_loads_and_is_rewritten_under_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let (_, backends) = sluice_core::testing::local_test_backends(dir.path());
        let before = TokenCache::new(
            "partner",
            "client-123",
            backends.control.clone(),
            backends.secrets.clone(),
        );
        before.store(&partner_token()).await.unwrap();
        assert_eq!(
            Keyring::rotate(backends.secrets.as_ref(), CACHE_KEY_SECRET)
                .await
                .unwrap(),
            2
        );
        let after = TokenCache::new(
            "partner",
            "client-123",
            backends.control.clone(),
            backends.secrets.clone(),
        );
        assert!(after.load().await.unwrap().is_some(), "the version 1 entry still opens");
        after.store(&partner_token()).await.unwrap();
        let rewritten = backends.control.get(&after.key).await.unwrap().unwrap();
        assert_eq!(rewritten.get("key_version"), Some(&AttrValue::N("2".into())));
        assert!(
            before.load().await.unwrap().is_none(),
            "a keyring without version 2 misses"
        );
    }
}
