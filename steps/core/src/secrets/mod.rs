//! The secrets port: Secrets Manager on AWS, a 0600 JSON file locally.

mod aws;
mod local;

use std::fmt;

use async_trait::async_trait;
use rand::RngCore;

use crate::BackendError;

pub use aws::SecretsManagerStore;
pub use local::LocalSecretStore;

/// A secret's value. Its `Debug` never shows the value, so it cannot leak through a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }

    /// The value itself: call only where it is used, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

#[async_trait]
pub trait SecretStore: Send + Sync {
    async fn get(&self, name: &str) -> Result<Option<SecretValue>, BackendError>;

    /// Creates or replaces the secret.
    async fn put(&self, name: &str, value: &SecretValue) -> Result<(), BackendError>;

    /// Creates the secret only if it does not exist; returns whether it did the creating.
    async fn create_if_absent(&self, name: &str, value: &SecretValue) -> Result<bool, BackendError>;
}

/// A 256-bit key stored hex-encoded under `name`, created at random on first use. Concurrent
/// first uses agree on one key: only one creation wins and everyone reads it back.
pub async fn key_or_create(store: &dyn SecretStore, name: &str) -> Result<[u8; 32], BackendError> {
    if let Some(existing) = store.get(name).await? {
        return decode_key(name, &existing);
    }
    let mut fresh = [0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    store
        .create_if_absent(name, &SecretValue::new(hex::encode(fresh)))
        .await?;
    let stored = store.get(name).await?.ok_or_else(|| BackendError::NotFound {
        what: format!("secret {name}"),
    })?;
    decode_key(name, &stored)
}

/// The 256-bit key stored under `name`, or `None` when there is none (never creates one: for
/// readers such as re-identification, where a missing key means nothing was ever sealed).
pub async fn existing_key(store: &dyn SecretStore, name: &str) -> Result<Option<[u8; 32]>, BackendError> {
    match store.get(name).await? {
        Some(value) => decode_key(name, &value).map(Some),
        None => Ok(None),
    }
}

fn decode_key(name: &str, value: &SecretValue) -> Result<[u8; 32], BackendError> {
    hex::decode(value.expose().trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| BackendError::Corrupt {
            location: format!("secret {name}"),
            reason: "expected 64 hex characters (a 256-bit key)".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_value() {
        let secret = SecretValue::new("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
