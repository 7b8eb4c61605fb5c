//! What the mail stages fail with. Messages name what went wrong and where, and never carry a
//! token, an authorization code, a task token or mail content.

use sluice_core::sealed::KeyringError;
use sluice_core::{BackendError, StepError};

#[derive(Debug, thiserror::Error)]
pub enum GmailError {
    #[error("setting {field} {message}")]
    Settings { field: String, message: String },

    #[error("input field {field} {message}")]
    InvalidInput { field: &'static str, message: String },

    #[error(
        "this run no longer holds mailbox {account}: {holder} took it over (the lease expired); this run stops so that two runs never race"
    )]
    LeaseLost { account: String, holder: String },

    #[error("OAuth client secret {name}: {reason}")]
    ClientSecret { name: String, reason: String },

    #[error("token cache key secret {name}: {reason}")]
    TokenKey { name: String, reason: String },

    #[error("the cached token of account {account} cannot be read: {reason}")]
    TokenCacheUnreadable { account: String, reason: String },

    #[error("account {account} has no usable Gmail token: consent is required")]
    ConsentRequired { account: String },

    #[error("the consent request is unknown, already used or expired")]
    InvalidState,

    #[error("consent was not given: {reason}")]
    ConsentDenied { reason: String },

    #[error("the token endpoint refused the {operation}: {code}")]
    TokenRejected { operation: &'static str, code: String },

    #[error("the token endpoint failed the {operation} {attempts} times: {detail}")]
    TokenEndpointUnavailable {
        operation: &'static str,
        attempts: u32,
        detail: String,
    },

    #[error("the token endpoint answered the {operation} with an unusable response: {reason}")]
    TokenEndpointResponse { operation: &'static str, reason: String },

    #[error("Gmail {operation} was rate limited {attempts} times in a row")]
    RateLimited { operation: &'static str, attempts: u32 },

    #[error("Gmail {operation} failed {attempts} times: {detail}")]
    GmailUnavailable {
        operation: &'static str,
        attempts: u32,
        detail: String,
    },

    #[error("Gmail refused {operation} with HTTP {status}")]
    GmailRejected { operation: &'static str, status: u16 },

    #[error("Gmail answered {operation} with an unusable response: {reason}")]
    GmailResponse { operation: &'static str, reason: String },

    #[error(
        "Gmail no longer has history from {start} (history ids expire after about a week): a full listing replaces it"
    )]
    HistoryExpired { start: u64 },

    #[error("this mail source keeps no history")]
    HistoryUnavailable,

    #[error("cannot read the mail directory {path}: {source}")]
    MailDir {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot set up HTTPS: {message}")]
    Tls { message: String },

    #[error("staging attachment {part_id} of message {message_id} failed: {source}")]
    Sink {
        message_id: String,
        part_id: String,
        #[source]
        source: SinkError,
    },

    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl StepError for GmailError {
    fn error_name(&self) -> &'static str {
        match self {
            GmailError::Settings { .. } | GmailError::Tls { .. } => "Config.Invalid",
            GmailError::InvalidInput { .. } => "Gmail.InvalidInput",
            GmailError::LeaseLost { .. } => "Run.LeaseLost",
            GmailError::ClientSecret { .. } => "Auth.ClientSecretInvalid",
            GmailError::TokenKey { .. } => "Auth.TokenKeyInvalid",
            GmailError::TokenCacheUnreadable { .. } => "Auth.TokenCacheCorrupt",
            GmailError::ConsentRequired { .. } => "Auth.ConsentRequired",
            GmailError::InvalidState => "Auth.InvalidState",
            GmailError::ConsentDenied { .. } => "Auth.ConsentDenied",
            GmailError::TokenRejected { .. } => "Auth.TokenRejected",
            GmailError::TokenEndpointUnavailable { .. } => "Auth.TokenEndpointUnavailable",
            GmailError::TokenEndpointResponse { .. } => "Auth.TokenEndpointInvalidResponse",
            GmailError::RateLimited { .. } => "Gmail.RateLimited",
            GmailError::GmailUnavailable { .. } => "Gmail.Unavailable",
            GmailError::GmailRejected { .. } => "Gmail.RequestRejected",
            GmailError::GmailResponse { .. } => "Gmail.InvalidResponse",
            GmailError::MailDir { .. } => "Gmail.MailDirUnreadable",
            GmailError::HistoryExpired { .. } => "Gmail.HistoryExpired",
            GmailError::HistoryUnavailable => "Gmail.HistoryUnavailable",
            GmailError::Sink { source, .. } => source.error_name,
            GmailError::Backend(inner) => inner.error_name(),
        }
    }
}

/// The token keyring's secret: unreadable is `Auth.TokenKeyInvalid`, the backend failing is the
/// backend's error.
impl From<KeyringError> for GmailError {
    fn from(err: KeyringError) -> GmailError {
        match err {
            KeyringError::Backend { source, .. } => GmailError::Backend(source),
            KeyringError::Invalid { name, reason } => GmailError::TokenKey { name, reason },
        }
    }
}

impl GmailError {
    pub(crate) fn input(field: &'static str, message: impl Into<String>) -> Self {
        GmailError::InvalidInput {
            field,
            message: message.into(),
        }
    }
}

/// A sink failure with the stage's own stable error name, so Retry/Catch still match it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error_name}: {message}")]
pub struct SinkError {
    pub error_name: &'static str,
    pub message: String,
}

impl SinkError {
    pub fn new(error_name: &'static str, message: impl Into<String>) -> Self {
        SinkError {
            error_name,
            message: message.into(),
        }
    }

    /// Any stage error, its name kept.
    pub fn from_step_error<E: StepError>(err: &E) -> Self {
        SinkError::new(err.error_name(), err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::StepFailure;

    #[test]
    fn rate_limit_has_the_stable_name_state_machines_match() {
        let failure = StepFailure::from(GmailError::RateLimited {
            operation: "messages.list",
            attempts: 5,
        });
        assert_eq!(failure.error, "Gmail.RateLimited");
        assert!(failure.cause.contains("messages.list"));
    }

    #[test]
    fn sink_failures_keep_the_stage_name() {
        let err = GmailError::Sink {
            message_id: "m1".into(),
            part_id: "1".into(),
            source: SinkError::new("Stage.Refused", "not a CSV"),
        };
        assert_eq!(err.error_name(), "Stage.Refused");
    }
}
