//! The encrypted token cache in the control table: `cctoken#<client>` / `token`, holding a
//! random nonce and the AES-256-GCM ciphertext of the token, bound (as associated data) to the
//! client name and id so an entry cannot be replayed for another client. Its TTL is the
//! token's expiry.

use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sluice_core::item::EXPIRES_AT;
use sluice_core::{
    AttrValue, BackendError, DeleteCondition, ItemKey, PutCondition, SecretStore, SecretValue, Table, secrets,
};
use tokio::sync::OnceCell;

use super::AccessToken;

/// The secret holding the cache's AES key (created at random on first use).
pub const CACHE_KEY_SECRET: &str = "cctoken-cache-key";

pub(super) struct TokenCache {
    key: ItemKey,
    associated_data: Vec<u8>,
    control: Arc<dyn Table>,
    secrets: Arc<dyn SecretStore>,
    cipher: OnceCell<Aes256Gcm>,
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
            cipher: OnceCell::new(),
        }
    }

    async fn cipher(&self) -> Result<&Aes256Gcm, BackendError> {
        self.cipher
            .get_or_try_init(|| async {
                let key = secrets::key_or_create(self.secrets.as_ref(), CACHE_KEY_SECRET).await?;
                Aes256Gcm::new_from_slice(&key).map_err(|_| BackendError::Corrupt {
                    location: format!("secret {CACHE_KEY_SECRET}"),
                    reason: "not a 256-bit key".into(),
                })
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
        let nonce = item
            .get("nonce")
            .and_then(AttrValue::as_bytes)
            .filter(|n| n.len() == 12)
            .ok_or_else(|| self.corrupt("nonce is missing or not 12 bytes"))?;
        let ciphertext = item
            .get("ciphertext")
            .and_then(AttrValue::as_bytes)
            .ok_or_else(|| self.corrupt("ciphertext is missing"))?;
        let plain = self
            .cipher()
            .await?
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &self.associated_data,
                },
            )
            .map_err(|_| self.corrupt("does not decrypt (tampered, or another key or client)"))?;
        let plain: Plain = serde_json::from_slice(&plain).map_err(|_| self.corrupt("decrypted text is not a token"))?;
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
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher()
            .await?
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &self.associated_data,
                },
            )
            .map_err(|_| self.corrupt("encryption failed"))?;
        let mut item = self.key.to_item();
        item.insert("nonce".into(), AttrValue::B(nonce.to_vec()));
        item.insert("ciphertext".into(), AttrValue::B(ciphertext));
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
