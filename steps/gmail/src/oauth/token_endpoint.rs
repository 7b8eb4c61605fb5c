//! Google's token endpoint (`token_uri`, configurable for tests): the authorization-code
//! exchange with the PKCE verifier, and refresh. 5xx, 429 and network errors are retried with
//! backoff a bounded number of times; OAuth errors (`invalid_grant`, ...) are not.

use google_gmail1::hyper::header::{ACCEPT, CONTENT_TYPE};
use google_gmail1::hyper::{Method, Request, StatusCode};
use google_gmail1::yup_oauth2::error::AuthError;
use serde::Deserialize;

use super::{ClientCredentials, Sensitive};
use crate::error::GmailError;
use crate::http::{HttpClient, RetryPolicy, body_of, read_body, retry_after};

/// Token responses are small; anything bigger is not one.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What the token endpoint granted.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenGrant {
    pub access_token: Sensitive,
    /// Seconds from now.
    pub expires_in: i64,
    /// Absent on most refreshes: the old refresh token stays valid.
    pub refresh_token: Option<Sensitive>,
    /// Space-separated granted scopes.
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub token_type: String,
}

#[derive(Clone)]
pub struct TokenEndpoint {
    http: HttpClient,
    token_uri: String,
    retry: RetryPolicy,
}

impl TokenEndpoint {
    pub fn new(http: HttpClient, token_uri: impl Into<String>, retry: RetryPolicy) -> Self {
        TokenEndpoint {
            http,
            token_uri: token_uri.into(),
            retry,
        }
    }

    /// Exchanges an authorization code, proving possession of the PKCE verifier.
    pub async fn exchange_code(
        &self,
        client: &ClientCredentials,
        code: &Sensitive,
        code_verifier: &Sensitive,
        redirect_uri: &str,
    ) -> Result<TokenGrant, GmailError> {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code.expose())
            .append_pair("code_verifier", code_verifier.expose())
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("client_id", &client.client_id)
            .append_pair("client_secret", client.client_secret.expose())
            .finish();
        self.post("code exchange", form).await
    }

    /// A fresh access token from a refresh token.
    pub async fn refresh(
        &self,
        client: &ClientCredentials,
        refresh_token: &Sensitive,
    ) -> Result<TokenGrant, GmailError> {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", refresh_token.expose())
            .append_pair("client_id", &client.client_id)
            .append_pair("client_secret", client.client_secret.expose())
            .finish();
        self.post("token refresh", form).await
    }

    async fn post(&self, operation: &'static str, form: String) -> Result<TokenGrant, GmailError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = Request::builder()
                .method(Method::POST)
                .uri(&self.token_uri)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(ACCEPT, "application/json")
                .body(body_of(form.clone()))
                .map_err(|err| GmailError::Settings {
                    field: "gmail.token_uri".into(),
                    message: format!("cannot address it: {err}"),
                })?;
            let (detail, wait_hint) = match self.http.request(request).await {
                Err(err) => (format!("network error: {err}"), None),
                Ok(response) => {
                    let status = response.status();
                    let hint = retry_after(response.headers());
                    let body = read_body(response.into_body(), MAX_RESPONSE_BYTES).await;
                    if status.is_success() {
                        let body = body.map_err(|reason| GmailError::TokenEndpointResponse { operation, reason })?;
                        return parse_grant(operation, &body);
                    }
                    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                        (format!("HTTP {}", status.as_u16()), hint)
                    } else {
                        return Err(rejection(operation, status, body.ok().as_deref()));
                    }
                }
            };
            match self.retry.next_delay(attempt, wait_hint) {
                Some(delay) => {
                    tracing::warn!(operation, attempt, %detail, "token endpoint failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                None => {
                    return Err(GmailError::TokenEndpointUnavailable {
                        operation,
                        attempts: attempt,
                        detail,
                    });
                }
            }
        }
    }
}

fn parse_grant(operation: &'static str, body: &[u8]) -> Result<TokenGrant, GmailError> {
    let grant: TokenGrant = serde_json::from_slice(body).map_err(|err| GmailError::TokenEndpointResponse {
        operation,
        // serde's message names the field and position, never the value.
        reason: format!("not a token response: {}", err.classify_message()),
    })?;
    if grant.access_token.expose().is_empty() {
        return Err(GmailError::TokenEndpointResponse {
            operation,
            reason: "the access_token is empty".into(),
        });
    }
    if grant.expires_in <= 0 {
        return Err(GmailError::TokenEndpointResponse {
            operation,
            reason: format!("expires_in is {}", grant.expires_in),
        });
    }
    Ok(grant)
}

/// A 4xx: the OAuth error code (RFC 6749 section 5.2), never the description, which could
/// echo what we sent.
fn rejection(operation: &'static str, status: StatusCode, body: Option<&[u8]>) -> GmailError {
    match body.and_then(|b| serde_json::from_slice::<AuthError>(b).ok()) {
        Some(auth_error) => GmailError::TokenRejected {
            operation,
            code: auth_error.error.as_str().chars().take(64).collect(),
        },
        None => GmailError::TokenEndpointResponse {
            operation,
            reason: format!("HTTP {} without an OAuth error body", status.as_u16()),
        },
    }
}

trait ClassifyMessage {
    fn classify_message(&self) -> String;
}

impl ClassifyMessage for serde_json::Error {
    fn classify_message(&self) -> String {
        format!(
            "{:?} error at line {} column {}",
            self.classify(),
            self.line(),
            self.column()
        )
    }
}

impl GmailError {
    /// Whether this is the token endpoint saying the grant is dead (revoked, expired, reused).
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, GmailError::TokenRejected { code, .. } if code == "invalid_grant")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_and_refresh_tokens_are_optional() {
        let grant = parse_grant(
            "t",
            br#"{"access_token":"ya29.x","expires_in":3599,"scope":"a b","token_type":"Bearer"}"#,
        )
        .unwrap();
        assert!(grant.refresh_token.is_none());
        assert_eq!(grant.expires_in, 3599);
        assert!(!format!("{grant:?}").contains("ya29"));
    }

    #[test]
    fn malformed_grants_are_errors_that_do_not_echo_the_body() {
        for body in [
            &br#"{"access_token":"SECRETX"}"#[..],
            br#"{"access_token":"SECRETX","expires_in":0}"#,
            br#"{"access_token":"","expires_in":10}"#,
            b"<html>",
        ] {
            let err = parse_grant("refresh", body).unwrap_err();
            assert!(!err.to_string().contains("SECRETX"), "{err}");
            assert_eq!(
                sluice_core::StepError::error_name(&err),
                "Auth.TokenEndpointInvalidResponse"
            );
        }
    }

    #[test]
    fn oauth_errors_keep_only_the_code() {
        let err = rejection(
            "refresh",
            StatusCode::BAD_REQUEST,
            Some(br#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#),
        );
        assert!(err.is_invalid_grant());
        assert!(!err.to_string().contains("revoked"));
        let other = rejection(
            "refresh",
            StatusCode::UNAUTHORIZED,
            Some(br#"{"error":"invalid_client"}"#),
        );
        assert!(!other.is_invalid_grant());
        assert_eq!(sluice_core::StepError::error_name(&other), "Auth.TokenRejected");
    }
}
