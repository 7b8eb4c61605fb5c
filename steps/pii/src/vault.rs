//! The re-identification vault: each tokenized original, AES-256-GCM encrypted under a
//! per-dataset key (random 96-bit nonce; the dataset and token as associated data, so a
//! ciphertext moved to another token or dataset does not decrypt), in the control table under
//! `vault#<dataset>`. Only a caller holding the key can [`Vault::reidentify`] a token.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use sluice_core::retry::Backoff;
use sluice_core::{AttrValue, BackendError, Item, ItemKey, SecretStore, Table, secrets};

use crate::entity::EntityType;

const NONCE_BYTES: usize = 12;

/// The secrets-backend name of a dataset's vault key.
pub fn vault_key_name(dataset: &str) -> String {
    format!("pii/vault/{dataset}")
}

/// The control-table partition holding a dataset's vault.
pub fn vault_partition(dataset: &str) -> String {
    format!("vault#{dataset}")
}

/// An original value waiting to be sealed. Its `Debug` shows the token, never the value.
#[derive(Clone, PartialEq, Eq)]
pub struct VaultEntry {
    pub token: String,
    pub kind: EntityType,
    pub value: String,
}

impl fmt::Debug for VaultEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultEntry")
            .field("token", &self.token)
            .field("kind", &self.kind)
            .field("value", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("vault of dataset {dataset}: {source}")]
    Backend {
        dataset: String,
        #[source]
        source: BackendError,
    },
    #[error("vault of dataset {dataset}: {unwritten} entries were still unprocessed after {attempts} attempts")]
    Unprocessed {
        dataset: String,
        unwritten: usize,
        attempts: u32,
    },
    #[error("vault entry {token} of dataset {dataset} does not decrypt (wrong key, or moved or altered)")]
    Undecryptable { dataset: String, token: String },
    #[error("vault entry {token} of dataset {dataset} is malformed: {reason}")]
    Malformed {
        dataset: String,
        token: String,
        reason: &'static str,
    },
    #[error("no vault key exists for dataset {dataset}")]
    NoKey { dataset: String },
}

/// One dataset's vault.
pub struct Vault {
    table: Arc<dyn Table>,
    cipher: Aes256Gcm,
    dataset: String,
    /// Tokens this instance already wrote, so a value repeated across rows is sealed once.
    written: HashSet<String>,
    backoff: Backoff,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("dataset", &self.dataset)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// The vault with an explicit key (a re-identifying caller that holds it).
    pub fn with_key(table: Arc<dyn Table>, dataset: &str, key: &[u8; 32]) -> Vault {
        Vault {
            table,
            cipher: Aes256Gcm::new(key.into()),
            dataset: dataset.to_string(),
            written: HashSet::new(),
            backoff: Backoff::default(),
        }
    }

    /// The vault for writing: its key comes from the secrets backend, created on first use.
    pub async fn open(table: Arc<dyn Table>, secrets: &dyn SecretStore, dataset: &str) -> Result<Vault, VaultError> {
        let key = secrets::key_or_create(secrets, &vault_key_name(dataset))
            .await
            .map_err(|source| VaultError::Backend {
                dataset: dataset.to_string(),
                source,
            })?;
        Ok(Self::with_key(table, dataset, &key))
    }

    /// The vault for reading: fails rather than creating a key when none exists.
    pub async fn open_existing(
        table: Arc<dyn Table>,
        secrets: &dyn SecretStore,
        dataset: &str,
    ) -> Result<Vault, VaultError> {
        let backend = |source| VaultError::Backend {
            dataset: dataset.to_string(),
            source,
        };
        if secrets.get(&vault_key_name(dataset)).await.map_err(backend)?.is_none() {
            return Err(VaultError::NoKey {
                dataset: dataset.to_string(),
            });
        }
        Self::open(table, secrets, dataset).await
    }

    fn associated_data(&self, token: &str) -> Vec<u8> {
        // Length-prefixed so that no (dataset, token) pair can pose as another.
        let mut aad = Vec::with_capacity(4 + self.dataset.len() + token.len());
        aad.extend_from_slice(&(self.dataset.len() as u32).to_be_bytes());
        aad.extend_from_slice(self.dataset.as_bytes());
        aad.extend_from_slice(token.as_bytes());
        aad
    }

    /// The control-table item holding `entry` encrypted.
    pub fn seal(&self, entry: &VaultEntry) -> Item {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let aad = self.associated_data(&entry.token);
        let ciphertext = match self.cipher.encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: entry.value.as_bytes(),
                aad: &aad,
            },
        ) {
            Ok(ciphertext) => ciphertext,
            // AES-GCM encryption fails only for messages beyond 64 GiB.
            Err(_) => unreachable!("AES-GCM cannot fail on a cell-sized message"),
        };
        let mut item = ItemKey::new(vault_partition(&self.dataset), &entry.token).to_item();
        item.insert("entity_type".into(), AttrValue::S(entry.kind.as_str().to_string()));
        item.insert("nonce".into(), AttrValue::B(nonce.to_vec()));
        item.insert("ciphertext".into(), AttrValue::B(ciphertext));
        item
    }

    /// Seals and writes the entries not written before by this vault, in batches, retrying
    /// what the table leaves unprocessed.
    pub async fn store(&mut self, entries: Vec<VaultEntry>) -> Result<usize, VaultError> {
        let mut items = Vec::new();
        for entry in entries {
            if self.written.insert(entry.token.clone()) {
                items.push(self.seal(&entry));
            }
        }
        let count = items.len();
        // As many as the backend takes at once: SQLite writes 2,000 in one transaction.
        for batch in items.chunks(self.table.max_batch_put()) {
            let mut pending = batch.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt >= self.backoff.max_attempts {
                    return Err(VaultError::Unprocessed {
                        dataset: self.dataset.clone(),
                        unwritten: pending.len(),
                        attempts: attempt,
                    });
                }
                if attempt > 0 {
                    tokio::time::sleep(self.backoff.delay(attempt - 1)).await;
                }
                pending = match self.table.batch_put(&pending).await {
                    Ok(unprocessed) => unprocessed,
                    Err(err) if err.is_retryable() => pending,
                    Err(source) => {
                        return Err(VaultError::Backend {
                            dataset: self.dataset.clone(),
                            source,
                        });
                    }
                };
                attempt += 1;
            }
        }
        Ok(count)
    }

    /// The original behind `token`, or `None` when the vault has no such token.
    pub async fn reidentify(&self, token: &str) -> Result<Option<String>, VaultError> {
        let key = ItemKey::new(vault_partition(&self.dataset), token);
        let item = self.table.get(&key).await.map_err(|source| VaultError::Backend {
            dataset: self.dataset.clone(),
            source,
        })?;
        let Some(item) = item else {
            return Ok(None);
        };
        let malformed = |reason| VaultError::Malformed {
            dataset: self.dataset.clone(),
            token: token.to_string(),
            reason,
        };
        let nonce = item
            .get("nonce")
            .and_then(AttrValue::as_bytes)
            .filter(|n| n.len() == NONCE_BYTES)
            .ok_or_else(|| malformed("no 12-byte nonce"))?;
        let ciphertext = item
            .get("ciphertext")
            .and_then(AttrValue::as_bytes)
            .ok_or_else(|| malformed("no ciphertext"))?;
        let aad = self.associated_data(token);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Undecryptable {
                dataset: self.dataset.clone(),
                token: token.to_string(),
            })?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| malformed("plaintext is not UTF-8"))
    }
}
