//! TestState, as AWS's TestState API runs it, on this engine: one state's definition, run once
//! on an input (with variables set beforehand), its Task answered by a mock, on a clock that
//! does not wait. The answer says what AWS's does: SUCCEEDED, FAILED, RETRIABLE (a retrier would
//! retry; TestState reports it instead of waiting) or CAUGHT_ERROR, with the output, the error,
//! the next state and, from `DEBUG`, what the state did with its input.
//!
//! The state runs inside a small machine: a Pass that assigns the variables, the state itself,
//! and one terminal Pass per state it can go to, so the state's own code runs unchanged and the
//! state it chose shows in the history. It runs once, without its `Retry`: whether a retrier
//! would take the error (given `stateConfiguration.retrierRetryCount` retries so far) is
//! AWS's rule applied to that first error, and the answer says which retrier and how long it
//! would wait, or which catcher took it.

mod models;
mod request;

pub use models::{FieldValidationMode, check_mocked_result};
pub use request::{
    InspectionLevel, StateConfiguration, TestStateError, TestStateMock, TestStateRequest, TestStateResponse, TestStatus,
};

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::history::{EventType, HistoryEvent};
use crate::inspect::Inspector;
use crate::mock::{MockedAnswer, MockedResponse, MockedTestCase};
use crate::model::retry::{Catcher, Recovery, Retrier, recover};
use crate::objects::{ObjectError, ObjectPage, ObjectStorage};
use crate::{Engine, ExecutionOutcome, ManualClock, StartExecution, StateFailure, StateMachine};

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

