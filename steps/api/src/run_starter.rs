//! The [`RunStarter`] port `POST /runs` starts executions through: Step Functions
//! StartExecution on AWS ([`StepFunctionsRunStarter`]), the local ASL engine locally (bound by
//! the CLI, which implements the trait).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::error::ApiSetupError;

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
