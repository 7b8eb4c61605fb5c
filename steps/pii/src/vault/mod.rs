//! The re-identification vault's writer: each tokenized original sealed under the dataset's
//! vault key (the format is [`sluice_core::vault`]'s, shared with every reader) and written to
//! the control table in token order. Only a caller holding the key can [`Vault::reidentify`].

mod queue;

use std::fmt;
use std::sync::Arc;

use sluice_core::retry::Backoff;
use sluice_core::tables::{BatchError, put_batch_fully};
use sluice_core::vault::{VaultCipher, VaultReadError, VaultReader};
use sluice_core::{BackendError, Item, SecretStore, Table, secrets};

use crate::entity::EntityType;
use queue::{SealedEntry, SealedQueue};

pub use sluice_core::vault::{vault_key_name, vault_partition};

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
    #[error(transparent)]
    Read(#[from] VaultReadError),
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
    cipher: VaultCipher,
    /// Entries sealed and not yet written (see [`Vault::queue`]).
    queued: SealedQueue,
    backoff: Backoff,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("dataset", &self.cipher.dataset())
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// The vault with an explicit key (a re-identifying caller that holds it).
    pub fn with_key(table: Arc<dyn Table>, dataset: &str, key: &[u8; 32]) -> Vault {
        Vault {
            table,
            cipher: VaultCipher::new(dataset, key),
            queued: SealedQueue::default(),
            backoff: Backoff::default(),
        }
    }

    fn dataset(&self) -> String {
        self.cipher.dataset().to_string()
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
        let key = secrets::existing_key(secrets, &vault_key_name(dataset))
            .await
            .map_err(|source| VaultError::Backend {
                dataset: dataset.to_string(),
                source,
            })?
            .ok_or_else(|| VaultError::NoKey {
                dataset: dataset.to_string(),
            })?;
        Ok(Self::with_key(table, dataset, &key))
    }

    fn seal(&self, entry: &VaultEntry) -> SealedEntry {
        let sealed = self.cipher.seal(&entry.token, &entry.value);
        SealedEntry {
            token: entry.token.clone(),
            entity_type: entry.kind.as_str().to_string(),
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
        }
    }

    /// The control-table item holding a sealed entry.
    fn item_of(&self, sealed: SealedEntry) -> Item {
        let value = sluice_core::vault::SealedValue {
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
        };
        self.cipher.item(&sealed.token, sealed.entity_type, value)
    }

    /// Seals `entries` now and keeps them for [`Vault::write_queued`]: written together they go
    /// in token order, which the embedded backend takes several times faster than row order.
    /// Only ciphertexts are kept (spilled to temporary files past a bound), never a value.
    pub fn queue(&mut self, entries: Vec<VaultEntry>) -> Result<(), VaultError> {
        for entry in entries {
            let sealed = self.seal(&entry);
            self.queued.push(sealed).map_err(|source| VaultError::Queue {
                dataset: self.dataset(),
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
                dataset: self.dataset(),
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
                    dataset: self.dataset(),
                    source,
                },
                BatchError::Unprocessed { left, retries } => VaultError::Unprocessed {
                    dataset: self.dataset(),
                    unwritten: left,
                    attempts: retries + 1,
                },
            })
    }

    /// The original behind `token`, or `None` when the vault has no such token.
    pub async fn reidentify(&self, token: &str) -> Result<Option<String>, VaultError> {
        VaultReader::new(self.table.as_ref(), self.cipher.clone())
            .reidentify(token)
            .await
            .map_err(VaultError::from)
    }
}
