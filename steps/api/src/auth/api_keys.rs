//! API-key checks: shape and checksum first (no look-up for typos or junk), then the SHA-256
//! looked up in the control table, positive answers cached briefly. Last use is recorded at
//! most every few minutes per key, off the request path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use sluice_core::Table;
use sluice_tokens::api_key::{self, KeyHash};
use sluice_tokens::{ApiKeyStore, StoredApiKey};

use super::{AuthError, AuthMethod, Principal};

/// Beyond this many cached keys the cache starts over (bounded memory under key churn).
const MAX_CACHED_KEYS: usize = 10_000;
const LAST_USE_INTERVAL: Duration = Duration::from_secs(300);

pub struct ApiKeyVerifier {
    store: ApiKeyStore,
    ttl: Duration,
    cache: RwLock<HashMap<KeyHash, (Arc<StoredApiKey>, Instant)>>,
    last_use_written: Mutex<HashMap<KeyHash, Instant>>,
}

impl ApiKeyVerifier {
    pub fn new(control: Arc<dyn Table>, ttl: Duration) -> ApiKeyVerifier {
        ApiKeyVerifier {
            store: ApiKeyStore::new(control),
            ttl,
            cache: RwLock::new(HashMap::new()),
            last_use_written: Mutex::new(HashMap::new()),
        }
    }

    pub async fn verify(&self, presented: &str) -> Result<Principal, AuthError> {
        let hash = api_key::parse(presented).map_err(|err| AuthError::Invalid(err.to_string()))?;
        let stored = match self.cached(&hash) {
            Some(stored) => stored,
            None => {
                let found = self
                    .store
                    .find(&hash)
                    .await
                    .map_err(|err| AuthError::Unavailable(err.to_string()))?
                    .ok_or_else(|| AuthError::Invalid(format!("unknown API key {}", hash.key_id())))?;
                let found = Arc::new(found);
                self.remember(hash, found.clone());
                found
            }
        };
        let now = Utc::now();
        if stored.revoked {
            return Err(AuthError::Invalid(format!("revoked API key {}", stored.key_id())));
        }
        if !stored.is_usable(now) {
            return Err(AuthError::Invalid(format!("expired API key {}", stored.key_id())));
        }
        self.note_use(&stored);
        Ok(Principal {
            subject: stored.key_id(),
            method: AuthMethod::ApiKey,
            scopes: stored.scopes.clone(),
            dataset: Some(stored.dataset.clone()),
        })
    }

    fn cached(&self, hash: &KeyHash) -> Option<Arc<StoredApiKey>> {
        let cache = self.cache.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache
            .get(hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(stored, _)| stored.clone())
    }

    fn remember(&self, hash: KeyHash, stored: Arc<StoredApiKey>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= MAX_CACHED_KEYS {
            cache.clear();
        }
        cache.insert(hash, (stored, Instant::now()));
    }

    fn note_use(&self, stored: &Arc<StoredApiKey>) {
        {
            let mut written = self.last_use_written.lock().unwrap_or_else(|p| p.into_inner());
            if written
                .get(&stored.hash)
                .is_some_and(|at| at.elapsed() < LAST_USE_INTERVAL)
            {
                return;
            }
            if written.len() >= MAX_CACHED_KEYS {
                written.clear();
            }
            written.insert(stored.hash, Instant::now());
        }
        let store = self.store.clone();
        let stored = stored.clone();
        tokio::spawn(async move {
            if let Err(err) = store.record_use(&stored, Utc::now()).await {
                tracing::warn!(key_id = %stored.key_id(), error = %err, "could not record the key's last use");
            }
        });
    }
}
