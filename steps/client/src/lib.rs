//! A consumer's client for Sluice's records API.
//!
//! Its token comes from [`ClientCredentials`] (the OAuth2 client-credentials grant against the
//! consumer's identity provider, Cognito on AWS): cached in memory and, encrypted, in the
//! control table, fetched by one caller at a time across processes. A request answered 401 gets
//! one fresh token and is sent once more; 429, 5xx and connection failures are retried with
//! jittered backoff. Every other refusal is the API's own error, code and message.
//!
//! ```no_run
//! # async fn example(credentials: sluice_tokens::client_credentials::ClientCredentials) -> Result<(), sluice_client::ClientError> {
//! let client = sluice_client::SluiceClient::new("https://api.example.com", credentials)?;
//! let record = client.get_record("customers", "C-101").await?;
//! # Ok(()) }
//! ```

#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;
use sluice_core::retry::Backoff;
use sluice_tokens::client_credentials::{ClientCredentials, CredentialsError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the API base URL {url:?} is not an http(s) URL")]
    BaseUrl { url: String },
    #[error(transparent)]
    Token(#[from] CredentialsError),
    /// The API refused the request: its status and the error envelope's code and message.
    #[error("the API answered {status} {code}: {message}")]
    Api { status: u16, code: String, message: String },
    #[error("the API did not answer after {attempts} attempt(s): {last}")]
    Unavailable { attempts: u32, last: String },
    #[error("the API answered something that is not the documented JSON ({status}): {reason}")]
    InvalidResponse { status: u16, reason: String },
}

/// `POST .../records:batchGet`'s answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BatchGet {
    pub records: Vec<Value>,
    pub missing: Vec<String>,
}

/// One page of `GET .../records`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Page {
    pub records: Vec<Value>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: EnvelopeError,
}

#[derive(Deserialize)]
struct EnvelopeError {
    code: String,
    message: String,
}

pub struct SluiceClient {
    base: Url,
    http: reqwest::Client,
    credentials: Arc<ClientCredentials>,
    backoff: Backoff,
}

impl SluiceClient {
    pub fn new(base_url: &str, credentials: ClientCredentials) -> Result<SluiceClient, ClientError> {
        Self::shared(base_url, Arc::new(credentials))
    }

    /// With credentials other clients share (one token cache and single flight for all).
    pub fn shared(base_url: &str, credentials: Arc<ClientCredentials>) -> Result<SluiceClient, ClientError> {
        let bad = || ClientError::BaseUrl {
            url: base_url.to_string(),
        };
        let base = Url::parse(base_url).map_err(|_| bad())?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad());
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|err| ClientError::Unavailable {
                attempts: 0,
                last: err.to_string(),
            })?;
        Ok(SluiceClient {
            base,
            http,
            credentials,
            backoff: Backoff {
                max_attempts: 4,
                ..Backoff::default()
            },
        })
    }

    /// Retries of 429, 5xx and connection failures (jittered, growing waits).
    pub fn with_backoff(mut self, backoff: Backoff) -> SluiceClient {
        self.backoff = backoff;
        self
    }

    /// One record, or `None` when the API answers 404 (a missing record, or a dataset this
    /// client may not read: the API does not tell them apart).
    pub async fn get_record(&self, dataset: &str, id: &str) -> Result<Option<Value>, ClientError> {
        let url = self.url(&["datasets", dataset, "records", id]);
        self.json_or_none(Method::GET, url, None).await
    }

    /// One record with its tokens restored (needs `records:reidentify`).
    pub async fn get_reidentified_record(&self, dataset: &str, id: &str) -> Result<Option<Value>, ClientError> {
        let url = self.url(&["datasets", dataset, "records", id, "reidentified"]);
        self.json_or_none(Method::GET, url, None).await
    }

    /// Up to 100 records by id.
    pub async fn batch_get(&self, dataset: &str, ids: &[&str]) -> Result<BatchGet, ClientError> {
        let url = self.url(&["datasets", dataset, "records:batchGet"]);
        let body = serde_json::json!({ "ids": ids });
        let (status, value) = self.send(Method::POST, url, Some(body)).await?;
        parse(status, value)
    }

    /// A page of records after `cursor` (`next_cursor` of the previous page).
    pub async fn list_records(
        &self,
        dataset: &str,
        limit: Option<usize>,
        cursor: Option<&str>,
    ) -> Result<Page, ClientError> {
        let mut url = self.url(&["datasets", dataset, "records"]);
        {
            let mut query = url.query_pairs_mut();
            if let Some(limit) = limit {
                query.append_pair("limit", &limit.to_string());
            }
            if let Some(cursor) = cursor {
                query.append_pair("cursor", cursor);
            }
        }
        let (status, value) = self.send(Method::GET, url, None).await?;
        parse(status, value)
    }

    /// The base URL with `segments` appended, each percent-encoded (an id may hold `/` or `?`).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url.set_query(None);
        url
    }

    async fn json_or_none(&self, method: Method, url: Url, body: Option<Value>) -> Result<Option<Value>, ClientError> {
        match self.send(method, url, body).await {
            Ok((_, value)) => Ok(Some(value)),
            Err(ClientError::Api { status: 404, .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Sends with a bearer token: one fresh token after a 401, retries for what may pass.
    async fn send(&self, method: Method, url: Url, body: Option<Value>) -> Result<(StatusCode, Value), ClientError> {
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.credentials.token().await?;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(reqwest::header::AUTHORIZATION, token.authorization());
            if let Some(body) = &body {
                request = request.json(body);
            }
            let last = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    if status == StatusCode::UNAUTHORIZED && !refreshed {
                        // Revoked or rotated early: drop the cached token and ask for another.
                        refreshed = true;
                        self.credentials.invalidate().await?;
                        attempt -= 1;
                        continue;
                    }
                    let bytes = response.bytes().await.map_err(|err| ClientError::Unavailable {
                        attempts: attempt,
                        last: err.to_string(),
                    })?;
                    if status.is_success() {
                        let value = serde_json::from_slice(&bytes).map_err(|err| ClientError::InvalidResponse {
                            status: status.as_u16(),
                            reason: err.to_string(),
                        })?;
                        return Ok((status, value));
                    }
                    let refusal = api_error(status, &bytes);
                    if !(status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()) {
                        return Err(refusal);
                    }
                    refusal.to_string()
                }
                Err(err) => err.to_string(),
            };
            if attempt > self.backoff.max_attempts {
                return Err(ClientError::Unavailable {
                    attempts: attempt,
                    last,
                });
            }
            tracing::debug!(attempt, %last, "retrying an API request");
            tokio::time::sleep(self.backoff.delay(attempt - 1)).await;
        }
    }
}

fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<Envelope>(body) {
        Ok(envelope) => ClientError::Api {
            status: status.as_u16(),
            code: envelope.error.code,
            message: envelope.error.message,
        },
        Err(err) => ClientError::InvalidResponse {
            status: status.as_u16(),
            reason: format!("not the error envelope: {err}"),
        },
    }
}

fn parse<T: serde::de::DeserializeOwned>(status: StatusCode, value: Value) -> Result<T, ClientError> {
    serde_json::from_value(value).map_err(|err| ClientError::InvalidResponse {
        status: status.as_u16(),
        reason: err.to_string(),
    })
}
