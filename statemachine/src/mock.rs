//! Step Functions Local mock-config files (`MockConfigFile`): per test case, a mocked
//! response (Return or Throw, possibly different per invocation) for each Task state.

use crate::errors::StateFailure;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum MockConfigError {
    #[error("the mock config is not valid JSON (line {line}, column {column}): {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("mock config {pointer}: {message}")]
    Invalid { pointer: String, message: String },
    #[error("no test case named '{0}' in the mock config")]
    UnknownTestCase(String),
    #[error("the test case '{test_case}' exists in several state machines ({machines}); name the state machine")]
    AmbiguousTestCase { test_case: String, machines: String },
}

/// One mocked answer: a result, or an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MockedAnswer {
    Return(Value),
    Throw(StateFailure),
}

/// Answers for one state, by invocation number (0-based, retries included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MockedResponse {
    /// `(first, last, answer)` ranges; the last range answers every later invocation too.
    steps: Vec<(u64, u64, MockedAnswer)>,
}

impl MockedResponse {
    /// The same answer to every invocation.
    pub fn always(answer: MockedAnswer) -> Self {
        Self {
            steps: vec![(0, 0, answer)],
        }
    }

    pub fn answer(&self, invocation: u64) -> Option<&MockedAnswer> {
        self.steps
            .iter()
            .find(|(first, last, _)| (*first..=*last).contains(&invocation))
            .or_else(|| self.steps.iter().max_by_key(|(_, last, _)| *last))
            .map(|(_, _, answer)| answer)
    }
}

/// The mocked states of one test case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MockedTestCase {
    pub name: String,
    pub states: HashMap<String, MockedResponse>,
    /// Map and Parallel states named in `states` are answered whole, their iterations or
    /// branches not run (TestState's mock; a mock config answers Task states only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub whole_states: bool,
    /// Merged over the Context object the states see (TestState's `context`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    /// How many iterations of a Map answered whole failed (TestState's
    /// `stateConfiguration.mapIterationFailureCount`), held against its tolerance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_iteration_failures: Option<u64>,
}

impl MockedTestCase {
    pub fn answer(&self, state: &str, invocation: u64) -> Option<&MockedAnswer> {
        self.states.get(state)?.answer(invocation)
    }
}

/// A parsed mock-config file.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// state machine name -> test case name -> state name -> mocked response name
    machines: HashMap<String, HashMap<String, HashMap<String, String>>>,
    responses: HashMap<String, MockedResponse>,
}

fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> MockConfigError {
    MockConfigError::Invalid {
        pointer: pointer.into(),
        message: message.into(),
    }
}

fn parse_range(key: &str) -> Option<(u64, u64)> {
    match key.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => key.trim().parse().ok().map(|n| (n, n)),
    }
}

fn parse_answer(value: &Value, at: &str) -> Result<MockedAnswer, MockConfigError> {
    let map = value
        .as_object()
        .ok_or_else(|| invalid(at, "a mocked step must be an object"))?;
    match (map.get("Return"), map.get("Throw")) {
        (Some(r), None) => Ok(MockedAnswer::Return(r.clone())),
        (None, Some(t)) => {
            let field = |name: &str| t.get(name).and_then(Value::as_str).map(str::to_string);
            if !t.is_object() {
                return Err(invalid(
                    format!("{at}/Throw"),
                    "Throw must be an object with Error and Cause",
                ));
            }
            Ok(MockedAnswer::Throw(StateFailure {
                error: field("Error"),
                cause: field("Cause"),
            }))
        }
        _ => Err(invalid(at, "a mocked step needs exactly one of Return or Throw")),
    }
}

