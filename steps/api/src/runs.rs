//! `POST /runs`: starts a pipeline execution through the server's [`RunStarter`].

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::routes::Operation;
pub use crate::run_starter::{MAX_RUN_INPUT_BYTES, RunStartError, RunStarted, RunStarter, StepFunctionsRunStarter};
use crate::state::ApiState;

/// Start a pipeline execution
///
/// The body, a JSON object (or nothing), is the execution's input.
#[utoipa::path(post, path = "/runs", operation_id = "startRun", tag = "runs",
    request_body(content = Option<Object>, content_type = "application/json", description = "The execution input"),
    responses(
        (status = 202, description = "Started", body = RunStarted),
        (status = 400, description = "The input is not a JSON object (`invalid_request`)", body = crate::error::ErrorBody),
        (status = 413, description = "The input is larger than 256 KiB (`payload_too_large`)", body = crate::error::ErrorBody),
        crate::schema::CommonErrors,
    ))]
pub async fn start_run(
    State(state): State<ApiState>,
    principal: Principal,
    body: Bytes,
) -> Result<(StatusCode, Json<RunStarted>), ApiError> {
    if let Some(scope) = Operation::StartRun.scope() {
        principal.require(scope, None)?;
    }
    let starter: Arc<dyn RunStarter> = state
        .run_starter()
        .ok_or_else(|| ApiError::unavailable("starting runs is not configured on this server"))?;
    if body.len() > MAX_RUN_INPUT_BYTES {
        return Err(ApiError::payload_too_large("a run's input is at most 256 KiB"));
    }
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&body).map_err(|err| {
            ApiError::invalid_request(format!(
                "the body must be a JSON object: line {} column {}",
                err.line(),
                err.column()
            ))
        })?
    };
    if !input.is_object() {
        return Err(ApiError::invalid_request("the body must be a JSON object"));
    }
    // Refused here with a 400, rather than by the execution's first state.
    sluice_core::run_options::RunOptions::from_input(&input).map_err(ApiError::invalid_request)?;
    match starter.start_run(input).await {
        Ok(started) => {
            tracing::info!(principal = %principal.subject, run_id = %started.run_id, "run started");
            Ok((StatusCode::ACCEPTED, Json(started)))
        }
        Err(RunStartError::InvalidInput(message)) => Err(ApiError::invalid_request(message)),
        Err(RunStartError::Unavailable(message)) => {
            tracing::warn!(%message, "could not start a run");
            Err(ApiError::unavailable("cannot start a run right now; retry shortly"))
        }
    }
}
