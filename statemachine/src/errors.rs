//! Errors as Step Functions raises them: the predefined `States.*` names, a state's failure,
//! and which failures an `ErrorEquals` list covers. The `Retry` / `Catch` rules that react to
//! them are part of the model ([`crate::model::retry`]).

use serde::{Deserialize, Serialize};

/// The predefined error names.
pub mod names {
    pub const ALL: &str = "States.ALL";
    pub const TASK_FAILED: &str = "States.TaskFailed";
    pub const TIMEOUT: &str = "States.Timeout";
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
    pub const RUNTIME: &str = "States.Runtime";
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
    pub const PERMISSIONS: &str = "States.Permissions";
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
    pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
    pub const RESULT_WRITER_FAILED: &str = "States.ResultWriterFailed";
    pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";
}

/// A state's failure: what a Fail state raises, what a Task's handler reports, or what the
/// interpreter detects. A Fail state without `Error` fails with no error name at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateFailure {
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl StateFailure {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            cause: Some(cause.into()),
        }
    }

    pub fn runtime(cause: impl Into<String>) -> Self {
        Self::new(names::RUNTIME, cause)
    }

    /// Runtime errors end the execution: no retrier or catcher sees them.
    pub fn is_terminal(&self) -> bool {
        self.error.as_deref() == Some(names::RUNTIME)
    }

    /// The `{"Error", "Cause"}` object a Catch passes on.
    pub fn to_output(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        if let Some(e) = &self.error {
            map.insert("Error".into(), e.clone().into());
        }
        if let Some(c) = &self.cause {
            map.insert("Cause".into(), c.clone().into());
        }
        serde_json::Value::Object(map)
    }
}

/// Whether `error_equals` (of a retrier or catcher) covers `failure`.
pub fn error_matches(error_equals: &[String], failure: &StateFailure) -> bool {
    if failure.is_terminal() {
        return false;
    }
    let name = failure.error.as_deref().unwrap_or("");
    error_equals.iter().any(|wanted| match wanted.as_str() {
        names::ALL => name != names::DATA_LIMIT_EXCEEDED,
        names::TASK_FAILED => name != names::TIMEOUT && name != names::DATA_LIMIT_EXCEEDED && !name.is_empty(),
        other => other == name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_all_matches_everything_but_runtime_and_data_limit() {
        let all = vec![names::ALL.to_string()];
        assert!(error_matches(&all, &StateFailure::new("Custom", "x")));
        assert!(!error_matches(&all, &StateFailure::runtime("x")));
        assert!(!error_matches(
            &all,
            &StateFailure::new(names::DATA_LIMIT_EXCEEDED, "x")
        ));
    }

    #[test]
    fn task_failed_does_not_match_timeouts() {
        let tf = vec![names::TASK_FAILED.to_string()];
        assert!(error_matches(&tf, &StateFailure::new("Lambda.Unknown", "x")));
        assert!(!error_matches(&tf, &StateFailure::new(names::TIMEOUT, "x")));
    }
}
