//! The PII stages' errors and their stable Step Functions names.

use sluice_core::{BackendError, ConfigError, StepError};

use crate::detector::DetectError;
use crate::policy::PolicyError;
use crate::transform::MissingTokenizer;
use crate::vault::VaultError;

/// Why a PII step failed. Messages name keys, lines, columns and types, never cell values.
#[derive(Debug, thiserror::Error)]
pub enum PiiError {
    #[error("invalid step input: {field} {reason}")]
    InvalidInput { field: &'static str, reason: String },
    #[error("invalid setting {field}: {reason}")]
    InvalidSetting { field: &'static str, reason: String },
    #[error(transparent)]
    Config(ConfigError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("{key}: not a readable CSV at line {line}: {reason}")]
    InvalidCsv { key: String, line: u64, reason: String },
    #[error("PII detection failed for {key}: {source}")]
    Detection {
        key: String,
        #[source]
        source: DetectError,
    },
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{operation} failed: {source}")]
    Io {
        operation: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    MissingTokenizer(#[from] MissingTokenizer),
}

impl StepError for PiiError {
    fn error_name(&self) -> &'static str {
        match self {
            PiiError::InvalidInput { .. } => "Pii.InvalidInput",
            PiiError::InvalidSetting { .. } | PiiError::Config(_) => "Config.Invalid",
            PiiError::Policy(_) => "Pii.InvalidPolicy",
            PiiError::InvalidCsv { .. } => "Pii.InvalidCsv",
            PiiError::Detection {
                source: DetectError::Throttled { .. },
                ..
            } => "Pii.Throttled",
            PiiError::Detection { .. } => "Pii.DetectionFailed",
            PiiError::Vault(VaultError::Backend { source, .. }) => source.error_name(),
            PiiError::Vault(_) => "Pii.VaultFailed",
            PiiError::Backend(err) => err.error_name(),
            PiiError::Io { .. } => "Pii.Storage",
            PiiError::MissingTokenizer(_) => "Pii.InvalidPolicy",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_other_detection_failures_have_distinct_names() {
        let throttled = PiiError::Detection {
            key: "staged/a.csv".into(),
            source: DetectError::Throttled {
                operation: "DetectPiiEntities",
                attempts: 8,
            },
        };
        assert_eq!(throttled.error_name(), "Pii.Throttled");
        let failed = PiiError::Detection {
            key: "staged/a.csv".into(),
            source: DetectError::Service {
                operation: "DetectPiiEntities",
                message: "TextSizeLimitExceededException".into(),
            },
        };
        assert_eq!(failed.error_name(), "Pii.DetectionFailed");
        let diagnostic: lambda_runtime::Diagnostic = sluice_core::StepFailure::from(failed).into();
        assert_eq!(diagnostic.error_type, "Pii.DetectionFailed");
        assert!(diagnostic.error_message.contains("staged/a.csv"));
    }
}
