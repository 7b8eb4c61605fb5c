//! The HTTPS client shared by the Gmail hub and the token endpoint (the hyper stack that
//! google-gmail1 re-exports, rustls on aws-lc-rs), and the retry rules both follow.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use google_gmail1::common;
use google_gmail1::hyper::header::{HeaderMap, RETRY_AFTER};
use google_gmail1::hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use google_gmail1::hyper_util::client::legacy::Client;
use google_gmail1::hyper_util::client::legacy::connect::HttpConnector;
use google_gmail1::hyper_util::rt::TokioExecutor;
use http_body_util::BodyExt;
use sluice_core::retry::Backoff;

use crate::error::GmailError;
use crate::settings::GmailSettings;

/// The client type google-gmail1's hub takes.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, common::Body>;

/// An HTTPS client (plain HTTP is allowed too: settings only let it reach loopback).
pub fn https_client() -> Result<HttpClient, GmailError> {
    let connector = HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .map_err(|err| GmailError::Tls {
            message: format!("cannot load the system's root certificates: {err}"),
        })?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector))
}

/// A request body from bytes.
pub(crate) fn body_of(bytes: impl Into<Bytes>) -> common::Body {
    common::Body::new(http_body_util::Full::new(bytes.into()).map_err(|never| match never {}))
}

/// Reads a response body, refusing more than `limit` bytes.
pub(crate) async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, String>
where
    B: google_gmail1::hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|err| err.to_string())
}

/// When to try a failing call again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// A `Retry-After` longer than this fails the call instead of sleeping in the Lambda.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    pub fn from_settings(settings: &GmailSettings) -> Self {
        RetryPolicy {
            max_attempts: settings.max_attempts,
            backoff: Backoff {
                base: Duration::from_millis(200),
                cap: Duration::from_secs(10),
                max_attempts: settings.max_attempts,
            },
            max_retry_after: Duration::from_secs(settings.max_retry_after_secs),
        }
    }

    /// The wait before the next attempt after failed attempt number `attempt` (1-based), or
    /// `None` when the call should give up: attempts are used up, or the server asked for a
    /// longer pause than we are willing to sleep through.
    pub fn next_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let jittered = self.backoff.delay(attempt.saturating_sub(1));
        match retry_after {
            Some(asked) if asked > self.max_retry_after => None,
            Some(asked) => Some(asked.max(jittered.min(asked + Duration::from_millis(250)))),
            None => Some(jittered),
        }
    }
}

/// `Retry-After` in seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_gmail1::hyper::header::HeaderValue;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            backoff: Backoff {
                base: Duration::from_millis(10),
                cap: Duration::from_millis(40),
                max_attempts: 3,
            },
            max_retry_after: Duration::from_secs(5),
        }
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn the_server_s_retry_after_is_honoured_and_attempts_are_bounded() {
        let policy = policy();
        let asked = Duration::from_secs(2);
        let delay = policy.next_delay(1, Some(asked)).unwrap();
        assert!(
            delay >= asked && delay <= asked + Duration::from_millis(250),
            "{delay:?}"
        );
        assert!(policy.next_delay(2, None).unwrap() <= Duration::from_millis(20));
        assert_eq!(policy.next_delay(3, None), None, "three attempts, then give up");
        assert_eq!(policy.next_delay(1, Some(Duration::from_secs(60))), None);
    }
}
