//! Errors as Step Functions raises them: the predefined `States.*` names, a state's failure,
//! and the `Retry` / `Catch` rules that react to it.

use crate::model::PathField;
use crate::payload::Template;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Jitter {
    Full,
    None,
}

/// One entry of a state's `Retry` list.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: Option<u64>,
    pub max_attempts: Option<u64>,
    pub backoff_rate: Option<f64>,
    pub max_delay_seconds: Option<u64>,
    pub jitter_strategy: Option<Jitter>,
}

impl Retrier {
    pub fn max_attempts(&self) -> u64 {
        self.max_attempts.unwrap_or(3)
    }

    /// The delay before retry number `attempt` (0-based) of this retrier, before jitter.
    pub fn delay_seconds(&self, attempt: u64) -> f64 {
        let interval = self.interval_seconds.unwrap_or(1) as f64;
        let rate = self.backoff_rate.unwrap_or(2.0);
        let delay = interval * rate.powi(attempt.min(i32::MAX as u64) as i32);
        match self.max_delay_seconds {
            Some(max) => delay.min(max as f64),
            None => delay,
        }
    }
}

/// One entry of a state's `Catch` list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    #[serde(default)]
    pub result_path: PathField,
    pub assign: Option<Template>,
}

/// What happens after a failure, given how often each retrier has already fired.
#[derive(Debug, Clone, PartialEq)]
pub enum Recovery<'a> {
    /// Retry after this many seconds (jitter not yet applied); the retrier's index is given
    /// so its count can be bumped.
    Retry {
        retrier: usize,
        delay_seconds: f64,
        jitter: bool,
    },
    Catch(&'a Catcher),
    Fail,
}

/// Applies AWS's rule: the first retrier whose ErrorEquals matches decides (even when its
/// attempts are used up); then the first matching catcher.
pub fn recover<'a>(retry: &[Retrier], catch: &'a [Catcher], failure: &StateFailure, attempts: &[u64]) -> Recovery<'a> {
    if let Some((index, retrier)) = retry
        .iter()
        .enumerate()
        .find(|(_, r)| error_matches(&r.error_equals, failure))
    {
        let used = attempts.get(index).copied().unwrap_or(0);
        if used < retrier.max_attempts() {
            return Recovery::Retry {
                retrier: index,
                delay_seconds: retrier.delay_seconds(used),
                jitter: retrier.jitter_strategy == Some(Jitter::Full),
            };
        }
    }
    match catch.iter().find(|c| error_matches(&c.error_equals, failure)) {
        Some(catcher) => Recovery::Catch(catcher),
        None => Recovery::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retrier(errors: &[&str], max: u64) -> Retrier {
        Retrier {
            error_equals: errors.iter().map(|s| s.to_string()).collect(),
            interval_seconds: Some(2),
            max_attempts: Some(max),
            backoff_rate: Some(3.0),
            max_delay_seconds: Some(10),
            jitter_strategy: None,
        }
    }

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

    #[test]
    fn backoff_grows_and_is_capped() {
        let r = retrier(&["E"], 5);
        assert_eq!(r.delay_seconds(0), 2.0);
        assert_eq!(r.delay_seconds(1), 6.0);
        assert_eq!(r.delay_seconds(2), 10.0);
    }

    #[test]
    fn first_matching_retrier_decides_even_when_exhausted() {
        let retry = vec![retrier(&["E"], 1), retrier(&[names::ALL], 5)];
        let failure = StateFailure::new("E", "c");
        assert!(matches!(
            recover(&retry, &[], &failure, &[0, 0]),
            Recovery::Retry { retrier: 0, .. }
        ));
        assert_eq!(recover(&retry, &[], &failure, &[1, 0]), Recovery::Fail);
    }

    #[test]
    fn max_attempts_zero_never_retries() {
        let retry = vec![retrier(&["E"], 0)];
        assert_eq!(recover(&retry, &[], &StateFailure::new("E", "c"), &[0]), Recovery::Fail);
    }
}
