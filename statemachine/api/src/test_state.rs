//! `TestState`: the request's members (`definition`, `input`, `variables`, `stateName`,
//! `inspectionLevel`, `mock` with `fieldValidationMode`, `context`, `stateConfiguration`) as
//! the engine's TestState takes them, and its errors as AWS names them.

use serde_json::{Value, json};
use sluice_statemachine::Engine;

use crate::protocol::{ApiError, Request};
use crate::{engine_error, internal};

/// One state run once on a fresh engine whose clock does not wait, its Task (or Map, or
/// Parallel) answered by the request's mock: this engine calls no AWS service.
pub(crate) async fn test_state(request: &Request) -> Result<Value, ApiError> {
    use sluice_statemachine::test_state::{
        FieldValidationMode, InspectionLevel, StateConfiguration, TestStateError, TestStateMock, TestStateRequest,
    };
    let definition: Value = serde_json::from_str(request.required("definition")?)
        .map_err(|e| ApiError::client("InvalidDefinition", format!("Invalid State Machine Definition: '{e}'")))?;
    let json_member = |field: &str, default: Value| -> Result<Value, ApiError> {
        match request.optional(field)? {
            None => Ok(default),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| ApiError::client("InvalidExecutionInput", format!("{field} is not JSON text: {e}"))),
        }
    };
    let input = json_member("input", json!({}))?;
    let variables = match json_member("variables", json!({}))? {
        Value::Object(variables) => variables,
        _ => return Err(ApiError::validation("variables must be a JSON object")),
    };
    let level = request.optional("inspectionLevel")?.unwrap_or("INFO");
    let inspection_level = InspectionLevel::named(level)
        .ok_or_else(|| ApiError::validation(format!("inspectionLevel must be INFO, DEBUG or TRACE, not {level}")))?;
    let (mock, field_validation) = match request.body.get("mock") {
        None | Some(Value::Null) => (None, FieldValidationMode::default()),
        Some(mock) => {
            let (mock, mode) = TestStateMock::from_member(mock).map_err(ApiError::validation)?;
            (Some(mock), mode)
        }
    };
    let context = match request.optional("context")? {
        None => None,
        Some(text) => Some(
            serde_json::from_str(text).map_err(|e| ApiError::validation(format!("context is not JSON text: {e}")))?,
        ),
    };
    let configuration = match request.body.get("stateConfiguration") {
        None | Some(Value::Null) => StateConfiguration::default(),
        Some(member) => StateConfiguration::from_member(member).map_err(ApiError::validation)?,
    };
    let test = TestStateRequest {
        definition,
        name: request
            .optional("stateName")?
            .unwrap_or(sluice_statemachine::test_state::DEFAULT_STATE_NAME)
            .to_string(),
        input,
        variables,
        inspection_level,
        mock,
        field_validation,
        context,
        configuration,
    };
    let engine = Engine::new(sluice_statemachine::TaskRegistry::new());
    match sluice_statemachine::test_state::test_state(engine, test).await {
        Ok(response) => serde_json::to_value(response).map_err(internal),
        Err(TestStateError::Invalid(message)) => Err(ApiError::client(
            "InvalidDefinition",
            format!("Invalid State Machine Definition: '{message}'"),
        )),
        Err(TestStateError::Engine(err)) => Err(engine_error(err)),
        Err(other) => Err(ApiError::validation(other.to_string())),
    }
}
