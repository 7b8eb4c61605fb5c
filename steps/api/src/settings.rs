//! The `[api]` section. Example:
//!
//! ```toml
//! [api]
//! state_machine_arn = "arn:aws:states:us-east-1:123456789012:stateMachine:sluice"
//! [api.jwt]
//! issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example"
//! client_ids = ["3n4b5urk1ft4fl3mg5e62d9ado"]   # Cognito access tokens
//! # audiences = ["https://api.example.com"]    # Auth0 (or any `aud`)
//! scope_prefix = "sluice/"                     # Cognito resource-server identifier
//! ```

use serde::Deserialize;
use sluice_core::Config;

use crate::error::ApiSetupError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// The state machine `POST /runs` starts (AWS).
    pub state_machine_arn: Option<String>,
    /// How long a positive API-key look-up is reused (revocations take at most this long).
    pub api_key_cache_secs: u64,
    pub default_page_size: usize,
    pub max_page_size: usize,
    /// Retries of BatchGetItem's `UnprocessedKeys` before answering 503.
    pub batch_get_retries: u32,
    /// Bearer JWTs are refused when this is absent.
    pub jwt: Option<JwtSettings>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            state_machine_arn: None,
            api_key_cache_secs: 30,
            default_page_size: 100,
            max_page_size: 1000,
            batch_get_retries: 8,
            jwt: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtSettings {
    /// The exact `iss` of accepted tokens.
    pub issuer: String,
    /// Where the signing keys are; `<issuer>/.well-known/jwks.json` when absent.
    pub jwks_url: Option<String>,
    /// Accepted `aud` values (Auth0 and most IdPs).
    pub audiences: Vec<String>,
    /// Accepted Cognito app clients: access tokens (`token_use = access`) with this `client_id`.
    pub client_ids: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
    /// Accepted algorithms: a subset of RS256 and ES256.
    pub algorithms: Vec<String>,
    /// Stripped from scopes before matching (Cognito resource-server scopes look like `sluice/records:read`).
    pub scope_prefix: String,
    /// The JWKS is refetched after this long even if every `kid` is known.
    pub jwks_max_age_secs: u64,
    /// Tokens that live longer (from `iat`, or from now, to `exp`) are refused.
    pub max_lifetime_secs: u64,
}

impl Default for JwtSettings {
    fn default() -> Self {
        JwtSettings {
            issuer: String::new(),
            jwks_url: None,
            audiences: Vec::new(),
            client_ids: Vec::new(),
            leeway_secs: 30,
            algorithms: vec!["RS256".into(), "ES256".into()],
            scope_prefix: String::new(),
            jwks_max_age_secs: 3600,
            max_lifetime_secs: 24 * 3600,
        }
    }
}

fn is_https_or_loopback(url: &str) -> bool {
    url.starts_with("https://")
        || ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|prefix| url.starts_with(prefix))
}

impl ApiSettings {
    pub fn from_config(config: &Config) -> Result<ApiSettings, ApiSetupError> {
        let settings: ApiSettings = config.section("api")?;
        settings.check()?;
        Ok(settings)
    }

    pub fn check(&self) -> Result<(), ApiSetupError> {
        let invalid = |field: &str, message: &str| ApiSetupError::Settings {
            field: field.to_string(),
            message: message.to_string(),
        };
        if self.default_page_size == 0 || self.default_page_size > self.max_page_size {
            return Err(invalid("default_page_size", "must be between 1 and max_page_size"));
        }
        if self.max_page_size > 1000 {
            return Err(invalid("max_page_size", "must be at most 1000"));
        }
        let Some(jwt) = &self.jwt else {
            return Ok(());
        };
        if !is_https_or_loopback(&jwt.issuer) {
            return Err(invalid(
                "jwt.issuer",
                "must be an https:// URL (plain http only on loopback)",
            ));
        }
        if let Some(url) = &jwt.jwks_url
            && !is_https_or_loopback(url)
        {
            return Err(invalid(
                "jwt.jwks_url",
                "must be an https:// URL (plain http only on loopback)",
            ));
        }
        if jwt.audiences.is_empty() && jwt.client_ids.is_empty() {
            return Err(invalid(
                "jwt",
                "needs audiences (the `aud` to accept) or client_ids (Cognito app clients)",
            ));
        }
        if jwt.algorithms.is_empty() {
            return Err(invalid("jwt.algorithms", "must name RS256, ES256 or both"));
        }
        if let Some(bad) = jwt.algorithms.iter().find(|a| !matches!(a.as_str(), "RS256" | "ES256")) {
            return Err(invalid(
                "jwt.algorithms",
                &format!("holds {bad:?}; only RS256 and ES256 are accepted (never none or HS*)"),
            ));
        }
        Ok(())
    }
}

impl JwtSettings {
    pub fn jwks_url(&self) -> String {
        self.jwks_url
            .clone()
            .unwrap_or_else(|| format!("{}/.well-known/jwks.json", self.issuer.trim_end_matches('/')))
    }
}
