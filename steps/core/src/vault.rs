//! The re-identification vault's format, in one place for the writer (the PII mask step) and
//! every reader (the API's re-identify route, `sluice pii reidentify`): each tokenized original
//! sealed ([`crate::sealed`]) under the dataset's keyring `pii/vault/<dataset>`, with the dataset
//! and token as associated data (so a ciphertext moved to another token or dataset does not
//! decrypt), stored in the control table as `vault#<dataset>` / `<token>`. Entries written before
//! key versions existed have no `key_version` and were sealed under the keyring's version 1.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use crate::item::{AttrValue, Item, ItemKey, SORT_KEY};
use crate::retry::Backoff;
use crate::sealed::{KeyVersion, Keyring, MissingKeyVersion, OpenError};
use crate::tables::{BatchError, MAX_BATCH_GET, get_batch_fully};
use crate::{BackendError, SecretStore, Table};

pub use crate::sealed::{NONCE_BYTES, SealedValue};

/// The secrets-backend name of a dataset's vault key.
pub fn vault_key_name(dataset: &str) -> String {
    format!("pii/vault/{dataset}")
}

/// The control-table partition holding a dataset's vault.
pub fn vault_partition(dataset: &str) -> String {
    format!("vault#{dataset}")
}

#[derive(Debug, thiserror::Error)]
pub enum VaultReadError {
    #[error("vault of dataset {dataset}: {source}")]
    Backend {
        dataset: String,
        #[source]
        source: BackendError,
    },
    #[error("vault of dataset {dataset}: {left} entries stayed unprocessed after the retries")]
    Busy { dataset: String, left: usize },
    #[error("vault entry {token} of dataset {dataset} does not decrypt (wrong key, or moved or altered)")]
    Undecryptable { dataset: String, token: String },
    #[error(
        "vault entry {token} of dataset {dataset} is sealed under key version {version}, which the dataset's keyring no longer holds"
    )]
    KeyVersionNotHeld {
        dataset: String,
        token: String,
        version: KeyVersion,
    },
    #[error("vault entry {token} of dataset {dataset} is malformed: {reason}")]
    Malformed {
        dataset: String,
        token: String,
        reason: &'static str,
    },
}

/// One dataset's vault cipher. Its `Debug` shows the dataset and key versions only.
#[derive(Clone)]
pub struct VaultCipher {
    keyring: Keyring,
    dataset: String,
}

impl fmt::Debug for VaultCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultCipher")
            .field("dataset", &self.dataset)
            .field("keyring", &self.keyring)
            .finish()
    }
}

impl VaultCipher {
    /// The cipher of a single key (version 1).
    pub fn new(dataset: &str, key: &[u8; 32]) -> VaultCipher {
        Self::with_keyring(dataset, Keyring::single(key))
    }

    pub fn with_keyring(dataset: &str, keyring: Keyring) -> VaultCipher {
        VaultCipher {
            keyring,
            dataset: dataset.to_string(),
        }
    }

    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    /// The key version [`VaultCipher::seal`] uses.
    pub fn current_key_version(&self) -> KeyVersion {
        self.keyring.current_version()
    }

    fn associated_data(&self, token: &str) -> Vec<u8> {
        // Length-prefixed so that no (dataset, token) pair can pose as another.
        let mut aad = Vec::with_capacity(4 + self.dataset.len() + token.len());
        aad.extend_from_slice(&(self.dataset.len() as u32).to_be_bytes());
        aad.extend_from_slice(self.dataset.as_bytes());
        aad.extend_from_slice(token.as_bytes());
        aad
    }

    pub fn seal(&self, token: &str, value: &str) -> SealedValue {
        self.keyring.seal(&self.associated_data(token), value.as_bytes())
    }

    /// The control-table item of a sealed entry.
    pub fn item(&self, token: &str, entity_type: String, sealed: SealedValue) -> Item {
        let mut item = ItemKey::new(vault_partition(&self.dataset), token).to_item();
        item.insert("entity_type".into(), AttrValue::S(entity_type));
        sealed.write_into(&mut item);
        item
    }

