//! The DetectPiiEntities adapter: packs a batch, sends the requests (a few at a time), retries
//! throttling and server errors with backoff, maps the answers back to cells and merges them.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_comprehend::Client;
use aws_sdk_comprehend::config::retry::RetryConfig;
use aws_sdk_comprehend::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_comprehend::types::LanguageCode;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sluice_core::config::AwsSettings;
use sluice_core::retry::Backoff;

use super::packing::{self, PackedRequest, PackingLimits};
use crate::detector::{Cell, DetectError, Detector, declared_entities};
use crate::entity::{EntityType, PiiEntity};

/// The `[pii.comprehend]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComprehendSettings {
    /// Comprehend's endpoint, when it differs from `[aws] endpoint_url` (a test server).
    pub endpoint_url: Option<String>,
    pub language_code: String,
    /// UTF-8 bytes per request; Comprehend accepts 100 KB.
    pub max_request_bytes: usize,
    /// Bytes shared by consecutive segments of a cell longer than one request.
    pub overlap_bytes: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Attempts per request when throttled or on a server error.
    pub max_attempts: u32,
    /// Ask ContainsPiiEntities first and skip DetectPiiEntities for requests with no PII.
    pub prefilter: bool,
}

impl Default for ComprehendSettings {
    fn default() -> Self {
        let limits = PackingLimits::default();
        ComprehendSettings {
            endpoint_url: None,
            language_code: "en".into(),
            max_request_bytes: limits.max_request_bytes,
            overlap_bytes: limits.overlap_bytes,
            concurrency: 4,
            max_attempts: 8,
            prefilter: false,
        }
    }
}

/// What the adapter sent, for cost reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComprehendUsage {
    pub detect_requests: u64,
    pub contains_requests: u64,
    /// Characters sent (code points), separators included.
    pub characters: u64,
    /// Units billed: 100 characters each, at least 3 per request.
    pub billed_units: u64,
    pub retries: u64,
}

#[derive(Default)]
struct UsageCounters {
    detect_requests: AtomicU64,
    contains_requests: AtomicU64,
    characters: AtomicU64,
    billed_units: AtomicU64,
    retries: AtomicU64,
}

/// Amazon Comprehend's DetectPiiEntities as a [`Detector`].
pub struct ComprehendDetector {
    client: Client,
    settings: ComprehendSettings,
    backoff: Backoff,
    usage: UsageCounters,
}

enum Attempt<T> {
    Done(T),
    Retry(String),
}

impl ComprehendDetector {
    /// A detector over an existing client. The client should not retry by itself (this adapter
    /// retries with its own backoff and counts what it sends).
    pub fn new(client: Client, settings: ComprehendSettings) -> Self {
        let backoff = Backoff {
            max_attempts: settings.max_attempts.max(1),
            ..Backoff::default()
        };
        ComprehendDetector {
            client,
            settings,
            backoff,
            usage: UsageCounters::default(),
        }
    }

    /// A client from the `[aws]` settings, at `settings.endpoint_url` when set.
    pub async fn from_aws_settings(aws: &AwsSettings, settings: ComprehendSettings) -> Self {
        let sdk = sluice_core::aws::sdk_config(aws).await;
        let mut builder = aws_sdk_comprehend::config::Builder::from(&sdk).retry_config(RetryConfig::disabled());
        if let Some(url) = &settings.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        Self::new(Client::from_conf(builder.build()), settings)
    }

