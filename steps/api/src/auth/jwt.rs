//! Bearer JWT checks: RS256/ES256 only (never `none` or HS*), `kid` required and resolved in
//! the JWKS, the key's own algorithm enforced (so an RSA public key can never be used as an
//! HMAC secret), `iss`, `exp` and `nbf` with explicit leeway, then Cognito's
//! `token_use`/`client_id` or the configured `aud`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::jwks::JwksCache;
use super::{AuthError, AuthMethod, Principal};
use crate::settings::JwtSettings;

/// Longer tokens are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// A verified token is reused this long (never past its `exp`), sparing a signature check per
/// request; short, so a key withdrawn from the JWKS stops working soon.
const VERIFIED_TTL: Duration = Duration::from_secs(60);
const MAX_VERIFIED: usize = 10_000;

struct Verified {
    principal: Principal,
    exp: i64,
    at: Instant,
}

#[derive(Debug, Deserialize)]
struct Claims {
    exp: i64,
    iat: Option<i64>,
    sub: Option<String>,
    #[serde(default)]
    aud: Audience,
    scope: Option<String>,
    scp: Option<Vec<String>>,
    token_use: Option<String>,
    client_id: Option<String>,
    azp: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Audience {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains_any(&self, accepted: &[String]) -> bool {
        match self {
            Audience::None => false,
            Audience::One(aud) => accepted.contains(aud),
            Audience::Many(auds) => auds.iter().any(|a| accepted.contains(a)),
        }
    }
}

pub struct JwtVerifier {
    settings: JwtSettings,
    jwks: JwksCache,
    allowed: Vec<Algorithm>,
    verified: RwLock<HashMap<[u8; 32], Verified>>,
}

impl JwtVerifier {
    pub fn new(settings: JwtSettings) -> Result<JwtVerifier, reqwest::Error> {
        let jwks = JwksCache::new(settings.jwks_url(), Duration::from_secs(settings.jwks_max_age_secs))?;
        let allowed = settings
            .algorithms
            .iter()
            .filter_map(|name| match name.as_str() {
                "RS256" => Some(Algorithm::RS256),
                "ES256" => Some(Algorithm::ES256),
                _ => None,
            })
            .collect();
        Ok(JwtVerifier {
            settings,
            jwks,
            allowed,
            verified: RwLock::new(HashMap::new()),
        })
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.settings.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        // Audience is checked below, where Cognito's client_id rule can be applied as well.
        validation.validate_aud = false;
        validation
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Invalid("empty or oversized token".into()));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = chrono::Utc::now().timestamp();
        let leeway = i64::try_from(self.settings.leeway_secs).unwrap_or(i64::MAX);
        if let Some(principal) = self.recently_verified(&digest, now, leeway) {
            return Ok(principal);
        }
        let (principal, exp) = self.verify_uncached(token).await?;
        let mut verified = self.verified.write().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= MAX_VERIFIED {
            verified.clear();
        }
        verified.insert(
            digest,
            Verified {
                principal: principal.clone(),
                exp,
                at: Instant::now(),
            },
        );
        Ok(principal)
    }

    fn recently_verified(&self, digest: &[u8; 32], now: i64, leeway: i64) -> Option<Principal> {
        let verified = self.verified.read().unwrap_or_else(|p| p.into_inner());
        verified
            .get(digest)
            .filter(|hit| hit.at.elapsed() < VERIFIED_TTL && now <= hit.exp.saturating_add(leeway))
            .map(|hit| hit.principal.clone())
    }

    async fn verify_uncached(&self, token: &str) -> Result<(Principal, i64), AuthError> {
        let header = decode_header(token).map_err(|err| AuthError::Invalid(format!("bad JWT header: {err}")))?;
        refuse_critical_extensions(token)?;
        if !self.allowed.contains(&header.alg) {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("the JWT has no kid".into()))?;
        let key = self.jwks.key(&kid).await?;
        if key.algorithm != header.alg {
            return Err(AuthError::Invalid("the JWT's alg does not match its key".into()));
        }
        let data = decode::<Claims>(token, &key.key, &self.validation(key.algorithm))
            .map_err(|err| AuthError::Invalid(format!("JWT rejected: {err}")))?;
        let claims = data.claims;
        let exp = claims.exp;
        // A stolen long-lived token is a standing credential: cap what is accepted.
        let now = chrono::Utc::now().timestamp();
        let lifetime = exp.saturating_sub(claims.iat.unwrap_or(now).min(now));
        let max = i64::try_from(self.settings.max_lifetime_secs).unwrap_or(i64::MAX);
        if lifetime > max {
            return Err(AuthError::Invalid(format!(
                "the JWT lives {lifetime} s, more than the {max} s accepted (api.jwt.max_lifetime_secs)"
            )));
        }
        self.check_audience(&claims)?;
        let scopes = self.scopes(&claims);
        let subject = claims
            .client_id
            .or(claims.azp)
            .or(claims.sub)
            .unwrap_or_else(|| "unknown".into());
        Ok((
            Principal {
                subject,
                method: AuthMethod::Jwt,
                scopes,
                dataset: None,
            },
            exp,
        ))
    }

    fn check_audience(&self, claims: &Claims) -> Result<(), AuthError> {
        if claims.token_use.as_deref().is_some_and(|use_| use_ != "access") {
            return Err(AuthError::Invalid("not an access token (token_use)".into()));
        }
        if !self.settings.audiences.is_empty() && claims.aud.contains_any(&self.settings.audiences) {
            return Ok(());
        }
        let cognito_client = claims.token_use.as_deref() == Some("access")
            && claims
                .client_id
                .as_ref()
                .is_some_and(|id| self.settings.client_ids.contains(id));
        if cognito_client {
            return Ok(());
        }
        Err(AuthError::Invalid("audience or client_id not accepted".into()))
    }

    fn scopes(&self, claims: &Claims) -> Vec<String> {
        let raw: Vec<&str> = match (&claims.scope, &claims.scp) {
            (Some(scope), _) => scope.split_whitespace().collect(),
            (None, Some(list)) => list.iter().map(String::as_str).collect(),
            (None, None) => Vec::new(),
        };
        let prefix = self.settings.scope_prefix.as_str();
        raw.into_iter()
            .filter_map(|scope| {
                if prefix.is_empty() {
                    Some(scope.to_string())
                } else {
                    scope.strip_prefix(prefix).map(str::to_string)
                }
            })
            .collect()
    }
}

/// RFC 7515 4.1.11: a header listing extensions in `crit` must be refused by a recipient that
/// does not understand them, and this one understands none.
fn refuse_critical_extensions(token: &str) -> Result<(), AuthError> {
    use base64::Engine;
    let encoded = token.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|_| AuthError::Invalid("bad JWT header: not base64url".into()))?;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| AuthError::Invalid("bad JWT header: not JSON".into()))?;
    if header.get("crit").is_some() {
        return Err(AuthError::Invalid(
            "the JWT names critical header extensions (crit), which this server does not implement".into(),
        ));
    }
    Ok(())
}
