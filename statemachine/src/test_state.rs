//! TestState, as AWS's TestState API runs it, on this engine: one state's definition, run once
//! on an input (with variables set beforehand), its Task answered by a mock, on a clock that
//! does not wait. The answer says what AWS's does: SUCCEEDED, FAILED, RETRIABLE (a retrier would
//! retry; TestState reports it instead of waiting) or CAUGHT_ERROR, with the output, the error,
//! the next state and, from `DEBUG`, what the state did with its input.
//!
//! The state runs inside a small machine: a Pass that assigns the variables, the state itself,
//! and one terminal Pass per state it can go to, so the state's own code runs unchanged and the
//! state it chose shows in the history.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::history::{EventType, HistoryEvent};
use crate::inspect::Inspector;
use crate::mock::{MockedAnswer, MockedResponse, MockedTestCase};
use crate::{Engine, EngineError, ExecutionOutcome, ManualClock, StartExecution, StateFailure, StateMachine};

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
    /// `{"errorOutput": {"error": "...", "cause": "..."}}`.
    pub fn from_member(mock: &Value) -> Result<TestStateMock, String> {
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

#[derive(Debug, Clone)]
pub struct TestStateRequest {
    /// The state's definition (one state, as it would appear under `States`).
    pub definition: Value,
    pub name: String,
    pub input: Value,
    pub variables: Map<String, Value>,
    pub inspection_level: InspectionLevel,
    pub mock: Option<TestStateMock>,
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
    #[error("only a Task state's result can be mocked on this engine, not a {0} state's")]
    MockNotForType(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

const VARIABLES_STATE: &str = "TestState.Variables";
const NEXT_PREFIX: &str = "TestState.Next.";

/// Every state `state` names as a transition target, rewritten in place to a terminal stand-in;
/// the stand-ins' names, by target.
fn redirect_targets(state: &mut Map<String, Value>) -> HashMap<String, String> {
    let mut targets: HashMap<String, String> = HashMap::new();
    let mut redirect = |slot: &mut Value| {
        if let Value::String(target) = slot {
            let count = targets.len();
            let stand_in = targets
                .entry(target.clone())
                .or_insert_with(|| format!("{NEXT_PREFIX}{count}"))
                .clone();
            *slot = Value::String(stand_in);
        }
    };
    for key in ["Next", "Default"] {
        if let Some(slot) = state.get_mut(key) {
            redirect(slot);
        }
    }
    for key in ["Choices", "Catch"] {
        if let Some(Value::Array(entries)) = state.get_mut(key) {
            for entry in entries.iter_mut() {
                if let Some(slot) = entry.get_mut("Next") {
                    redirect(slot);
                }
            }
        }
    }
    targets
}

pub async fn test_state(engine: Engine, request: TestStateRequest) -> Result<TestStateResponse, TestStateError> {
    let Value::Object(mut state) = request.definition else {
        return Err(TestStateError::Invalid(
            "the definition must be a JSON object (one state)".into(),
        ));
    };
    let kind = state
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match (&request.mock, kind.as_str()) {
        (None, "Task") => return Err(TestStateError::TaskNeedsMock),
        (Some(_), kind) if kind != "Task" => return Err(TestStateError::MockNotForType(kind.to_string())),
        _ => {}
    }
    let targets = redirect_targets(&mut state);
    let mut states = Map::new();
    for stand_in in targets.values() {
        states.insert(
            stand_in.clone(),
            json!({"Type": "Pass", "QueryLanguage": "JSONPath", "End": true}),
        );
    }
    let start = if request.variables.is_empty() {
        request.name.clone()
    } else {
        states.insert(
            VARIABLES_STATE.into(),
            json!({"Type": "Pass", "QueryLanguage": "JSONPath", "Assign": request.variables, "Next": request.name}),
        );
        VARIABLES_STATE.to_string()
    };
    states.insert(request.name.clone(), Value::Object(state));
    let definition = json!({"StartAt": start, "States": states});
    let machine =
        StateMachine::from_json(&definition.to_string()).map_err(|e| TestStateError::Invalid(e.to_string()))?;

    let mut start_execution = StartExecution::new("TestState", request.input.clone());
    if let Some(mock) = &request.mock {
        let answer = match mock {
            TestStateMock::Result(result) => MockedAnswer::Return(result.clone()),
            TestStateMock::Error { error, cause } => {
                MockedAnswer::Throw(StateFailure::new(error.clone(), cause.clone()))
            }
        };
        start_execution.mocks = Some(MockedTestCase {
            name: "TestState".into(),
            states: HashMap::from([(request.name.clone(), MockedResponse::always(answer))]),
        });
    }
    let inspector = Arc::new(Inspector::default());
    let engine = engine
        .with_clock(Arc::new(ManualClock::new(chrono::Utc::now())))
        .with_inspector(inspector.clone());
    let report = engine.start_execution(&machine, start_execution).await?;
    let history = engine.execution_history(&report.execution_arn)?;
    let events = own_events(&history, &request.name);
    let failure = first_failure(&events);
    let retried = failure.is_some_and(|at| events[at + 1..].iter().any(|e| is_attempt_start(e.event_type)));
    let by_stand_in: HashMap<&str, &str> = targets
        .iter()
        .map(|(target, stand_in)| (stand_in.as_str(), target.as_str()))
        .collect();
    let next_state = history.iter().rev().find_map(|event| {
        let name = event.details.name.as_deref()?;
        by_stand_in.get(name).map(|target| target.to_string())
    });
    let mut response = TestStateResponse {
        status: TestStatus::Succeeded,
        output: None,
        error: None,
        cause: None,
        next_state: None,
        inspection_data: None,
    };
    if retried && let Some(at) = failure {
        response.status = TestStatus::Retriable;
        response.error = events[at].details.error.clone();
        response.cause = events[at].details.cause.clone();
    } else {
        match report.outcome {
            ExecutionOutcome::Succeeded { output } => {
                response.status = if failure.is_some() {
                    TestStatus::CaughtError
                } else {
                    TestStatus::Succeeded
                };
                response.output = Some(output.to_string());
                response.next_state = next_state;
            }
            ExecutionOutcome::Failed { error, cause } => {
                response.status = TestStatus::Failed;
                response.error = error;
                response.cause = cause;
            }
            other => {
                response.status = TestStatus::Failed;
                response.error = Some("States.Runtime".into());
                response.cause = Some(format!("the state did not finish in one run: {other:?}"));
            }
        }
    }
    if request.inspection_level != InspectionLevel::Info {
        response.inspection_data = Some(inspection(&events, inspector.of(&request.name)));
    }
    Ok(response)
}

/// The events of the state under test (from its entry to its exit or failure).
fn own_events<'h>(history: &'h [HistoryEvent], name: &str) -> Vec<&'h HistoryEvent> {
    let Some(entered) = history
        .iter()
        .position(|e| is_entered(e.event_type) && e.details.name.as_deref() == Some(name))
    else {
        return Vec::new();
    };
    let mut own = Vec::new();
    for event in &history[entered..] {
        own.push(event);
        if is_exited(event.event_type) && event.details.name.as_deref() == Some(name) {
            break;
        }
    }
    own
}

fn first_failure(events: &[&HistoryEvent]) -> Option<usize> {
    events.iter().position(|e| {
        matches!(
            e.event_type,
            EventType::TaskFailed
                | EventType::TaskTimedOut
                | EventType::MapStateFailed
                | EventType::ParallelStateFailed
        )
    })
}

fn is_attempt_start(event: EventType) -> bool {
    matches!(
        event,
        EventType::TaskScheduled | EventType::MapStateStarted | EventType::ParallelStateStarted
    )
}

fn is_entered(event: EventType) -> bool {
    matches!(
        event,
        EventType::PassStateEntered
            | EventType::TaskStateEntered
            | EventType::ChoiceStateEntered
            | EventType::WaitStateEntered
            | EventType::SucceedStateEntered
            | EventType::FailStateEntered
            | EventType::ParallelStateEntered
            | EventType::MapStateEntered
    )
}

fn is_exited(event: EventType) -> bool {
    matches!(
        event,
        EventType::PassStateExited
            | EventType::TaskStateExited
            | EventType::ChoiceStateExited
            | EventType::WaitStateExited
            | EventType::SucceedStateExited
            | EventType::ParallelStateExited
            | EventType::MapStateExited
    )
}

/// What the state did with its input, in the order AWS lists it: the input (from the history),
/// each intermediate the engine recorded, and the Task's result (from the history); values as
/// JSON text, as AWS gives them.
fn inspection(events: &[&HistoryEvent], mut recorded: Map<String, Value>) -> Value {
    let mut data = Map::new();
    let text = |value: &Value| Value::String(value.to_string());
    if let Some(input) = events.first().and_then(|e| e.details.input.as_ref()) {
        data.insert("input".into(), text(input));
    }
    for field in ["afterInputPath", "afterParameters", "afterArguments"] {
        if let Some(value) = recorded.remove(field) {
            data.insert(field.into(), text(&value));
        }
    }
    if let Some(result) = events
        .iter()
        .find(|e| e.event_type == EventType::TaskSucceeded)
        .and_then(|e| e.details.output.as_ref())
    {
        data.insert("result".into(), text(result));
    }
    for field in ["afterResultSelector", "afterResultPath", "variables"] {
        if let Some(value) = recorded.remove(field) {
            data.insert(field.into(), text(&value));
        }
    }
    Value::Object(data)
}