/// The state under test out of `definition`: the definition itself, or the state `name` of a
/// whole state machine (its `StartAt` when `name` is the default), with the machine's query
/// language when the state names none.
fn state_of(definition: Value, name: &str) -> Result<(String, Map<String, Value>), TestStateError> {
    let Value::Object(mut definition) = definition else {
        return Err(TestStateError::Invalid(
            "the definition must be a JSON object (one state, or a state machine)".into(),
        ));
    };
    let Some(Value::Object(mut states)) = definition.remove("States") else {
        return Ok((name.to_string(), definition));
    };
    let chosen = match (
        states.contains_key(name),
        definition.get("StartAt").and_then(Value::as_str),
    ) {
        (true, _) => name.to_string(),
        (false, Some(start)) if name == DEFAULT_STATE_NAME => start.to_string(),
        _ => {
            return Err(TestStateError::Request(format!(
                "stateName '{name}' is not a state of the definition (its states: {})",
                states.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    };
    let Some(Value::Object(mut state)) = states.remove(&chosen) else {
        return Err(TestStateError::Invalid(format!(
            "the state '{chosen}' must be a JSON object"
        )));
    };
    if let Some(language) = definition.get("QueryLanguage")
        && !state.contains_key("QueryLanguage")
    {
        state.insert("QueryLanguage".into(), language.clone());
    }
    Ok((chosen, state))
}

/// The name a state under test has when the request names none.
pub const DEFAULT_STATE_NAME: &str = "TestState";

/// Every state name inside a Map's processor or a Parallel's branches, at any depth.
fn inner_state_names(state: &Map<String, Value>, names: &mut Vec<String>) {
    let mut scopes: Vec<&Value> = Vec::new();
    for key in ["ItemProcessor", "Iterator"] {
        scopes.extend(state.get(key));
    }
    if let Some(Value::Array(branches)) = state.get("Branches") {
        scopes.extend(branches.iter());
    }
    for scope in scopes {
        if let Some(Value::Object(states)) = scope.get("States") {
            for (name, inner) in states {
                names.push(name.clone());
                if let Some(inner) = inner.as_object() {
                    inner_state_names(inner, names);
                }
            }
        }
    }
}

/// The request's own consistency, as AWS checks it before running anything.
fn check_request(request: &TestStateRequest, kind: &str, state: &Map<String, Value>) -> Result<(), TestStateError> {
    match (&request.mock, kind) {
        (None, "Task") => return Err(TestStateError::TaskNeedsMock),
        (Some(_), kind) if !matches!(kind, "Task" | "Map" | "Parallel") => {
            return Err(TestStateError::MockNotForType(kind.to_string()));
        }
        _ => {}
    }
    if request.context.is_some() && request.mock.is_none() {
        return Err(TestStateError::Request("context may only be given with a mock".into()));
    }
    if request.context.as_ref().is_some_and(|c| !c.is_object()) {
        return Err(TestStateError::Request("context must be a JSON object".into()));
    }
    let config = &request.configuration;
    let mocked_error = matches!(request.mock, Some(TestStateMock::Error { .. }));
    if config.retrier_retry_count.is_some() && !mocked_error {
        return Err(TestStateError::Request(
            "stateConfiguration.retrierRetryCount needs a mocked error (mock.errorOutput)".into(),
        ));
    }
    if let Some(inner) = &config.error_caused_by_state {
        if !mocked_error || !matches!(kind, "Map" | "Parallel") {
            return Err(TestStateError::Request(
                "stateConfiguration.errorCausedByState needs a Map or Parallel state with a mocked error".into(),
            ));
        }
        let mut names = Vec::new();
        inner_state_names(state, &mut names);
        if !names.contains(inner) {
            return Err(TestStateError::Request(format!(
                "stateConfiguration.errorCausedByState '{inner}' is not a state inside the {kind} state"
            )));
        }
    }
    if config.map_iteration_failure_count.is_some() && (kind != "Map" || request.mock.is_none()) {
        return Err(TestStateError::Request(
            "stateConfiguration.mapIterationFailureCount needs a mocked Map state".into(),
        ));
    }
    if config.map_item_reader_data.is_some() && !state.contains_key("ItemReader") {
        return Err(TestStateError::Request(
            "stateConfiguration.mapItemReaderData needs a Distributed Map with an ItemReader".into(),
        ));
    }
    if let (Some(TestStateMock::Result(result)), Some(Value::String(resource))) = (&request.mock, state.get("Resource"))
    {
        check_mocked_result(resource, result, request.field_validation).map_err(TestStateError::Request)?;
    }
    Ok(())
}

pub async fn test_state(engine: Engine, request: TestStateRequest) -> Result<TestStateResponse, TestStateError> {
    let (name, mut state) = state_of(request.definition.clone(), &request.name)?;
    let kind = state
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    check_request(&request, &kind, &state)?;
    let targets = redirect_targets(&mut state);
    let mut states = Map::new();
    for stand_in in targets.values() {
        states.insert(
            stand_in.clone(),
            json!({"Type": "Pass", "QueryLanguage": "JSONPath", "End": true}),
        );
    }
    let start = if request.variables.is_empty() {
        name.clone()
    } else {
        states.insert(
            VARIABLES_STATE.into(),
            json!({"Type": "Pass", "QueryLanguage": "JSONPath", "Assign": request.variables, "Next": name}),
        );
        VARIABLES_STATE.to_string()
    };
    // Validated whole (its Retry and Catch too); then it runs once, without its Retry: AWS's
    // retry rule is applied to its first error below.
    states.insert(name.clone(), Value::Object(state.clone()));
    let whole = json!({"StartAt": start, "States": states});
    StateMachine::from_json(&whole.to_string()).map_err(|e| TestStateError::Invalid(e.to_string()))?;
    let rules = |field: &str| state.get(field).cloned().unwrap_or(json!([]));
    let retriers: Vec<Retrier> =
        serde_json::from_value(rules("Retry")).map_err(|e| TestStateError::Invalid(format!("Retry: {e}")))?;
    let catchers: Vec<Catcher> =
        serde_json::from_value(rules("Catch")).map_err(|e| TestStateError::Invalid(format!("Catch: {e}")))?;
    state.remove("Retry");
    states.insert(name.clone(), Value::Object(state));
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
            states: HashMap::from([(name.clone(), MockedResponse::always(answer))]),
            whole_states: true,
            context: request.context.clone(),
            map_iteration_failures: request.configuration.map_iteration_failure_count,
        });
    }
    let inspector = Arc::new(Inspector::default());
    let mut engine = engine
        .with_clock(Arc::new(ManualClock::new(chrono::Utc::now())))
        .with_inspector(inspector.clone());
    if let Some(data) = &request.configuration.map_item_reader_data {
        engine = engine.with_objects(Arc::new(ReaderData(data.clone().into_bytes())));
    }
    let report = engine.start_execution(&machine, start_execution).await?;
    let history = engine.execution_history(&report.execution_arn)?;
    let events = own_events(&history, &name);
    let mut recorded = inspector.of(&name);
    let failure = recorded.remove(crate::states::FAILURE_INSPECTED).map(|output| {
        let text = |key: &str| output.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
        StateFailure::new(text("Error"), text("Cause"))
    });
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
    let mut error_details = Map::new();
    let attempts = vec![request.configuration.retrier_retry_count.unwrap_or(0); retriers.len()];
    let recovery = failure.as_ref().map(|f| recover(&retriers, &catchers, f, &attempts));
    match (&failure, recovery) {
        (
            Some(failure),
            Some(Recovery::Retry {
                retrier, delay_seconds, ..
            }),
        ) => {
            response.status = TestStatus::Retriable;
            response.error = failure.error.clone();
            response.cause = failure.cause.clone();
            error_details.insert("retryIndex".into(), json!(retrier));
            error_details.insert("retryBackoffIntervalSeconds".into(), json!(delay_seconds as u64));
        }
        (failure, recovery) => {
            if let Some(Recovery::Catch(catcher)) = recovery
                && let Some(index) = catchers.iter().position(|c| c == catcher)
            {
                error_details.insert("catchIndex".into(), json!(index));
            }
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
    }
    if request.inspection_level != InspectionLevel::Info {
        let mut data = inspection(&events, recorded);
        if !error_details.is_empty() {
            data.insert("errorDetails".into(), Value::Object(error_details));
        }
        response.inspection_data = Some(Value::Object(data));
    } else if !error_details.is_empty() {
        response.inspection_data = Some(json!({ "errorDetails": error_details }));
    }
    Ok(response)
}

/// `stateConfiguration.mapItemReaderData` as the object every ItemReader read finds.
struct ReaderData(Vec<u8>);

#[async_trait::async_trait]
impl ObjectStorage for ReaderData {
    async fn get_object(&self, _: &str, _: &str) -> Result<Vec<u8>, ObjectError> {
        Ok(self.0.clone())
    }
    async fn put_object(&self, _: &str, _: &str, _: Vec<u8>) -> Result<(), ObjectError> {
        Err(ObjectError::Unbound)
    }
    async fn list_objects(&self, _: &str, _: &str, _: Option<&str>) -> Result<ObjectPage, ObjectError> {
        Err(ObjectError::Unbound)
    }
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
/// JSON text, as AWS gives them, and the Map limits as numbers.
fn inspection(events: &[&HistoryEvent], mut recorded: Map<String, Value>) -> Map<String, Value> {
    let mut data = Map::new();
    let text = |value: &Value| Value::String(value.to_string());
    if let Some(input) = events.first().and_then(|e| e.details.input.as_ref()) {
        data.insert("input".into(), text(input));
    }
    for field in [
        "afterInputPath",
        "afterParameters",
        "afterArguments",
        "afterItemsPath",
        "afterItemSelector",
        "afterItemBatcher",
    ] {
        if let Some(value) = recorded.remove(field) {
            data.insert(field.into(), text(&value));
        }
    }
    for field in ["maxConcurrency", "toleratedFailureCount", "toleratedFailurePercentage"] {
        if let Some(value) = recorded.remove(field) {
            data.insert(field.into(), value);
        }
    }
    let task_result = events
        .iter()
        .find(|e| matches!(e.event_type, EventType::TaskSucceeded | EventType::ActivitySucceeded))
        .and_then(|e| e.details.output.clone());
    // A mocked Map or Parallel recorded its whole result.
    if let Some(result) = task_result.or_else(|| recorded.remove("result")) {
        data.insert("result".into(), text(&result));
    }
    for field in ["afterResultSelector", "afterResultPath", "variables"] {
        if let Some(value) = recorded.remove(field) {
            data.insert(field.into(), text(&value));
        }
    }
    data
}
