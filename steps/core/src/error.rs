//! Stable error names for Step Functions Retry/Catch.
//!
//! Every stage error implements [`StepError`]; the name it returns is what a Lambda reports as
//! `errorType` (through [`StepFailure`]) and what the state machine's Retry/Catch match on.

use std::fmt;

/// An error with a stable Step Functions name such as `Ingest.InvalidCsv`.
pub trait StepError: std::error::Error {
    /// The name Retry/Catch match on. Derived from the variant, in one place per error type.
    fn error_name(&self) -> &'static str;
}

/// A step error flattened to what Step Functions sees: `errorType` and `errorMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub error: String,
    pub cause: String,
}

impl<E: StepError> From<E> for StepFailure {
    fn from(err: E) -> Self {
        StepFailure {
            error: err.error_name().to_string(),
            cause: err.to_string(),
        }
    }
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.cause)
    }
}

impl From<StepFailure> for lambda_runtime::Diagnostic {
    fn from(failure: StepFailure) -> Self {
        lambda_runtime::Diagnostic {
            error_type: failure.error,
            error_message: failure.cause,
        }
    }
}

/// What a backend (objects, tables, secrets) can fail with. Messages never carry item values,
/// secret values or object contents: only names of tables, keys of objects and the operation.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{what} was not found")]
    NotFound { what: String },
    #[error("conditional write on table {table} failed: {condition}")]
    ConditionFailed { table: String, condition: &'static str },
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("invalid item in table {table}: {reason}")]
    InvalidItem { table: String, reason: String },
    #[error("{operation} on {path}: {source}")]
    Io {
        operation: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[cfg(feature = "local")]
    #[error("SQLite {operation}: {source}")]
    Sqlite {
        operation: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{service} {operation} was throttled: {message}")]
    Throttled {
        service: &'static str,
        operation: &'static str,
        message: String,
    },
    #[error("{service} {operation} failed: {message}")]
    Aws {
        service: &'static str,
        operation: &'static str,
        message: String,
    },
    #[error("corrupt stored data in {location}: {reason}")]
    Corrupt { location: String, reason: String },
    /// `backend = "local"` in a binary built without them (a Lambda build).
    #[error(
        "backend = \"local\" but this binary was built without the embedded backends (sluice-core's `local` feature); on Lambda use backend = \"aws\""
    )]
    LocalNotBuilt,
}

impl BackendError {
    pub(crate) fn io(operation: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        BackendError::Io {
            operation,
            path: path.display().to_string(),
            source,
        }
    }

    #[cfg(feature = "local")]
    pub(crate) fn sqlite(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> Self {
        move |source| BackendError::Sqlite { operation, source }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            BackendError::Throttled { .. } => true,
            #[cfg(feature = "local")]
            BackendError::Sqlite { source, .. } => is_sqlite_busy(source),
            _ => false,
        }
    }
}

#[cfg(feature = "local")]
fn is_sqlite_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl StepError for BackendError {
    fn error_name(&self) -> &'static str {
        match self {
            BackendError::NotFound { .. } => "Backend.NotFound",
            BackendError::ConditionFailed { .. } => "Backend.ConditionFailed",
            BackendError::InvalidKey { .. } => "Backend.InvalidKey",
            BackendError::InvalidItem { .. } => "Backend.InvalidItem",
            BackendError::Throttled { .. } => "Backend.Throttled",
            #[cfg(feature = "local")]
            BackendError::Sqlite { source, .. } if is_sqlite_busy(source) => "Backend.Throttled",
            #[cfg(feature = "local")]
            BackendError::Sqlite { .. } => "Backend.Storage",
            BackendError::Io { .. } => "Backend.Storage",
            BackendError::Aws { .. } => "Backend.Aws",
            BackendError::Corrupt { .. } => "Backend.Corrupt",
            BackendError::LocalNotBuilt => "Backend.Unavailable",
        }
    }
}

/// What kind of problem a JSON error is (`syntax error`, `wrong types`...), for messages that
/// must not quote the text: the text may hold a secret or a key.
pub fn json_error_kind(err: &serde_json::Error) -> &'static str {
    match err.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "wrong types",
        serde_json::error::Category::Eof => "truncated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_error_type_is_the_stable_name() {
        let err = BackendError::Throttled {
            service: "DynamoDB",
            operation: "BatchWriteItem",
            message: "slow down".into(),
        };
        let diagnostic: lambda_runtime::Diagnostic = StepFailure::from(err).into();
        assert_eq!(diagnostic.error_type, "Backend.Throttled");
        assert_eq!(
            diagnostic.error_message,
            "DynamoDB BatchWriteItem was throttled: slow down"
        );
    }

    #[test]
    fn condition_failure_names_the_table_not_the_item() {
        let err = BackendError::ConditionFailed {
            table: "control".into(),
            condition: "item must not exist",
        };
        assert_eq!(err.error_name(), "Backend.ConditionFailed");
        assert!(err.to_string().contains("control"));
    }
}
