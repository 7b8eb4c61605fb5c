//! The re-identification vault: each tokenized original, AES-256-GCM encrypted under a
//! per-dataset key (random 96-bit nonce; the dataset and token as associated data, so a
//! ciphertext moved to another token or dataset does not decrypt), in the control table under
//! `vault#<dataset>`. Only a caller holding the key can [`Vault::reidentify`] a token.

mod queue;

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use sluice_core::retry::Backoff;
use sluice_core::tables::{BatchError, put_batch_fully};
use sluice_core::{AttrValue, BackendError, Item, ItemKey, SecretStore, Table, secrets};

use crate::entity::EntityType;
use queue::{SealedEntry, SealedQueue};

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
    #[error("vault of dataset {dataset}: the queue of sealed entries on local disk: {source}")]
    Queue {
        dataset: String,
        #[source]
        source: std::io::Error,
    },
}

/// One dataset's vault.
pub struct Vault {
    table: Arc<dyn Table>,
    cipher: Aes256Gcm,
    dataset: String,
    /// Entries sealed and not yet written (see [`Vault::queue`]).
    queued: SealedQueue,
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
            queued: SealedQueue::default(),
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

    fn seal(&self, entry: &VaultEntry) -> SealedEntry {
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
        SealedEntry {
            token: entry.token.clone(),
            entity_type: entry.kind.as_str().to_string(),
            nonce,
            ciphertext,
        }
    }

    /// The control-table item holding a sealed entry.
    fn item_of(&self, sealed: SealedEntry) -> Item {
        let mut item = ItemKey::new(vault_partition(&self.dataset), &sealed.token).to_item();
        item.insert("entity_type".into(), AttrValue::S(sealed.entity_type));
        item.insert("nonce".into(), AttrValue::B(sealed.nonce.to_vec()));
        item.insert("ciphertext".into(), AttrValue::B(sealed.ciphertext));
        item
    }

    /// Seals `entries` now and keeps them for [`Vault::write_queued`]: written together they go
    /// in token order, which the embedded backend takes several times faster than row order.
    /// Only ciphertexts are kept (spilled to temporary files past a bound), never a value.
    pub fn queue(&mut self, entries: Vec<VaultEntry>) -> Result<(), VaultError> {
        for entry in entries {
            let sealed = self.seal(&entry);
            self.queued.push(sealed).map_err(|source| VaultError::Queue {
                dataset: self.dataset.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Writes every queued entry, each token once, in token order and in batches, retrying what
    /// the table leaves unprocessed; the count written. Call it before publishing anything that
    /// carries the tokens.
    pub async fn write_queued(&mut self) -> Result<usize, VaultError> {
        let queued = std::mem::take(&mut self.queued);
        let mut count = 0;
        let mut batch = Vec::with_capacity(self.table.max_batch_put());
        for bucket in queued.into_sorted_buckets() {
            let bucket = bucket.map_err(|source| VaultError::Queue {
                dataset: self.dataset.clone(),
                source,
            })?;
            for sealed in bucket {
                batch.push(self.item_of(sealed));
                if batch.len() == self.table.max_batch_put() {
                    count += batch.len();
                    self.put_all(std::mem::take(&mut batch)).await?;
                }
            }
        }
        count += batch.len();
        self.put_all(batch).await?;
        Ok(count)
    }

    async fn put_all(&self, pending: Vec<Item>) -> Result<(), VaultError> {
        put_batch_fully(self.table.as_ref(), pending, self.backoff)
            .await
            .map_err(|err| match err {
                BatchError::Backend(source) => VaultError::Backend {
                    dataset: self.dataset.clone(),
                    source,
                },
                BatchError::Unprocessed { left, retries } => VaultError::Unprocessed {
                    dataset: self.dataset.clone(),
                    unwritten: left,
                    attempts: retries + 1,
                },
            })
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
