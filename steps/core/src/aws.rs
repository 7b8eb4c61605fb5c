//! Shared AWS SDK setup: one `SdkConfig` (region, endpoint override) for every client, and one
//! mapping from SDK errors to [`BackendError`].

use aws_config::meta::region::RegionProviderChain;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::BackendError;
use crate::config::AwsSettings;

/// The SDK configuration every Sluice AWS client is built from. `endpoint_url`, when set,
/// sends every client to an emulator; the region falls back to `us-east-1`.
pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let region = RegionProviderChain::first_try(settings.region.clone().map(Region::new))
        .or_default_provider()
        .or_else(Region::new("us-east-1"));
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region);
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The Step Functions client: at `step_functions_endpoint_url` when one is set, else where every
/// other client goes.
pub fn step_functions_client(sdk: &SdkConfig, settings: &AwsSettings) -> aws_sdk_sfn::Client {
    let mut config = aws_sdk_sfn::config::Builder::from(sdk);
    if let Some(url) = &settings.step_functions_endpoint_url {
        config = config.endpoint_url(url);
    }
    aws_sdk_sfn::Client::from_conf(config.build())
}

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "SlowDown",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "TooManyRequestsException",
    "RequestThrottled",
];

/// Maps an SDK error: throttling and 5xx answers become [`BackendError::Throttled`] (retryable).
pub fn sdk_error<E, R>(service: &'static str, operation: &'static str, err: SdkError<E, R>) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let throttled = err.code().is_some_and(|code| THROTTLING_CODES.contains(&code))
        || matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_));
    let message = match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(&err).to_string(),
    };
    if throttled {
        BackendError::Throttled {
            service,
            operation,
            message,
        }
    } else {
        BackendError::Aws {
            service,
            operation,
            message,
        }
    }
}