    /// The original held by a vault item for `token`.
    pub fn open(&self, token: &str, item: &Item) -> Result<String, VaultReadError> {
        let malformed = |reason| VaultReadError::Malformed {
            dataset: self.dataset.clone(),
            token: token.to_string(),
            reason,
        };
        let plain = SealedValue::from_item(item, MissingKeyVersion::MeansFirstVersion)
            .and_then(|sealed| self.keyring.open(&sealed, &self.associated_data(token)))
            .map_err(|err| match err {
                OpenError::Malformed { problem } => malformed(problem),
                OpenError::KeyVersionNotHeld { version } => VaultReadError::KeyVersionNotHeld {
                    dataset: self.dataset.clone(),
                    token: token.to_string(),
                    version,
                },
                OpenError::Undecryptable => VaultReadError::Undecryptable {
                    dataset: self.dataset.clone(),
                    token: token.to_string(),
                },
            })?;
        String::from_utf8(plain.into_bytes()).map_err(|_| malformed("plaintext is not UTF-8"))
    }
}

/// Reads one dataset's vault. Tokens are looked up in that dataset's partition only, so another
/// dataset's token is simply not there (and would not decrypt under this key if copied in).
pub struct VaultReader<'a> {
    table: &'a dyn Table,
    cipher: VaultCipher,
}

impl<'a> VaultReader<'a> {
    pub fn new(table: &'a dyn Table, cipher: VaultCipher) -> VaultReader<'a> {
        VaultReader { table, cipher }
    }

    /// The reader for `dataset`, or `None` when the dataset has no vault key (nothing of it was
    /// ever tokenized); never creates a key.
    pub async fn open(
        table: &'a dyn Table,
        secrets: &dyn SecretStore,
        dataset: &str,
    ) -> Result<Option<VaultReader<'a>>, VaultReadError> {
        let keyring = Keyring::load_existing(secrets, &vault_key_name(dataset))
            .await
            .map_err(|err| VaultReadError::Backend {
                dataset: dataset.to_string(),
                source: err.into(),
            })?;
        Ok(keyring.map(|keyring| VaultReader::new(table, VaultCipher::with_keyring(dataset, keyring))))
    }

    pub fn cipher(&self) -> &VaultCipher {
        &self.cipher
    }

    /// The original behind `token`, or `None` when this dataset's vault has no such token.
    pub async fn reidentify(&self, token: &str) -> Result<Option<String>, VaultReadError> {
        let key = ItemKey::new(vault_partition(self.cipher.dataset()), token);
        let item = self.table.get(&key).await.map_err(|source| VaultReadError::Backend {
            dataset: self.cipher.dataset().to_string(),
            source,
        })?;
        item.map(|item| self.cipher.open(token, &item)).transpose()
    }

    /// The originals behind `tokens` that this dataset's vault holds, read in batches of
    /// [`MAX_BATCH_GET`] (one round trip per hundred tokens, not one per token).
    pub async fn reidentify_all<'t>(
        &self,
        tokens: impl IntoIterator<Item = &'t str>,
    ) -> Result<HashMap<String, String>, VaultReadError> {
        let dataset = self.cipher.dataset();
        let distinct: BTreeSet<&str> = tokens.into_iter().collect();
        let keys: Vec<ItemKey> = distinct
            .into_iter()
            .map(|token| ItemKey::new(vault_partition(dataset), token))
            .collect();
        let mut originals = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(MAX_BATCH_GET) {
            let items = get_batch_fully(self.table, chunk.to_vec(), Backoff::default())
                .await
                .map_err(|err| match err {
                    BatchError::Backend(source) => VaultReadError::Backend {
                        dataset: dataset.to_string(),
                        source,
                    },
                    BatchError::Unprocessed { left, .. } => VaultReadError::Busy {
                        dataset: dataset.to_string(),
                        left,
                    },
                })?;
            for item in items {
                if let Some(AttrValue::S(token)) = item.get(SORT_KEY) {
                    let original = self.cipher.open(token, &item)?;
                    originals.insert(token.clone(), original);
                }
            }
        }
        Ok(originals)
    }
}

