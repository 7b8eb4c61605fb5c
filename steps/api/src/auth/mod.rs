//! One authorizer for the router and for API Gateway: who is calling, and what they may do.
//!
//! Credentials come as `Authorization: Bearer <JWT>`, or an API key in the `x-api-key` header,
//! the `api_key` query parameter or the `api_key` cookie (in that order of preference).
//! Scopes: `records:read` and `runs:start` (and `records:reidentify` for the de-identification
//! vault). API keys belong to one dataset; a JWT scope may name one (`records:read:orders`) or
//! cover all (`records:read`).

mod api_keys;
pub mod credentials;
mod jwks;
mod jwt;
pub mod lambda;

use std::sync::Arc;

use sluice_core::Backends;

use crate::error::ApiError;
use crate::settings::ApiSettings;

pub use api_keys::ApiKeyVerifier;
pub use credentials::Credentials;
pub use jwks::JwksCache;
pub use jwt::JwtVerifier;

pub use sluice_core::scopes::{RECORDS_READ, RECORDS_REIDENTIFY, RUNS_START};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ApiKey,
    Jwt,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key id (`k_...`) or the token's `client_id`/`sub`: safe to log.
    pub subject: String,
    pub method: AuthMethod,
    /// Scopes with any configured resource-server prefix removed.
    pub scopes: Vec<String>,
    /// An API key's dataset; JWTs are not bound to one.
    pub dataset: Option<String>,
}

/// Why an authenticated caller may not do something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// 403: the caller lacks the scope altogether.
    MissingScope,
    /// 404: the caller has the scope, but not for this dataset (which must look nonexistent).
    HiddenDataset,
}

impl Principal {
    /// Whether this caller may use `scope`, on `dataset` when the route names one.
    pub fn check(&self, scope: &str, dataset: Option<&str>) -> Result<(), Denied> {
        let dataset_scope_prefix = format!("{scope}:");
        let mut granted_somewhere = false;
        for held in &self.scopes {
            if held == scope {
                granted_somewhere = true;
                if self.dataset_allows(dataset) {
                    return Ok(());
                }
            } else if let Some(only) = held.strip_prefix(&dataset_scope_prefix) {
                granted_somewhere = true;
                if dataset.is_some_and(|d| d == only) && self.dataset_allows(dataset) {
                    return Ok(());
                }
            }
        }
        if granted_somewhere && dataset.is_some() {
            Err(Denied::HiddenDataset)
        } else {
            Err(Denied::MissingScope)
        }
    }

    fn dataset_allows(&self, dataset: Option<&str>) -> bool {
        match (&self.dataset, dataset) {
            (Some(bound), Some(asked)) => bound == asked,
            _ => true,
        }
    }

    /// [`Principal::check`] as the API's answer.
    pub fn require(&self, scope: &str, dataset: Option<&str>) -> Result<(), ApiError> {
        self.check(scope, dataset).map_err(|denied| match denied {
            Denied::MissingScope => ApiError::insufficient_scope(scope),
            Denied::HiddenDataset => ApiError::not_found(),
        })
    }
}

/// Why authentication failed. Only logged (without the credential), never sent.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials")]
    Missing,
    #[error("invalid credentials: {0}")]
    Invalid(String),
    #[error("cannot check credentials now: {0}")]
    Unavailable(String),
}

impl AuthError {
    pub fn into_api_error(self) -> ApiError {
        match self {
            AuthError::Missing => ApiError::unauthorized(false),
            AuthError::Invalid(reason) => {
                tracing::info!(%reason, "authentication failed");
                ApiError::unauthorized(true)
            }
            AuthError::Unavailable(reason) => {
                tracing::warn!(%reason, "authentication backend unavailable");
                ApiError::unavailable("cannot check credentials right now; retry shortly")
            }
        }
    }
}

/// API keys and, when configured, JWTs.
pub struct Authorizer {
    api_keys: ApiKeyVerifier,
    jwt: Option<JwtVerifier>,
}

impl Authorizer {
    pub fn new(api_keys: ApiKeyVerifier, jwt: Option<JwtVerifier>) -> Authorizer {
        Authorizer { api_keys, jwt }
    }

    /// From `[api]` and the control table.
    pub fn from_settings(settings: &ApiSettings, backends: &Backends) -> Result<Authorizer, reqwest::Error> {
        let api_keys = ApiKeyVerifier::new(
            backends.control.clone(),
            std::time::Duration::from_secs(settings.api_key_cache_secs),
        );
        let jwt = settings.jwt.clone().map(JwtVerifier::new).transpose()?;
        Ok(Authorizer::new(api_keys, jwt))
    }

    pub async fn authenticate(&self, credentials: &Credentials) -> Result<Principal, AuthError> {
        match credentials {
            Credentials::None => Err(AuthError::Missing),
            Credentials::Malformed(why) => Err(AuthError::Invalid((*why).to_string())),
            Credentials::ApiKey(key) => self.api_keys.verify(key).await,
            Credentials::Bearer(token) => match &self.jwt {
                Some(jwt) => jwt.verify(token).await,
                None => Err(AuthError::Invalid("Bearer tokens are not configured".into())),
            },
        }
    }
}

/// Shared by handlers and the Lambda authorizer.
pub type SharedAuthorizer = Arc<Authorizer>;

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(scopes: &[&str], dataset: Option<&str>) -> Principal {
        Principal {
            subject: "t".into(),
            method: AuthMethod::Jwt,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            dataset: dataset.map(str::to_string),
        }
    }

    #[test]
    fn dataset_scopes_hide_other_datasets_and_missing_scopes_are_forbidden() {
        let all = principal(&[RECORDS_READ], None);
        assert_eq!(all.check(RECORDS_READ, Some("orders")), Ok(()));
        assert_eq!(all.check(RUNS_START, None), Err(Denied::MissingScope));

        let one = principal(&["records:read:orders"], None);
        assert_eq!(one.check(RECORDS_READ, Some("orders")), Ok(()));
        assert_eq!(one.check(RECORDS_READ, Some("people")), Err(Denied::HiddenDataset));

        let key = principal(&[RECORDS_READ], Some("orders"));
        assert_eq!(key.check(RECORDS_READ, Some("orders")), Ok(()));
        assert_eq!(key.check(RECORDS_READ, Some("people")), Err(Denied::HiddenDataset));
        assert_eq!(key.check(RECORDS_REIDENTIFY, Some("orders")), Err(Denied::MissingScope));
    }

    #[test]
    fn a_scope_that_merely_starts_alike_grants_nothing() {
        let sneaky = principal(&["records:readall"], None);
        assert_eq!(sneaky.check(RECORDS_READ, Some("orders")), Err(Denied::MissingScope));
    }
}
