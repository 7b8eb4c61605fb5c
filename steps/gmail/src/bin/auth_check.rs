//! Lambda: is there a usable Gmail token? Returns `{"status": "authorized" | "consent_required"}`.

use lambda_runtime::{LambdaEvent, service_fn};
use sluice_core::StepFailure;
use sluice_gmail::auth_check::{self, AuthCheckInput};
use sluice_gmail::lambda::LambdaContext;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let context = LambdaContext::from_env().await?;
    let deps = &context.oauth;
    lambda_runtime::run(service_fn(|event: LambdaEvent<AuthCheckInput>| async move {
        auth_check::run(event.payload, deps).await.map_err(StepFailure::from)
    }))
    .await
}
