//! The task-token port: how a stage answers a paused `.waitForTaskToken` task. On AWS it is
//! Step Functions' SendTaskSuccess/SendTaskFailure; locally the ASL engine implements it.

use async_trait::async_trait;
use aws_sdk_sfn::Client;

use crate::BackendError;
use crate::aws::sdk_error;

#[async_trait]
pub trait TaskTokens: Send + Sync {
    /// Resumes the waiting task with `output` (a JSON document) as its result.
    async fn send_success(&self, token: &str, output: &serde_json::Value) -> Result<(), BackendError>;

    /// Fails the waiting task with a stable error name and a cause free of secrets.
    async fn send_failure(&self, token: &str, error: &str, cause: &str) -> Result<(), BackendError>;
}

/// Step Functions, or an emulator at the configured endpoint.
pub struct StepFunctionsTaskTokens {
    client: Client,
}

const SERVICE: &str = "StepFunctions";

impl StepFunctionsTaskTokens {
    pub fn new(client: Client) -> Self {
        StepFunctionsTaskTokens { client }
    }
}

#[async_trait]
impl TaskTokens for StepFunctionsTaskTokens {
    async fn send_success(&self, token: &str, output: &serde_json::Value) -> Result<(), BackendError> {
        self.client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "SendTaskSuccess", e))?;
        Ok(())
    }

    async fn send_failure(&self, token: &str, error: &str, cause: &str) -> Result<(), BackendError> {
        self.client
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "SendTaskFailure", e))?;
        Ok(())
    }
}
