//! Outbound OAuth2 client-credentials tokens (the API-token seed, done right):
//!
//! - fetched from the configured token URL with the client secret from the secrets backend
//!   (HTTP Basic or form body), retried a configured number of times at a configured interval,
//!   never retried when the server refuses the client;
//! - cached in memory and in the control table, AES-256-GCM encrypted under a random key kept
//!   in the secrets backend (never derived from the client secret), until `refresh_margin_secs`
//!   before expiry;
//! - fetched by one caller at a time: an async mutex within the process and a short lease in
//!   the control table across processes (several Lambdas), the others waiting for the cache.

mod cache;
mod fetch;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sluice_core::item::EXPIRES_AT;
use sluice_core::{
    AttrValue, BackendError, DeleteCondition, ItemKey, PutCondition, SecretStore, SecretValue, StepError, Table,
};

use cache::TokenCache;

/// `[tokens.clients.<name>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientCredentialsSettings {
    pub token_url: String,
    pub client_id: String,
    /// The name of the secret (in the secrets backend) holding the client secret.
    pub client_secret_name: String,
    pub scope: Option<String>,
    /// Auth0 wants the API identifier as `audience`.
    pub audience: Option<String>,
    pub auth_method: ClientAuthMethod,
    /// Further attempts after the first one fails with a retryable error.
    pub retries: u32,
    pub retry_interval_ms: u64,
    /// Fetch a new token this long before the cached one expires.
    pub refresh_margin_secs: u64,
    pub timeout_secs: u64,
}

impl Default for ClientCredentialsSettings {
    fn default() -> Self {
        ClientCredentialsSettings {
            token_url: String::new(),
            client_id: String::new(),
            client_secret_name: String::new(),
            scope: None,
            audience: None,
            auth_method: ClientAuthMethod::Basic,
            retries: 2,
            retry_interval_ms: 1000,
            refresh_margin_secs: 60,
            timeout_secs: 10,
        }
    }
}

/// How the client authenticates to the token endpoint (RFC 6749 section 2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// `client_secret_basic`: an `Authorization: Basic` header.
    #[default]
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Post,
}

impl ClientCredentialsSettings {
    /// A message naming the bad field, or Ok.
    pub fn check(&self) -> Result<(), String> {
        let url = self.token_url.as_str();
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|prefix| url.starts_with(prefix));
        if !url.starts_with("https://") && !loopback {
            return Err("token_url must be an https:// URL (plain http only on loopback)".into());
        }
        if self.client_id.trim().is_empty() {
            return Err("client_id must not be empty".into());
        }
        if self.client_secret_name.trim().is_empty() {
            return Err("client_secret_name must name the secret holding the client secret".into());
        }
        if self.timeout_secs == 0 {
            return Err("timeout_secs must be at least 1".into());
        }
        Ok(())
    }
}

/// An access token. Its `Debug` never shows the token.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessToken {
    pub secret: SecretValue,
    pub token_type: String,
    pub expires_at: DateTime<Utc>,
}

impl AccessToken {
    /// The `Authorization` header value.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.secret.expose())
    }

    fn is_fresh(&self, now: DateTime<Utc>, margin: Duration) -> bool {
        let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::MAX);
        now + margin < self.expires_at
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("client {client}: {message}")]
    Settings { client: String, message: String },
    #[error("client {client}: the client secret {secret_name} is not in the secrets backend")]
    MissingSecret { client: String, secret_name: String },
    #[error("client {client}: the token endpoint refused the request (HTTP {status}{})", oauth_error.as_ref().map(|e| format!(", error={e}")).unwrap_or_default())]
    Rejected {
        client: String,
        status: u16,
        oauth_error: Option<String>,
    },
    #[error("client {client}: the token endpoint failed {attempts} time(s); last: {last}")]
    Unavailable {
        client: String,
        attempts: u32,
        last: String,
    },
    #[error("client {client}: the token endpoint answered something that is not a token: {reason}")]
    InvalidResponse { client: String, reason: String },
    #[error("client {client}: cannot build the HTTP client: {message}")]
    Http { client: String, message: String },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl StepError for CredentialsError {
    fn error_name(&self) -> &'static str {
        match self {
            CredentialsError::Settings { .. } | CredentialsError::Http { .. } => "Config.Invalid",
            CredentialsError::MissingSecret { .. } => "Auth.MissingClientSecret",
            CredentialsError::Rejected { .. } => "Auth.TokenRejected",
            CredentialsError::Unavailable { .. } => "Auth.TokenEndpointUnavailable",
            CredentialsError::InvalidResponse { .. } => "Auth.InvalidTokenResponse",
            CredentialsError::Backend(err) => err.error_name(),
        }
    }
}

const LEASE_SECS: i64 = 30;
const LEASE_POLL: Duration = Duration::from_millis(100);

