//! The one place that decides whether an account is authorized: it reads the token cache,
//! refreshes an expiring token, and forgets a dead one.

use std::sync::Arc;

use sluice_core::{SecretStore, Table};
use tokio::sync::OnceCell;

use super::consent::{ConsentStore, PendingConsent};
use super::{ClientCredentials, Sensitive, StoredToken, TokenCache, TokenEndpoint, TokenKeyring, now_epoch};
use crate::error::GmailError;
use crate::http::{HttpClient, RetryPolicy};
use crate::settings::{GMAIL_READONLY_SCOPE, GmailSettings};

/// Whether Gmail may be called for an account.
#[derive(Debug, Clone)]
pub enum Authorization {
    Authorized {
        access_token: Sensitive,
        expires_at: i64,
        /// What the user granted (empty when the token endpoint did not say).
        scopes: Vec<String>,
    },
    /// No usable token; `reason` is for logs and outputs (it holds no secret).
    ConsentRequired { reason: &'static str },
}

pub struct Authorizer {
    settings: GmailSettings,
    secrets: Arc<dyn SecretStore>,
    cache: TokenCache,
    consents: ConsentStore,
    endpoint: TokenEndpoint,
    /// Loaded on first need: checking a fresh token does not read the client secret.
    credentials: OnceCell<ClientCredentials>,
}

impl Authorizer {
    /// Reads (or creates) the token keyring; everything else is loaded on demand.
    pub async fn new(
        settings: GmailSettings,
        control: Arc<dyn Table>,
        secrets: Arc<dyn SecretStore>,
        http: HttpClient,
    ) -> Result<Authorizer, GmailError> {
        let keyring = TokenKeyring::load_or_create(secrets.as_ref(), &settings.token_key_secret_name).await?;
        let endpoint = TokenEndpoint::new(http, settings.token_uri.clone(), RetryPolicy::from_settings(&settings));
        Ok(Authorizer {
            cache: TokenCache::new(control.clone(), keyring),
            consents: ConsentStore::new(control),
            secrets,
            endpoint,
            settings,
            credentials: OnceCell::new(),
        })
    }

    pub fn settings(&self) -> &GmailSettings {
        &self.settings
    }

    pub fn token_cache(&self) -> &TokenCache {
        &self.cache
    }

    pub fn consents(&self) -> &ConsentStore {
        &self.consents
    }

    pub async fn credentials(&self) -> Result<&ClientCredentials, GmailError> {
        self.credentials
            .get_or_try_init(|| ClientCredentials::load(&self.settings, self.secrets.as_ref()))
            .await
    }

    /// A usable access token for `account`, refreshing it when it is about to expire.
    pub async fn authorize(&self, account: &str) -> Result<Authorization, GmailError> {
        let token = match self.cache.load(account).await {
            Ok(Some(token)) => token,
            Ok(None) => {
                return Ok(Authorization::ConsentRequired {
                    reason: "no cached token",
                });
            }
            Err(err @ GmailError::TokenCacheUnreadable { .. }) => {
                // Unreadable is as good as absent: new consent overwrites it.
                tracing::warn!(account, error = %err, "cached token is unreadable; consent is required");
                return Ok(Authorization::ConsentRequired {
                    reason: "the cached token is unreadable",
                });
            }
            Err(err) => return Err(err),
        };
        if !token.scopes.is_empty() && !token.has_scope(GMAIL_READONLY_SCOPE) {
            self.cache.delete(account).await?;
            return Ok(Authorization::ConsentRequired {
                reason: "the cached token lacks the gmail.readonly scope",
            });
        }
        let now = now_epoch();
        if token.is_fresh(now, self.settings.clock_skew_secs) {
            return Ok(Authorization::Authorized {
                access_token: token.access_token,
                expires_at: token.expires_at,
                scopes: token.scopes,
            });
        }
        let Some(refresh_token) = token.refresh_token else {
            self.cache.delete(account).await?;
            return Ok(Authorization::ConsentRequired {
                reason: "the access token expired and there is no refresh token",
            });
        };
        let credentials = self.credentials().await?;
        match self.endpoint.refresh(credentials, &refresh_token).await {
            Ok(grant) => {
                let refreshed = StoredToken::from_grant(grant, Some(refresh_token), now_epoch());
                self.cache.store(account, &refreshed).await?;
                tracing::info!(account, expires_at = refreshed.expires_at, "access token refreshed");
                Ok(Authorization::Authorized {
                    access_token: refreshed.access_token,
                    expires_at: refreshed.expires_at,
                    scopes: refreshed.scopes,
                })
            }
            Err(err) if err.is_invalid_grant() => {
                // Revoked, password changed, or a testing-mode app's 7-day expiry: the refresh
                // token is dead for good.
                self.cache.delete(account).await?;
                tracing::warn!(account, "refresh token rejected (invalid_grant); consent is required");
                Ok(Authorization::ConsentRequired {
                    reason: "the refresh token was rejected (invalid_grant)",
                })
            }
            Err(err) => Err(err),
        }
    }

    /// Exchanges an authorization code for the pending consent it answers, and caches the token.
    pub async fn exchange_code(&self, code: &Sensitive, pending: &PendingConsent) -> Result<StoredToken, GmailError> {
        let credentials = self.credentials().await?;
        let grant = self
            .endpoint
            .exchange_code(credentials, code, &pending.code_verifier, &pending.redirect_uri)
            .await?;
        let token = StoredToken::from_grant(grant, None, now_epoch());
        if !token.scopes.is_empty() && !token.has_scope(GMAIL_READONLY_SCOPE) {
            // Google's granular consent lets the user untick the scope.
            return Err(GmailError::ConsentDenied {
                reason: "the gmail.readonly scope was not granted".into(),
            });
        }
        if token.refresh_token.is_none() {
            tracing::warn!(account = %pending.account, "the code exchange returned no refresh token; consent will be needed again when the access token expires");
        }
        self.cache.store(&pending.account, &token).await?;
        Ok(token)
    }
}