/// Whether `text` is exactly one token (an argument, say), by [`token_spans`]'s shape.
pub fn is_token(text: &str) -> bool {
    matches!(token_spans(text).as_slice(), [only] if *only == (0..text.len()))
}

/// The tokens in `text`, as byte ranges: `<TYPE>_<32 lowercase hex>` standing alone or inside
/// masked text, where TYPE is upper-case letters, digits and underscores (the entity names).
/// A candidate is only a token if the vault has it; callers look each one up.
pub fn token_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    const DIGEST: usize = 32;
    let bytes = text.as_bytes();
    let is_type_byte = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_';
    let is_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut spans = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        // A token starts with an upper-case letter not preceded by a word character.
        if !bytes[at].is_ascii_uppercase() || (at > 0 && is_word(bytes[at - 1])) {
            at += 1;
            continue;
        }
        let mut end = at;
        while end < bytes.len() && is_type_byte(bytes[end]) {
            end += 1;
        }
        // The type ends at its last underscore followed by the digest.
        let mut found = None;
        for underscore in (at + 1..end.min(bytes.len())).rev() {
            if bytes[underscore] != b'_' {
                continue;
            }
            let digest_end = underscore + 1 + DIGEST;
            let digest_ok = digest_end <= bytes.len()
                && bytes[underscore + 1..digest_end].iter().all(|&b| is_hex(b))
                && (digest_end == bytes.len() || !is_word(bytes[digest_end]));
            if digest_ok {
                found = Some(digest_end);
                break;
            }
        }
        match found {
            Some(token_end) => {
                spans.push(at..token_end);
                at = token_end;
            }
            None => at = end.max(at + 1),
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_for_its_token_and_dataset() {
        let key = [7u8; 32];
        let orders = VaultCipher::new("orders", &key);
        let token = "EMAIL_0123456789abcdef0123456789abcdef";
        let item = orders.item(token, "EMAIL".into(), orders.seal(token, "ana@example.test"));
        assert_eq!(orders.open(token, &item).unwrap(), "ana@example.test");
        let other_token = "EMAIL_ffffffffffffffffffffffffffffffff";
        assert!(matches!(
            orders.open(other_token, &item),
            Err(VaultReadError::Undecryptable { .. })
        ));
        let patients = VaultCipher::new("patients", &key);
        assert!(matches!(
            patients.open(token, &item),
            Err(VaultReadError::Undecryptable { .. })
        ));
        let mut broken = item.clone();
        broken.remove("nonce");
        assert!(matches!(
            orders.open(token, &broken),
            Err(VaultReadError::Malformed { .. })
        ));
    }

    /// An entry as the vault wrote it before [`crate::sealed`] (no `key_version`), recorded from
    /// that code with the key `[0x5a; 32]`.
    #[test]
    fn an_entry_sealed_before_key_versions_still_opens() {
        let token = "EMAIL_0123456789abcdef0123456789abcdef";
        let mut item = ItemKey::new(vault_partition("orders"), token).to_item();
        item.insert("entity_type".into(), AttrValue::S("EMAIL".into()));
        item.insert(
            "nonce".into(),
            AttrValue::B(hex::decode("ad7b74c47303f7d04bea68e6").unwrap()),
        );
        let ciphertext = "af4706fc208dfcc5db29de1ef585bb945bb78a19449aba19a6b0ecc9fc84a400";
        item.insert("ciphertext".into(), AttrValue::B(hex::decode(ciphertext).unwrap()));
        let orders = VaultCipher::new("orders", &[0x5a; 32]);
        assert_eq!(orders.open(token, &item).unwrap(), "ana@example.test");
        let mut rotated = Keyring::single(&[0x5a; 32]);
        assert_eq!(rotated.add_version(&[0x5b; 32]), Some(2));
        let rotated = VaultCipher::with_keyring("orders", rotated);
        assert_eq!(rotated.open(token, &item).unwrap(), "ana@example.test");
    }

    #[tokio::test]
    async fn after_a_rotation_new_entries_use_the_new_key_and_old_ones_still_open() {
        let dir = tempfile::tempdir().unwrap();
        let (_, backends) = crate::testing::local_test_backends(dir.path());
        let secrets = backends.secrets.as_ref();
        let key = crate::secrets::key_or_create(secrets, &vault_key_name("orders"))
            .await
            .unwrap();
        let before = VaultCipher::new("orders", &key);
        let old_token = "EMAIL_00000000000000000000000000000001";
        let old = before.item(old_token, "EMAIL".into(), before.seal(old_token, "old@example.test"));
        assert_eq!(Keyring::rotate(secrets, &vault_key_name("orders")).await.unwrap(), 2);
        let new_token = "EMAIL_00000000000000000000000000000002";
        let reader = VaultReader::open(backends.control.as_ref(), secrets, "orders")
            .await
            .unwrap()
            .unwrap();
        let after = reader.cipher();
        let new = after.item(new_token, "EMAIL".into(), after.seal(new_token, "new@example.test"));
        assert_eq!(new.get("key_version"), Some(&AttrValue::N("2".into())));
        assert!(
            backends
                .control
                .batch_put(&[old.clone(), new.clone()])
                .await
                .unwrap()
                .is_empty()
        );
        let originals = reader.reidentify_all([old_token, new_token]).await.unwrap();
        assert_eq!(originals[old_token], "old@example.test");
        assert_eq!(originals[new_token], "new@example.test");
        assert!(matches!(
            before.open(new_token, &new),
            Err(VaultReadError::KeyVersionNotHeld { version: 2, .. })
        ));
    }

    /// More tokens than one batch read takes, a token of another dataset, and repeats.
    #[tokio::test]
    async fn many_tokens_are_read_in_batches_from_their_own_dataset_only() {
        let dir = tempfile::tempdir().unwrap();
        let (_, backends) = crate::testing::local_test_backends(dir.path());
        let orders = VaultCipher::new("orders", &[3; 32]);
        let tokens: Vec<String> = (0..250).map(|n| format!("EMAIL_{n:032x}")).collect();
        let items: Vec<Item> = tokens
            .iter()
            .map(|t| orders.item(t, "EMAIL".into(), orders.seal(t, &format!("v{t}"))))
            .collect();
        assert!(backends.control.batch_put(&items).await.unwrap().is_empty());
        let patients = VaultCipher::new("patients", &[4; 32]);
        let foreign = "EMAIL_ffffffffffffffffffffffffffffffff";
        let item = patients.item(foreign, "EMAIL".into(), patients.seal(foreign, "secret"));
        assert!(backends.control.batch_put(&[item]).await.unwrap().is_empty());

        let reader = VaultReader::new(backends.control.as_ref(), orders);
        let asked = tokens.iter().map(String::as_str).chain([foreign, tokens[0].as_str()]);
        let originals = reader.reidentify_all(asked).await.unwrap();
        assert_eq!(originals.len(), 250, "another dataset's token is not there");
        assert_eq!(originals[&tokens[249]], format!("v{}", tokens[249]));
        assert!(!originals.contains_key(foreign));
        assert!(reader.reidentify_all([]).await.unwrap().is_empty());
    }

    #[test]
    fn tokens_are_found_alone_and_inside_text_but_not_inside_words() {
        let digest = "0123456789abcdef0123456789abcdef";
        let email = format!("EMAIL_{digest}");
        let card = format!("CREDIT_DEBIT_NUMBER_{digest}");
        let text = format!(
            "write to {email}, card {card}. xEMAIL_{digest} {email}0 EMAIL_{}",
            &digest[..31]
        );
        let found: Vec<&str> = token_spans(&text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(found, vec![email.as_str(), card.as_str()]);
        assert_eq!(token_spans(&email), vec![0..email.len()]);
        assert!(token_spans("").is_empty());
        assert!(token_spans("ÉMAIL_ plain text ☃").is_empty());
    }
}
