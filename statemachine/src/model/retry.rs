//! `Retry` and `Catch`: the rules a Task, Parallel or Map state reacts to failures with,
//! with their defaults (3 attempts, 1 s, rate 2.0), their back-off, the choice of which rule
//! applies, and the checks a definition's rules must pass.

use crate::errors::{StateFailure, error_matches, names};
use crate::model::{PathField, is_non_negative_integer, is_positive_integer};
use crate::path::JsonPath;
use crate::payload::Template;
use serde::Deserialize;
use serde_json::{Map, Value};

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
    /// A JSONata state's catcher: its `Output` and `Assign`.
    #[serde(rename = "@JSONata")]
    pub jsonata: Option<crate::model::jsonata::JsonataFields>,
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

/// A problem found in a rule: a JSON pointer relative to the state, and the message.
pub(crate) type Problems = Vec<(String, String)>;

fn problem(problems: &mut Problems, pointer: &str, message: impl Into<String>) {
    problems.push((pointer.to_string(), message.into()));
}

fn error_equals(problems: &mut Problems, entry: &Map<String, Value>, at: &str) {
    let Some(list) = entry
        .get("ErrorEquals")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
    else {
        problem(
            problems,
            &format!("{at}/ErrorEquals"),
            "ErrorEquals must be a non-empty array of error names",
        );
        return;
    };
    for (i, e) in list.iter().enumerate() {
        match e.as_str() {
            Some(names::ALL) if list.len() > 1 => problem(
                problems,
                &format!("{at}/ErrorEquals/{i}"),
                "States.ALL must appear alone in its ErrorEquals",
            ),
            Some(_) => {}
            None => problem(
                problems,
                &format!("{at}/ErrorEquals/{i}"),
                "error names must be strings",
            ),
        }
    }
}

fn has_all(entry: &Value) -> bool {
    entry
        .get("ErrorEquals")
        .and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(|e| e.as_str() == Some(names::ALL)))
}

/// Checks a `Retry` list; problems carry pointers relative to the state.
pub(crate) fn check_retry(value: &Value, problems: &mut Problems) {
    let Some(list) = value.as_array() else {
        problem(problems, "Retry", "Retry must be an array");
        return;
    };
    for (i, entry) in list.iter().enumerate() {
        let at = format!("Retry/{i}");
        let Some(entry) = entry.as_object() else {
            problem(problems, &at, "a retrier must be an object");
            continue;
        };
        error_equals(problems, entry, &at);
        if has_all(&Value::Object(entry.clone())) && i + 1 != list.len() {
            problem(
                problems,
                &format!("{at}/ErrorEquals"),
                "a retrier with States.ALL must be the last one",
            );
        }
        for (key, v) in entry {
            let here = format!("{at}/{key}");
            match key.as_str() {
                "ErrorEquals" | "Comment" => {}
                "IntervalSeconds" | "MaxDelaySeconds" if !is_positive_integer(v) => {
                    problem(problems, &here, format!("{key} must be a positive integer"))
                }
                "MaxAttempts" if !is_non_negative_integer(v) => {
                    problem(problems, &here, "MaxAttempts must be a non-negative integer")
                }
                "BackoffRate" if !v.as_f64().is_some_and(|r| r >= 1.0) => {
                    problem(problems, &here, "BackoffRate must be a number of at least 1.0")
                }
                "JitterStrategy" if !matches!(v.as_str(), Some("FULL" | "NONE")) => {
                    problem(problems, &here, "JitterStrategy must be FULL or NONE")
                }
                "IntervalSeconds" | "MaxDelaySeconds" | "MaxAttempts" | "BackoffRate" | "JitterStrategy" => {}
                _ => problem(problems, &here, format!("'{key}' is not allowed in a retrier")),
            }
        }
    }
}

/// Checks a `Catch` list; `nexts` gets each catcher's Next with its pointer.
pub(crate) fn check_catch(value: &Value, problems: &mut Problems, nexts: &mut Vec<(String, String)>) {
    let Some(list) = value.as_array() else {
        problem(problems, "Catch", "Catch must be an array");
        return;
    };
    for (i, entry) in list.iter().enumerate() {
        let at = format!("Catch/{i}");
        let Some(entry) = entry.as_object() else {
            problem(problems, &at, "a catcher must be an object");
            continue;
        };
        error_equals(problems, entry, &at);
        if has_all(&Value::Object(entry.clone())) && i + 1 != list.len() {
            problem(
                problems,
                &format!("{at}/ErrorEquals"),
                "a catcher with States.ALL must be the last one",
            );
        }
        match entry.get("Next") {
            Some(Value::String(n)) => nexts.push((n.clone(), format!("{at}/Next"))),
            _ => problem(problems, &format!("{at}/Next"), "a catcher needs Next (a state name)"),
        }
        for (key, v) in entry {
            let here = format!("{at}/{key}");
            match key.as_str() {
                "ErrorEquals" | "Next" | "Comment" => {}
                "ResultPath" => match v {
                    Value::Null => {}
                    Value::String(p) => match JsonPath::parse(p) {
                        Ok(path) if path.is_reference_path() => {}
                        Ok(_) => problem(problems, &here, "ResultPath must be a reference path"),
                        Err(e) => problem(problems, &here, e.to_string()),
                    },
                    _ => problem(problems, &here, "ResultPath must be a path string or null"),
                },
                "Assign" => {
                    if let Err((p, m)) = Template::compile(v) {
                        problem(problems, &format!("{here}{p}"), m);
                    }
                }
                _ => problem(problems, &here, format!("'{key}' is not allowed in a catcher")),
            }
        }
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
