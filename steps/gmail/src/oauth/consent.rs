//! Consent requests: a single-use OAuth `state` (128 random bits) and a PKCE verifier, parked
//! in the control table with a TTL beside the task token that waits for them
//! (`pk = oauth#consent#<state>`). The consent URL carries the state and the S256 challenge,
//! never the task token. Claiming deletes the item conditionally, so one callback wins.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sluice_core::{AttrValue, BackendError, DeleteCondition, Item, ItemKey, PutCondition, Table};
use url::Url;

use super::{Sensitive, now_epoch};
use crate::error::GmailError;

const SORT_KEY: &str = "consent";

/// A consent request as created, before it is parked.
#[derive(Debug, Clone)]
pub struct ConsentRequest {
    /// 128 random bits, base64url: the only link between Google's redirect and the waiting task.
    pub state: String,
    pub code_verifier: Sensitive,
    pub url: String,
    pub expires_at: i64,
}

/// What the control table holds for a state until the callback (or the manual exchange) claims it.
#[derive(Debug, Clone)]
pub struct PendingConsent {
    pub account: String,
    pub task_token: Option<Sensitive>,
    pub code_verifier: Sensitive,
    pub redirect_uri: String,
    pub expires_at: i64,
}

/// The parameters of a consent URL.
pub struct ConsentUrlParts<'a> {
    pub auth_uri: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a [&'a str],
    /// Pre-fills the account chooser when the account is an email address.
    pub login_hint: Option<&'a str>,
}

impl ConsentRequest {
    pub fn new(parts: &ConsentUrlParts<'_>, ttl_secs: i64) -> Result<ConsentRequest, GmailError> {
        let state = random_token(16);
        let code_verifier = Sensitive::new(random_token(32));
        let challenge = code_challenge(&code_verifier);
        let mut url = Url::parse(parts.auth_uri).map_err(|err| GmailError::Settings {
            field: "gmail.auth_uri".into(),
            message: format!("is not a URL: {err}"),
        })?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", parts.client_id)
                .append_pair("redirect_uri", parts.redirect_uri)
                .append_pair("scope", &parts.scopes.join(" "))
                .append_pair("access_type", "offline")
                .append_pair("prompt", "consent")
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(hint) = parts.login_hint {
                query.append_pair("login_hint", hint);
            }
        }
        Ok(ConsentRequest {
            state,
            code_verifier,
            url: url.into(),
            expires_at: now_epoch().saturating_add(ttl_secs),
        })
    }
}

/// `n` random bytes, base64url without padding.
fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7636 S256: base64url(SHA-256(verifier)), no padding.
pub fn code_challenge(verifier: &Sensitive) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose().as_bytes()))
}

