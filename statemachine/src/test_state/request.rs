//! TestState's request and response: the members AWS's TestState takes (each parsed from the
//! shape the API and the CLI give it) and what it answers.

use serde::Serialize;
use serde_json::{Map, Value};

use super::models::FieldValidationMode;
use crate::EngineError;

/// How much the answer shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InspectionLevel {
    #[default]
    Info,
    Debug,
    Trace,
}

impl InspectionLevel {
    /// `INFO`, `DEBUG` or `TRACE`, as TestState's `inspectionLevel` names them.
    pub fn named(name: &str) -> Option<InspectionLevel> {
        match name {
            "INFO" => Some(InspectionLevel::Info),
            "DEBUG" => Some(InspectionLevel::Debug),
            "TRACE" => Some(InspectionLevel::Trace),
            _ => None,
        }
    }
}

/// A Task's mocked answer: its result, or the error it raises.
#[derive(Debug, Clone, PartialEq)]
pub enum TestStateMock {
    Result(Value),
    Error { error: String, cause: String },
}

impl TestStateMock {
    /// TestState's `mock` member: `{"result": "<JSON text>"}` or
    /// `{"errorOutput": {"error": "...", "cause": "..."}}`, with an optional
    /// `fieldValidationMode` (STRICT, PRESENT or NONE; STRICT when absent).
    pub fn from_member(mock: &Value) -> Result<(TestStateMock, FieldValidationMode), String> {
        let Some(fields) = mock.as_object() else {
            return Err("the mock must be a JSON object".into());
        };
        if let Some(unknown) = fields
            .keys()
            .find(|k| !matches!(k.as_str(), "result" | "errorOutput" | "fieldValidationMode"))
        {
            return Err(format!(
                "the mock has '{unknown}'; it takes result, errorOutput and fieldValidationMode"
            ));
        }
        let mode = match mock.get("fieldValidationMode") {
            None => FieldValidationMode::Strict,
            Some(Value::String(name)) => FieldValidationMode::named(name)
                .ok_or_else(|| format!("fieldValidationMode must be STRICT, PRESENT or NONE, not {name}"))?,
            Some(other) => return Err(format!("fieldValidationMode must be a string, not {other}")),
        };
        Self::answer_of(mock).map(|answer| (answer, mode))
    }

    fn answer_of(mock: &Value) -> Result<TestStateMock, String> {
        match (mock.get("result"), mock.get("errorOutput")) {
            (Some(Value::String(result)), None) => Ok(TestStateMock::Result(
                serde_json::from_str(result).map_err(|e| format!("the mock's result is not JSON text: {e}"))?,
            )),
            (None, Some(error_output)) => Ok(TestStateMock::Error {
                error: error_output
                    .get("error")
                    .and_then(Value::as_str)
                    .ok_or("the mock's errorOutput needs an error (a string)")?
                    .to_string(),
                cause: error_output
                    .get("cause")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            }),
            _ => Err("the mock must hold either result (JSON text) or errorOutput {error, cause}".into()),
        }
    }
}

/// TestState's `stateConfiguration`: where the state stands in a longer run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateConfiguration {
    /// Retries the retrier that takes the mocked error has made already.
    pub retrier_retry_count: Option<u64>,
    /// The state inside a mocked Map or Parallel the mocked error comes from.
    pub error_caused_by_state: Option<String>,
    /// Iterations of a mocked Map that failed, held against its tolerated failures.
    pub map_iteration_failure_count: Option<u64>,
    /// What a Distributed Map's ItemReader reads, as found in its source.
    pub map_item_reader_data: Option<String>,
}

impl StateConfiguration {
    /// TestState's `stateConfiguration` member.
    pub fn from_member(member: &Value) -> Result<StateConfiguration, String> {
        let Some(fields) = member.as_object() else {
            return Err("stateConfiguration must be a JSON object".into());
        };
        let count = |name: &str| -> Result<Option<u64>, String> {
            match fields.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => value
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| format!("stateConfiguration.{name} must be a non-negative integer, not {value}")),
            }
        };
        let text = |name: &str| -> Result<Option<String>, String> {
            match fields.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!("stateConfiguration.{name} must be a string, not {other}")),
            }
        };
        if let Some(unknown) = fields.keys().find(|k| {
            !matches!(
                k.as_str(),
                "retrierRetryCount" | "errorCausedByState" | "mapIterationFailureCount" | "mapItemReaderData"
            )
        }) {
            return Err(format!(
                "stateConfiguration has '{unknown}'; it takes retrierRetryCount, errorCausedByState, mapIterationFailureCount and mapItemReaderData"
            ));
        }
        Ok(StateConfiguration {
            retrier_retry_count: count("retrierRetryCount")?,
            error_caused_by_state: text("errorCausedByState")?,
            map_iteration_failure_count: count("mapIterationFailureCount")?,
            map_item_reader_data: text("mapItemReaderData")?,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct TestStateRequest {
    /// One state (as it would appear under `States`), or a whole state machine whose state
    /// `name` is tested.
    pub definition: Value,
    pub name: String,
    pub input: Value,
    pub variables: Map<String, Value>,
    pub inspection_level: InspectionLevel,
    /// The answer of a Task, or the whole result of a Map or Parallel.
    pub mock: Option<TestStateMock>,
    pub field_validation: FieldValidationMode,
    /// Laid over the Context object the state sees (only with a mock, as on AWS).
    pub context: Option<Value>,
    pub configuration: StateConfiguration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TestStatus {
    Succeeded,
    Failed,
    Retriable,
    CaughtError,
}

/// TestState's response (`output` is JSON text, as AWS returns it).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestStateResponse {
    pub status: TestStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inspection_data: Option<Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum TestStateError {
    #[error("the state definition is not valid: {0}")]
    Invalid(String),
    #[error(
        "a Task state needs a mock here (--mock '{{\"result\": ...}}' or '{{\"errorOutput\": {{\"error\": ..., \"cause\": ...}}}}'): this engine does not call AWS services"
    )]
    TaskNeedsMock,
    #[error("only a Task, Map or Parallel state can be mocked, not a {0} state")]
    MockNotForType(String),
    /// The request does not hold together (AWS's ValidationException).
    #[error("{0}")]
    Request(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}
