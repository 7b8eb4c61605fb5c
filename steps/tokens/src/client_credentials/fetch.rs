//! One token request (RFC 6749 section 4.4) and its retries.

use std::time::Duration;

use chrono::Utc;
use serde::Deserialize;
use sluice_core::SecretValue;

use super::{AccessToken, ClientAuthMethod, ClientCredentialsSettings, CredentialsError};

/// Used when the server leaves out `expires_in` (it is only RECOMMENDED): short, to be safe.
const DEFAULT_EXPIRES_IN: i64 = 300;

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default = "bearer")]
    token_type: String,
    expires_in: Option<i64>,
}

fn bearer() -> String {
    "Bearer".into()
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
}

enum Attempt {
    Done(AccessToken),
    Retryable(String),
    Fatal(CredentialsError),
}

pub(super) async fn fetch_with_retries(
    http: &reqwest::Client,
    client: &str,
    settings: &ClientCredentialsSettings,
    secret: &SecretValue,
) -> Result<AccessToken, CredentialsError> {
    let attempts = settings.retries.saturating_add(1);
    let mut last = String::new();
    for attempt in 1..=attempts {
        match fetch_once(http, client, settings, secret).await {
            Attempt::Done(token) => return Ok(token),
            Attempt::Fatal(err) => return Err(err),
            Attempt::Retryable(reason) => {
                tracing::warn!(client, attempt, attempts, reason = %reason, "token request failed");
                last = reason;
            }
        }
        if attempt < attempts {
            tokio::time::sleep(Duration::from_millis(settings.retry_interval_ms)).await;
        }
    }
    Err(CredentialsError::Unavailable {
        client: client.to_string(),
        attempts,
        last,
    })
}

async fn fetch_once(
    http: &reqwest::Client,
    client: &str,
    settings: &ClientCredentialsSettings,
    secret: &SecretValue,
) -> Attempt {
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
    if let Some(scope) = &settings.scope {
        form.push(("scope", scope));
    }
    if let Some(audience) = &settings.audience {
        form.push(("audience", audience));
    }
    let mut request = http.post(&settings.token_url).header("accept", "application/json");
    match settings.auth_method {
        ClientAuthMethod::Basic => {
            // RFC 6749 2.3.1: id and secret are form-encoded before Basic encoding.
            request = request.basic_auth(form_encode(&settings.client_id), Some(form_encode(secret.expose())));
        }
        ClientAuthMethod::Post => {
            form.push(("client_id", &settings.client_id));
            form.push(("client_secret", secret.expose()));
        }
    }
    let response = match request.form(&form).send().await {
        Ok(response) => response,
        // Connection errors and timeouts; the message never holds the form body.
        Err(err) => return Attempt::Retryable(describe(&err)),
    };
    let status = response.status();
    if status.is_server_error() || status.as_u16() == 429 {
        return Attempt::Retryable(format!("HTTP {}", status.as_u16()));
    }
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(err) => return Attempt::Retryable(describe(&err)),
    };
    if !status.is_success() {
        let oauth_error = serde_json::from_slice::<ErrorResponse>(&body)
            .ok()
            .map(|e| e.error)
            .filter(|e| e.len() <= 64 && e.bytes().all(|b| b.is_ascii_graphic()));
        return Attempt::Fatal(CredentialsError::Rejected {
            client: client.to_string(),
            status: status.as_u16(),
            oauth_error,
        });
    }
    let invalid = |reason: &str| {
        Attempt::Fatal(CredentialsError::InvalidResponse {
            client: client.to_string(),
            reason: reason.to_string(),
        })
    };
    let parsed: TokenResponse = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(_) => return invalid("the body is not JSON with an access_token"),
    };
    if parsed.access_token.is_empty() {
        return invalid("access_token is empty");
    }
    if !parsed.token_type.eq_ignore_ascii_case("bearer") {
        return invalid("token_type is not Bearer");
    }
    let expires_in = parsed.expires_in.unwrap_or(DEFAULT_EXPIRES_IN);
    if expires_in <= 0 {
        return invalid("expires_in is not positive");
    }
    Attempt::Done(AccessToken {
        secret: SecretValue::new(parsed.access_token),
        token_type: parsed.token_type,
        // Whole seconds, as the shared cache stores it, so every process sees the same token.
        expires_at: chrono::DateTime::from_timestamp(Utc::now().timestamp().saturating_add(expires_in), 0)
            .unwrap_or_else(|| Utc::now() + chrono::Duration::seconds(DEFAULT_EXPIRES_IN)),
    })
}

fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".into()
    } else if err.is_connect() {
        "could not connect".into()
    } else {
        "the request failed".into()
    }
}

/// application/x-www-form-urlencoded, as RFC 6749 asks for Basic credentials.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(char::from(byte)),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::form_encode;

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        assert_eq!(form_encode("abc-1.2_3"), "abc-1.2_3");
        assert_eq!(form_encode("a b:c/%"), "a+b%3Ac%2F%25");
    }
}
