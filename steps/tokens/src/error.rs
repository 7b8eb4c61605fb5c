//! What the tokens stage can fail with, each with a stable Step Functions error name.

use sluice_core::{BackendError, ConfigError, StepError};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("[tokens] settings are invalid: {field} {message}")]
    Settings { field: String, message: String },
    #[error("dataset {dataset:?} has no consumers configured under [tokens.consumers.{dataset}]")]
    UnknownDataset { dataset: String },
    #[error("another run is issuing keys for consumer {consumer} of dataset {dataset}; retry shortly")]
    Busy { dataset: String, consumer: String },
    #[error("stored API key record {location} is corrupt: {reason}")]
    Corrupt { location: String, reason: String },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl StepError for TokenError {
    fn error_name(&self) -> &'static str {
        match self {
            TokenError::Config(_) | TokenError::Settings { .. } => "Config.Invalid",
            TokenError::UnknownDataset { .. } => "Tokens.UnknownDataset",
            TokenError::Busy { .. } => "Tokens.Busy",
            TokenError::Corrupt { .. } => "Tokens.Corrupt",
            TokenError::Backend(err) => err.error_name(),
        }
    }
}
