//! The re-identification vault's writer: each tokenized original sealed under the dataset's
//! vault keyring (the format is [`sluice_core::vault`]'s, shared with every reader) and written to
//! the control table in token order. Only a caller holding the key can [`Vault::reidentify`].

mod queue;

use std::fmt;
use std::sync::Arc;

use sluice_core::retry::Backoff;
use sluice_core::sealed::{Keyring, SealedValue};
use sluice_core::tables::{BatchError, put_batch_fully};
use sluice_core::vault::{VaultCipher, VaultReadError, VaultReader};
use sluice_core::{BackendError, Item, SecretStore, Table};

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
        Self::with_keyring(table, dataset, Keyring::single(key))
    }

    fn with_keyring(table: Arc<dyn Table>, dataset: &str, keyring: Keyring) -> Vault {
        Vault {
            table,
            cipher: VaultCipher::with_keyring(dataset, keyring),
            queued: SealedQueue::default(),
            backoff: Backoff::default(),
        }
    }

    fn dataset(&self) -> String {
        self.cipher.dataset().to_string()
    }

    /// The vault for writing: its keyring comes from the secrets backend, created on first use.
    pub async fn open(table: Arc<dyn Table>, secrets: &dyn SecretStore, dataset: &str) -> Result<Vault, VaultError> {
        let keyring = Keyring::load_or_create(secrets, &vault_key_name(dataset))
            .await
            .map_err(|err| VaultError::Backend {
                dataset: dataset.to_string(),
                source: err.into(),
            })?;
        Ok(Self::with_keyring(table, dataset, keyring))
    }

    /// The vault for reading: fails rather than creating a key when none exists.
    pub async fn open_existing(
        table: Arc<dyn Table>,
        secrets: &dyn SecretStore,
        dataset: &str,
    ) -> Result<Vault, VaultError> {
        let keyring = Keyring::load_existing(secrets, &vault_key_name(dataset))
            .await
            .map_err(|err| VaultError::Backend {
                dataset: dataset.to_string(),
                source: err.into(),
            })?
            .ok_or_else(|| VaultError::NoKey {
                dataset: dataset.to_string(),
            })?;
        Ok(Self::with_keyring(table, dataset, keyring))
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
        // The queue keeps no key version: this vault's keyring never changes, so every entry it
        // queued was sealed under the keyring's current version.
        let value = SealedValue {
            key_version: self.cipher.current_key_version(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::{AttrValue, ItemKey, SecretValue};

    /// The vault's key stored as one bare hex key and an entry without `key_version`, both as
    /// the vault wrote them before [`sluice_core::sealed`] (recorded with the key `[0x5a; 32]`).
    #[tokio::test]
    async fn a_vault_written_before_key_versions_still_reidentifies_and_takes_new_entries() {
        let dir = tempfile::tempdir().unwrap();
        let (_, backends) = sluice_core::testing::local_test_backends(dir.path());
        let key_name = vault_key_name("orders");
        let bare_key = SecretValue::new(hex::encode([0x5a_u8; 32]));
        backends.secrets.put(&key_name, &bare_key).await.unwrap();
        let old_token = "EMAIL_0123456789abcdef0123456789abcdef";
        let mut old = ItemKey::new(vault_partition("orders"), old_token).to_item();
        old.insert("entity_type".into(), AttrValue::S("EMAIL".into()));
        old.insert(
            "nonce".into(),
            AttrValue::B(hex::decode("ad7b74c47303f7d04bea68e6").unwrap()),
        );
        let ciphertext = "af4706fc208dfcc5db29de1ef585bb945bb78a19449aba19a6b0ecc9fc84a400";
        old.insert("ciphertext".into(), AttrValue::B(hex::decode(ciphertext).unwrap()));
        assert!(backends.control.batch_put(&[old]).await.unwrap().is_empty());

        let mut vault = Vault::open(backends.control.clone(), backends.secrets.as_ref(), "orders")
            .await
            .unwrap();
        assert_eq!(
            vault.reidentify(old_token).await.unwrap().as_deref(),
            Some("ana@example.test")
        );
        let new_token = "EMAIL_ffffffffffffffffffffffffffffffff";
        let entry = VaultEntry {
            token: new_token.into(),
            kind: EntityType::Email,
            value: "bo@example.test".into(),
        };
        vault.queue(vec![entry]).unwrap();
        assert_eq!(vault.write_queued().await.unwrap(), 1);
        let stored = backends
            .control
            .get(&ItemKey::new(vault_partition("orders"), new_token))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.get("key_version"), Some(&AttrValue::N("1".into())));
        assert_eq!(
            backends.secrets.get(&key_name).await.unwrap(),
            Some(bare_key),
            "the key secret is left as it was"
        );
        let reader = Vault::open_existing(backends.control.clone(), backends.secrets.as_ref(), "orders")
            .await
            .unwrap();
        assert_eq!(
            reader.reidentify(new_token).await.unwrap().as_deref(),
            Some("bo@example.test")
        );
    }
}