    /// Overrides the backoff (tests use short delays).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn usage(&self) -> ComprehendUsage {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ComprehendUsage {
            detect_requests: load(&self.usage.detect_requests),
            contains_requests: load(&self.usage.contains_requests),
            characters: load(&self.usage.characters),
            billed_units: load(&self.usage.billed_units),
            retries: load(&self.usage.retries),
        }
    }

    fn limits(&self) -> PackingLimits {
        PackingLimits {
            max_request_bytes: self.settings.max_request_bytes,
            overlap_bytes: self.settings.overlap_bytes,
        }
    }

    async fn entities_of(&self, request: &PackedRequest) -> Result<Vec<(usize, PiiEntity)>, DetectError> {
        if self.settings.prefilter && !self.contains_pii(request).await? {
            return Ok(Vec::new());
        }
        let entities = self.detect_request(request).await?;
        Ok(request.map_back(&entities))
    }

    /// Runs `call` until it succeeds, fails for good, or runs out of attempts.
    async fn with_retries<T, F, Fut>(&self, operation: &'static str, mut call: F) -> Result<T, DetectError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Attempt<T>, DetectError>>,
    {
        for attempt in 0..self.backoff.max_attempts {
            if attempt > 0 {
                self.usage.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(self.backoff.delay(attempt - 1)).await;
            }
            match call().await? {
                Attempt::Done(value) => return Ok(value),
                Attempt::Retry(reason) => {
                    tracing::warn!(operation, attempt, reason = %reason, "Comprehend call will be retried");
                }
            }
        }
        Err(DetectError::Throttled {
            operation,
            attempts: self.backoff.max_attempts,
        })
    }

    fn count(&self, request: &PackedRequest, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.usage
            .characters
            .fetch_add(request.chars() as u64, Ordering::Relaxed);
        self.usage
            .billed_units
            .fetch_add(request.billing_units(), Ordering::Relaxed);
    }

    async fn detect_request(&self, request: &PackedRequest) -> Result<Vec<PiiEntity>, DetectError> {
        const OPERATION: &str = "DetectPiiEntities";
        let output = self
            .with_retries(OPERATION, || async {
                self.count(request, &self.usage.detect_requests);
                let sent = self
                    .client
                    .detect_pii_entities()
                    .text(&request.text)
                    .language_code(LanguageCode::from(self.settings.language_code.as_str()))
                    .send()
                    .await;
                match sent {
                    Ok(output) => Ok(Attempt::Done(output)),
                    Err(err) => classify(OPERATION, err),
                }
            })
            .await?;
        let invalid = |reason: String| DetectError::InvalidResponse {
            operation: OPERATION,
            reason,
        };
        let mut entities = Vec::with_capacity(output.entities().len());
        for entity in output.entities() {
            let (Some(kind), Some(score), Some(begin), Some(end)) = (
                entity.r#type(),
                entity.score(),
                entity.begin_offset(),
                entity.end_offset(),
            ) else {
                return Err(invalid("an entity lacks its type, score or offsets".into()));
            };
            let (begin, end) = (usize::try_from(begin), usize::try_from(end));
            let (Ok(begin), Ok(end)) = (begin, end) else {
                return Err(invalid("an entity has a negative offset".into()));
            };
            if begin >= end || end > request.chars() {
                return Err(invalid(format!(
                    "entity offsets {begin}..{end} do not fit a text of {} characters",
                    request.chars()
                )));
            }
            entities.push(PiiEntity::new(
                EntityType::from_comprehend(kind.as_str()),
                begin,
                end,
                score,
            ));
        }
        Ok(entities)
    }

    async fn contains_pii(&self, request: &PackedRequest) -> Result<bool, DetectError> {
        const OPERATION: &str = "ContainsPiiEntities";
        let output = self
            .with_retries(OPERATION, || async {
                self.count(request, &self.usage.contains_requests);
                let sent = self
                    .client
                    .contains_pii_entities()
                    .text(&request.text)
                    .language_code(LanguageCode::from(self.settings.language_code.as_str()))
                    .send()
                    .await;
                match sent {
                    Ok(output) => Ok(Attempt::Done(output)),
                    Err(err) => classify(OPERATION, err),
                }
            })
            .await?;
        Ok(!output.labels().is_empty())
    }
}

/// Throttling, server errors and transport failures are retried; anything else fails the batch.
fn classify<T, E>(operation: &'static str, err: SdkError<E>) -> Result<Attempt<T>, DetectError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    const RETRYABLE_CODES: &[&str] = &[
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "InternalServerException",
        "ServiceUnavailableException",
    ];
    let status = err.raw_response().map(|response| response.status().as_u16());
    let retryable = err.code().is_some_and(|code| RETRYABLE_CODES.contains(&code))
        || status.is_some_and(|s| s == 429 || s >= 500)
        || matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_));
    let message = match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(&err).to_string(),
    };
    if retryable {
        Ok(Attempt::Retry(message))
    } else {
        Err(DetectError::Service { operation, message })
    }
}

#[async_trait]
impl Detector for ComprehendDetector {
    fn engine(&self) -> &'static str {
        "comprehend"
    }

    fn fingerprint(&self) -> String {
        let settings = &self.settings;
        format!(
            "comprehend {} {} {} {}",
            settings.language_code, settings.max_request_bytes, settings.overlap_bytes, settings.prefilter
        )
    }

    async fn detect(&self, cells: &[Cell<'_>]) -> Result<Vec<Vec<PiiEntity>>, DetectError> {
        let texts: Vec<&str> = cells.iter().map(|c| c.text).collect();
        let requests = packing::pack(&texts, &self.limits());
        let calls: Vec<_> = requests.iter().map(|r| self.entities_of(r)).collect();
        let mapped: Vec<Vec<(usize, PiiEntity)>> = futures::stream::iter(calls)
            .buffered(self.settings.concurrency.max(1))
            .try_collect()
            .await?;
        let mut mapped: Vec<(usize, PiiEntity)> = mapped.into_iter().flatten().collect();
        for (index, cell) in cells.iter().enumerate() {
            mapped.extend(declared_entities(cell).into_iter().map(|e| (index, e)));
        }
        Ok(packing::merge_per_cell(&texts, mapped))
    }
}
