//! `POST /runs`: starts a pipeline execution through a [`RunStarter`]: Step Functions
//! StartExecution on AWS ([`StepFunctionsRunStarter`]), the local ASL engine locally (bound by
//! the CLI, which implements the trait).

use std::sync::Arc;

use async_trait::async_trait;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::error::ApiSetupError;
use crate::routes::Operation;
use crate::server::ApiState;

/// Step Functions' limit on an execution's input.
pub const MAX_RUN_INPUT_BYTES: usize = 256 * 1024;

/// A started execution.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RunStarted {
    /// The execution ARN on AWS, the local engine's execution id locally.
    pub run_id: String,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunStartError {
    /// The input was refused (400).
    #[error("invalid run input: {0}")]
    InvalidInput(String),
    /// The engine cannot start a run now (503).
    #[error("cannot start a run now: {0}")]
    Unavailable(String),
}

/// Starts pipeline runs. Implemented for Step Functions here and for the local engine by the CLI.
#[async_trait]
pub trait RunStarter: Send + Sync {
    async fn start_run(&self, input: Value) -> Result<RunStarted, RunStartError>;
}

/// StartExecution on the configured state machine.
pub struct StepFunctionsRunStarter {
    client: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

impl StepFunctionsRunStarter {
    pub fn new(client: aws_sdk_sfn::Client, state_machine_arn: &str) -> StepFunctionsRunStarter {
        StepFunctionsRunStarter {
            client,
            state_machine_arn: state_machine_arn.to_string(),
        }
    }

    /// From the config's AWS settings and `[api] state_machine_arn`; None when no ARN is set.
    pub async fn from_config(config: &sluice_core::Config) -> Result<Option<StepFunctionsRunStarter>, ApiSetupError> {
        let settings = crate::settings::ApiSettings::from_config(config)?;
        let Some(arn) = settings.state_machine_arn else {
            return Ok(None);
        };
        let sdk = sluice_core::aws::sdk_config(&config.aws).await;
        Ok(Some(StepFunctionsRunStarter::new(
            sluice_core::aws::step_functions_client(&sdk, &config.aws),
            &arn,
        )))
    }
}

#[async_trait]
impl RunStarter for StepFunctionsRunStarter {
    async fn start_run(&self, input: Value) -> Result<RunStarted, RunStartError> {
        let output = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .input(input.to_string())
            .send()
            .await
            .map_err(|err| {
                let mapped = sluice_core::aws::sdk_error("Step Functions", "StartExecution", err);
                match &mapped {
                    sluice_core::BackendError::Aws { message, .. } if message.starts_with("InvalidExecutionInput") => {
                        RunStartError::InvalidInput("Step Functions refused the input".into())
                    }
                    _ => RunStartError::Unavailable(mapped.to_string()),
                }
            })?;
        Ok(RunStarted {
            run_id: output.execution_arn,
            started_at: DateTime::from_timestamp(output.start_date.secs(), output.start_date.subsec_nanos())
                .unwrap_or_else(Utc::now),
        })
    }
}

/// Start a pipeline execution
///
/// The body, a JSON object (or nothing), is the execution's input.
#[utoipa::path(post, path = "/runs", operation_id = "startRun", tag = "runs",
    request_body(content = Option<Object>, content_type = "application/json", description = "The execution input"),
    responses(
        (status = 202, description = "Started", body = RunStarted),
        (status = 400, description = "The input is not a JSON object (`invalid_request`)", body = crate::error::ErrorBody),
        (status = 413, description = "The input is larger than 256 KiB (`payload_too_large`)", body = crate::error::ErrorBody),
        crate::openapi::CommonErrors,
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