/// One configured client. Build it once and share it: the in-memory cache and the
/// single-flight guard live in it.
pub struct ClientCredentials {
    name: String,
    settings: ClientCredentialsSettings,
    http: reqwest::Client,
    control: Arc<dyn Table>,
    secrets: Arc<dyn SecretStore>,
    cache: TokenCache,
    memory: tokio::sync::Mutex<Option<AccessToken>>,
}

impl ClientCredentials {
    pub fn new(
        name: &str,
        settings: ClientCredentialsSettings,
        control: Arc<dyn Table>,
        secrets: Arc<dyn SecretStore>,
    ) -> Result<ClientCredentials, CredentialsError> {
        settings.check().map_err(|message| CredentialsError::Settings {
            client: name.to_string(),
            message,
        })?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs))
            .build()
            .map_err(|err| CredentialsError::Http {
                client: name.to_string(),
                message: err.to_string(),
            })?;
        let cache = TokenCache::new(name, &settings.client_id, control.clone(), secrets.clone());
        Ok(ClientCredentials {
            name: name.to_string(),
            settings,
            http,
            control,
            secrets,
            cache,
            memory: tokio::sync::Mutex::new(None),
        })
    }

    /// A token valid for at least `refresh_margin_secs`, from a cache when possible.
    pub async fn token(&self) -> Result<AccessToken, CredentialsError> {
        let margin = Duration::from_secs(self.settings.refresh_margin_secs);
        // Held across the fetch: concurrent callers in this process wait and then reuse it.
        let mut memory = self.memory.lock().await;
        if let Some(token) = memory.as_ref().filter(|t| t.is_fresh(Utc::now(), margin)) {
            return Ok(token.clone());
        }
        let token = self.shared_or_fetched(margin).await?;
        *memory = Some(token.clone());
        Ok(token)
    }

    /// Drops the cached token (e.g. after the API answered 401 with it).
    pub async fn invalidate(&self) -> Result<(), CredentialsError> {
        *self.memory.lock().await = None;
        self.cache.clear().await?;
        Ok(())
    }

    async fn shared_or_fetched(&self, margin: Duration) -> Result<AccessToken, CredentialsError> {
        loop {
            if let Some(token) = self.cache.load().await?.filter(|t| t.is_fresh(Utc::now(), margin)) {
                return Ok(token);
            }
            if let Some(lease) = self.try_lease().await? {
                let fetched = self.fetch_and_store().await;
                lease.release().await;
                return fetched;
            }
            // Another process is fetching: wait for its token to land in the cache.
            let waited_since = std::time::Instant::now();
            while waited_since.elapsed() < Duration::from_secs(LEASE_SECS as u64) {
                tokio::time::sleep(LEASE_POLL).await;
                if let Some(token) = self.cache.load().await?.filter(|t| t.is_fresh(Utc::now(), margin)) {
                    return Ok(token);
                }
                if self.lease_is_free().await? {
                    break;
                }
            }
        }
    }

    async fn fetch_and_store(&self) -> Result<AccessToken, CredentialsError> {
        let secret = self
            .secrets
            .get(&self.settings.client_secret_name)
            .await?
            .ok_or_else(|| CredentialsError::MissingSecret {
                client: self.name.clone(),
                secret_name: self.settings.client_secret_name.clone(),
            })?;
        let token = fetch::fetch_with_retries(&self.http, &self.name, &self.settings, &secret).await?;
        self.cache.store(&token).await?;
        tracing::info!(client = %self.name, expires_at = %token.expires_at, "fetched a client-credentials token");
        Ok(token)
    }

    fn lease_key(&self) -> ItemKey {
        ItemKey::new(format!("cctoken#{}", self.name), "lease")
    }

    async fn try_lease(&self) -> Result<Option<Lease<'_>>, CredentialsError> {
        let now = Utc::now().timestamp();
        let mut item = self.lease_key().to_item();
        item.insert(EXPIRES_AT.into(), AttrValue::N((now + LEASE_SECS).to_string()));
        match self.control.put(item, PutCondition::IfAbsentOrExpired { now }).await {
            Ok(()) => Ok(Some(Lease {
                control: self.control.as_ref(),
                key: self.lease_key(),
            })),
            Err(BackendError::ConditionFailed { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn lease_is_free(&self) -> Result<bool, CredentialsError> {
        Ok(self.control.get(&self.lease_key()).await?.is_none())
    }
}

struct Lease<'a> {
    control: &'a dyn Table,
    key: ItemKey,
}

impl Lease<'_> {
    async fn release(self) {
        if let Err(err) = self.control.delete(&self.key, DeleteCondition::Always).await {
            tracing::warn!(error = %err, "could not release the token lease; it expires by itself");
        }
    }
}
