//! The issuer's signing keys, fetched from its JWKS URL and cached by `kid`. An unknown `kid`
//! triggers a refetch (key rotation at the IdP), at most once per 10 seconds, so a flood of
//! made-up `kid`s cannot turn into a flood of requests to the IdP.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::AuthError;

pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// One usable verification key and the only algorithm it may verify.
#[derive(Clone)]
pub struct SigningKey {
    pub key: DecodingKey,
    pub algorithm: Algorithm,
}

struct Snapshot {
    keys: HashMap<String, Arc<SigningKey>>,
    fetched_at: Option<Instant>,
}

pub struct JwksCache {
    url: String,
    http: reqwest::Client,
    max_age: Duration,
    snapshot: RwLock<Snapshot>,
    // Serialises refetches; holds when the last one was attempted.
    refetch: tokio::sync::Mutex<Option<Instant>>,
}

impl JwksCache {
    pub fn new(url: String, max_age: Duration) -> Result<JwksCache, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        Ok(JwksCache {
            url,
            http,
            max_age,
            snapshot: RwLock::new(Snapshot {
                keys: HashMap::new(),
                fetched_at: None,
            }),
            refetch: tokio::sync::Mutex::new(None),
        })
    }

    fn lookup(&self, kid: &str) -> (Option<Arc<SigningKey>>, bool) {
        let snapshot = self.snapshot.read().unwrap_or_else(|p| p.into_inner());
        let stale = snapshot.fetched_at.is_none_or(|at| at.elapsed() > self.max_age);
        (snapshot.keys.get(kid).cloned(), stale)
    }

    /// The key with this `kid`, refetching the set when the `kid` is unknown or the set is old.
    pub async fn key(&self, kid: &str) -> Result<Arc<SigningKey>, AuthError> {
        let (found, stale) = self.lookup(kid);
        if let Some(key) = &found
            && !stale
        {
            return Ok(key.clone());
        }
        let mut last_attempt = self.refetch.lock().await;
        // Someone else may have refetched while we waited.
        let (after_wait, stale) = self.lookup(kid);
        if let Some(key) = &after_wait
            && !stale
        {
            return Ok(key.clone());
        }
        if last_attempt.is_some_and(|at| at.elapsed() < MIN_REFETCH_INTERVAL) {
            return after_wait.ok_or_else(|| AuthError::Invalid("unknown kid".into()));
        }
        *last_attempt = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                let mut snapshot = self.snapshot.write().unwrap_or_else(|p| p.into_inner());
                snapshot.keys = keys;
                snapshot.fetched_at = Some(Instant::now());
                snapshot
                    .keys
                    .get(kid)
                    .cloned()
                    .ok_or_else(|| AuthError::Invalid("unknown kid".into()))
            }
            // A stale but known key still verifies while the IdP is unreachable.
            Err(err) => after_wait.ok_or(err),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<SigningKey>>, AuthError> {
        let unavailable = |what: &str| AuthError::Unavailable(format!("JWKS {}: {what}", self.url));
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|_| unavailable("cannot fetch"))?;
        if !response.status().is_success() {
            return Err(unavailable(&format!("HTTP {}", response.status().as_u16())));
        }
        let body = response.bytes().await.map_err(|_| unavailable("cannot read"))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(unavailable("larger than 256 KiB"));
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|_| unavailable("not a JWK set"))?;
        let keys: HashMap<String, Arc<SigningKey>> = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
                    return None;
                }
                let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
                    (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
                    (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
                        if ec.curve == EllipticCurve::P256 =>
                    {
                        Algorithm::ES256
                    }
                    // Symmetric keys and anything else are never accepted.
                    _ => return None,
                };
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some((kid, Arc::new(SigningKey { key, algorithm })))
            })
            .collect();
        tracing::info!(url = %self.url, keys = keys.len(), "fetched the JWKS");
        Ok(keys)
    }
}