/// A state as sent back by Google: 22 base64url characters (128 bits). Anything else cannot be
/// ours, and is refused before it reaches the table.
pub fn is_well_formed_state(state: &str) -> bool {
    state.len() == 22
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The pending consent requests in the control table.
#[derive(Clone)]
pub struct ConsentStore {
    control: Arc<dyn Table>,
}

impl ConsentStore {
    pub fn new(control: Arc<dyn Table>) -> Self {
        ConsentStore { control }
    }

    fn key(state: &str) -> ItemKey {
        ItemKey::new(format!("oauth#consent#{state}"), SORT_KEY)
    }

    fn latest_key(account: &str) -> ItemKey {
        ItemKey::new(format!("oauth#consent-latest#{account}"), SORT_KEY)
    }

    /// Parks `request` for `account`; the TTL makes it disappear when unused.
    pub async fn park(
        &self,
        request: &ConsentRequest,
        account: &str,
        task_token: Option<&Sensitive>,
        redirect_uri: &str,
    ) -> Result<(), GmailError> {
        let mut item = Self::key(&request.state).to_item();
        item.insert("account".into(), AttrValue::S(account.into()));
        if let Some(token) = task_token {
            item.insert("task_token".into(), AttrValue::S(token.expose().into()));
        }
        item.insert(
            "code_verifier".into(),
            AttrValue::S(request.code_verifier.expose().into()),
        );
        item.insert("redirect_uri".into(), AttrValue::S(redirect_uri.into()));
        item.insert("created_at".into(), AttrValue::N(now_epoch().to_string()));
        item.insert("expires_at".into(), AttrValue::N(request.expires_at.to_string()));
        // A fresh 128-bit state never collides; IfAbsent makes sure of it.
        self.control.put(item, PutCondition::IfAbsent).await?;
        // The manual path gets back only a code: this says which request it answers.
        let mut latest = Self::latest_key(account).to_item();
        latest.insert("state".into(), AttrValue::S(request.state.clone()));
        latest.insert("expires_at".into(), AttrValue::N(request.expires_at.to_string()));
        self.control.put(latest, PutCondition::Always).await?;
        Ok(())
    }

    /// The state of the account's most recent consent request, if it has not expired.
    pub async fn latest_state(&self, account: &str) -> Result<Option<String>, GmailError> {
        let item = self.control.get(&Self::latest_key(account)).await?;
        Ok(item.and_then(|i| i.get("state").and_then(AttrValue::as_str).map(str::to_string)))
    }

    /// Claims `state` exactly once. `Ok(None)`: unknown, already claimed, or expired.
    pub async fn claim(&self, state: &str) -> Result<Option<PendingConsent>, GmailError> {
        if !is_well_formed_state(state) {
            return Ok(None);
        }
        match self
            .control
            .delete(&Self::key(state), DeleteCondition::IfExists { now: now_epoch() })
            .await
        {
            Ok(Some(item)) => parse_pending(&item).map(Some),
            Ok(None) | Err(BackendError::ConditionFailed { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// After a failed claim: removes an expired request and returns its task token, so the
    /// waiting task can be failed rather than left to time out. `None` for unknown or used states.
    pub async fn take_expired(&self, state: &str) -> Result<Option<Sensitive>, GmailError> {
        if !is_well_formed_state(state) {
            return Ok(None);
        }
        match self.control.delete(&Self::key(state), DeleteCondition::Always).await {
            Ok(Some(item)) => Ok(item.get("task_token").and_then(AttrValue::as_str).map(Sensitive::new)),
            Ok(None) | Err(BackendError::NotFound { .. }) | Err(BackendError::ConditionFailed { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

fn parse_pending(item: &Item) -> Result<PendingConsent, GmailError> {
    let text = |name: &str| item.get(name).and_then(AttrValue::as_str).map(str::to_string);
    let corrupt = |what: &str| {
        GmailError::Backend(BackendError::Corrupt {
            location: "a pending consent request".into(),
            reason: format!("{what} is missing"),
        })
    };
    Ok(PendingConsent {
        account: text("account").ok_or_else(|| corrupt("account"))?,
        task_token: text("task_token").map(Sensitive::new),
        code_verifier: Sensitive::new(text("code_verifier").ok_or_else(|| corrupt("code_verifier"))?),
        redirect_uri: text("redirect_uri").ok_or_else(|| corrupt("redirect_uri"))?,
        expires_at: item.get("expires_at").and_then(AttrValue::as_i64).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> ConsentUrlParts<'static> {
        ConsentUrlParts {
            auth_uri: "https://accounts.google.com/o/oauth2/v2/auth",
            client_id: "client-1.apps.googleusercontent.com",
            redirect_uri: "https://api.example.com/oauth/callback",
            scopes: &["https://www.googleapis.com/auth/gmail.readonly"],
            login_hint: None,
        }
    }

    #[test]
    fn pkce_challenge_matches_the_rfc_7636_example() {
        let verifier = Sensitive::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(code_challenge(&verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn consent_url_asks_for_offline_readonly_access_with_s256() {
        let request = ConsentRequest::new(&parts(), 600).unwrap();
        let url = Url::parse(&request.url).unwrap();
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["scope"], "https://www.googleapis.com/auth/gmail.readonly");
        assert_eq!(query["access_type"], "offline");
        assert_eq!(query["prompt"], "consent");
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["code_challenge"], code_challenge(&request.code_verifier));
        assert_eq!(query["state"], request.state);
        assert!(is_well_formed_state(&request.state));
        assert!(!request.url.contains(request.code_verifier.expose()));
        assert!(request.code_verifier.expose().len() >= 43);
    }

    #[test]
    fn states_are_unique_and_malformed_ones_are_refused() {
        let a = ConsentRequest::new(&parts(), 60).unwrap();
        let b = ConsentRequest::new(&parts(), 60).unwrap();
        assert_ne!(a.state, b.state);
        for bad in [
            "",
            "short",
            "../../../../../../etc/pa",
            "aaaaaaaaaaaaaaaaaaaaa#",
            &"a".repeat(200),
        ] {
            assert!(!is_well_formed_state(bad), "{bad:?}");
        }
    }
}
