//! The re-identification vault's format, in one place for the writer (the PII mask step) and
//! every reader (the API's re-identify route, `sluice pii reidentify`): each tokenized original
//! AES-256-GCM encrypted under the dataset's key `pii/vault/<dataset>` (random 96-bit nonce;
//! the dataset and token as associated data, so a ciphertext moved to another token or dataset
//! does not decrypt), stored in the control table as `vault#<dataset>` / `<token>`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

use crate::item::{AttrValue, Item, ItemKey, SORT_KEY};
use crate::retry::Backoff;
use crate::tables::{BatchError, MAX_BATCH_GET, get_batch_fully};
use crate::{BackendError, SecretStore, Table, secrets};

pub const NONCE_BYTES: usize = 12;

/// The secrets-backend name of a dataset's vault key.
pub fn vault_key_name(dataset: &str) -> String {
    format!("pii/vault/{dataset}")
}

/// The control-table partition holding a dataset's vault.
pub fn vault_partition(dataset: &str) -> String {
    format!("vault#{dataset}")
}

/// A value sealed for the vault: what its control-table item holds.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub nonce: [u8; NONCE_BYTES],
    pub ciphertext: Vec<u8>,
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
    #[error("vault entry {token} of dataset {dataset} is malformed: {reason}")]
    Malformed {
        dataset: String,
        token: String,
        reason: &'static str,
    },
}

/// One dataset's vault cipher. Its `Debug` shows the dataset only.
#[derive(Clone)]
pub struct VaultCipher {
    cipher: Aes256Gcm,
    dataset: String,
}

impl fmt::Debug for VaultCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultCipher")
            .field("dataset", &self.dataset)
            .finish_non_exhaustive()
    }
}

impl VaultCipher {
    pub fn new(dataset: &str, key: &[u8; 32]) -> VaultCipher {
        VaultCipher {
            cipher: Aes256Gcm::new(key.into()),
            dataset: dataset.to_string(),
        }
    }

    pub fn dataset(&self) -> &str {
        &self.dataset
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
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let aad = self.associated_data(token);
        let payload = Payload {
            msg: value.as_bytes(),
            aad: &aad,
        };
        let ciphertext = match self.cipher.encrypt(Nonce::from_slice(&nonce), payload) {
            Ok(ciphertext) => ciphertext,
            // AES-GCM encryption fails only for messages beyond 64 GiB.
            Err(_) => unreachable!("AES-GCM cannot fail on a cell-sized message"),
        };
        SealedValue { nonce, ciphertext }
    }

    /// The control-table item of a sealed entry.
    pub fn item(&self, token: &str, entity_type: String, sealed: SealedValue) -> Item {
        let mut item = ItemKey::new(vault_partition(&self.dataset), token).to_item();
        item.insert("entity_type".into(), AttrValue::S(entity_type));
        item.insert("nonce".into(), AttrValue::B(sealed.nonce.to_vec()));
        item.insert("ciphertext".into(), AttrValue::B(sealed.ciphertext));
        item
    }

    /// The original held by a vault item for `token`.
    pub fn open(&self, token: &str, item: &Item) -> Result<String, VaultReadError> {
        let malformed = |reason| VaultReadError::Malformed {
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
        let payload = Payload {
            msg: ciphertext,
            aad: &aad,
        };
        let plain =
            self.cipher
                .decrypt(Nonce::from_slice(nonce), payload)
                .map_err(|_| VaultReadError::Undecryptable {
                    dataset: self.dataset.clone(),
                    token: token.to_string(),
                })?;
        String::from_utf8(plain).map_err(|_| malformed("plaintext is not UTF-8"))
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
        let key = secrets::existing_key(secrets, &vault_key_name(dataset))
            .await
            .map_err(|source| VaultReadError::Backend {
                dataset: dataset.to_string(),
                source,
            })?;
        Ok(key.map(|key| VaultReader::new(table, VaultCipher::new(dataset, &key))))
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