impl MockConfig {
    pub fn from_json(text: &str) -> Result<Self, MockConfigError> {
        let value: Value = serde_json::from_str(text).map_err(|e| MockConfigError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        let mut responses = HashMap::new();
        let raw_responses = value
            .get("MockedResponses")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("/MockedResponses", "MockedResponses must be an object"))?;
        for (name, steps) in raw_responses {
            let at = format!("/MockedResponses/{name}");
            let steps_map = steps
                .as_object()
                .ok_or_else(|| invalid(&at, "a mocked response must be an object of steps"))?;
            let mut parsed = Vec::new();
            for (key, step) in steps_map {
                let (first, last) = parse_range(key).ok_or_else(|| {
                    invalid(
                        format!("{at}/{key}"),
                        "step keys are invocation numbers (\"0\") or ranges (\"1-3\")",
                    )
                })?;
                parsed.push((first, last, parse_answer(step, &format!("{at}/{key}"))?));
            }
            if parsed.is_empty() {
                return Err(invalid(&at, "a mocked response needs at least one step"));
            }
            parsed.sort_by_key(|(first, _, _)| *first);
            responses.insert(name.clone(), MockedResponse { steps: parsed });
        }
        let mut machines = HashMap::new();
        let raw_machines = value
            .get("StateMachines")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("/StateMachines", "StateMachines must be an object"))?;
        for (machine, body) in raw_machines {
            let at = format!("/StateMachines/{machine}/TestCases");
            let cases = body
                .get("TestCases")
                .and_then(Value::as_object)
                .ok_or_else(|| invalid(&at, "TestCases must be an object"))?;
            let mut parsed_cases = HashMap::new();
            for (case, states) in cases {
                let states = states.as_object().ok_or_else(|| {
                    invalid(
                        format!("{at}/{case}"),
                        "a test case maps state names to mocked response names",
                    )
                })?;
                let mut parsed_states = HashMap::new();
                for (state, response) in states {
                    let response = response
                        .as_str()
                        .ok_or_else(|| invalid(format!("{at}/{case}/{state}"), "must name a mocked response"))?;
                    if !responses.contains_key(response) {
                        return Err(invalid(
                            format!("{at}/{case}/{state}"),
                            format!("no mocked response named '{response}'"),
                        ));
                    }
                    parsed_states.insert(state.clone(), response.to_string());
                }
                parsed_cases.insert(case.clone(), parsed_states);
            }
            machines.insert(machine.clone(), parsed_cases);
        }
        Ok(Self { machines, responses })
    }

    /// The named test case. `state_machine` picks the machine when given; otherwise the test
    /// case must exist in exactly one machine.
    pub fn test_case(&self, state_machine: Option<&str>, test_case: &str) -> Result<MockedTestCase, MockConfigError> {
        let candidates: Vec<(&String, &HashMap<String, String>)> = self
            .machines
            .iter()
            .filter(|(m, _)| state_machine.is_none_or(|wanted| wanted == m.as_str()))
            .filter_map(|(m, cases)| cases.get(test_case).map(|c| (m, c)))
            .collect();
        let states = match candidates.as_slice() {
            [] => return Err(MockConfigError::UnknownTestCase(test_case.to_string())),
            [(_, states)] => *states,
            many => {
                let mut names: Vec<&str> = many.iter().map(|(m, _)| m.as_str()).collect();
                names.sort_unstable();
                return Err(MockConfigError::AmbiguousTestCase {
                    test_case: test_case.to_string(),
                    machines: names.join(", "),
                });
            }
        };
        Ok(MockedTestCase {
            name: test_case.to_string(),
            states: states
                .iter()
                .filter_map(|(state, response)| self.responses.get(response).map(|r| (state.clone(), r.clone())))
                .collect(),
            whole_states: false,
            context: None,
            map_iteration_failures: None,
        })
    }

    pub fn state_machine_names(&self) -> Vec<&str> {
        self.machines.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CONFIG: &str = r#"{
      "StateMachines": {"Pipeline": {"TestCases": {"Retry": {"Fetch": "FailTwiceThenSucceed"}}}},
      "MockedResponses": {
        "FailTwiceThenSucceed": {
          "0-1": {"Throw": {"Error": "Gmail.RateLimited", "Cause": "slow down"}},
          "2": {"Return": {"Payload": {"count": 3}}}
        }
      }
    }"#;

    #[test]
    fn answers_follow_invocation_ranges_and_repeat_the_last() {
        let case = MockConfig::from_json(CONFIG).unwrap().test_case(None, "Retry").unwrap();
        assert!(
            matches!(case.answer("Fetch", 0), Some(MockedAnswer::Throw(f)) if f.error.as_deref() == Some("Gmail.RateLimited"))
        );
        assert!(matches!(case.answer("Fetch", 1), Some(MockedAnswer::Throw(_))));
        assert_eq!(
            case.answer("Fetch", 2),
            Some(&MockedAnswer::Return(json!({"Payload": {"count": 3}})))
        );
        assert_eq!(case.answer("Fetch", 9), case.answer("Fetch", 2));
        assert_eq!(case.answer("Other", 0), None);
    }

    #[test]
    fn malformed_configs_are_rejected_with_a_location() {
        for (bad, needle) in [
            ("{", "not valid JSON"),
            (
                r#"{"StateMachines": {}, "MockedResponses": {"R": {"x": {"Return": 1}}}}"#,
                "/MockedResponses/R/x",
            ),
            (
                r#"{"StateMachines": {}, "MockedResponses": {"R": {"0": {"Return": 1, "Throw": {}}}}}"#,
                "exactly one",
            ),
            (
                r#"{"StateMachines": {"M": {"TestCases": {"T": {"S": "Missing"}}}}, "MockedResponses": {}}"#,
                "no mocked response",
            ),
        ] {
            let err = MockConfig::from_json(bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        let config = MockConfig::from_json(CONFIG).unwrap();
        assert!(matches!(
            config.test_case(None, "Nope"),
            Err(MockConfigError::UnknownTestCase(_))
        ));
    }
}
