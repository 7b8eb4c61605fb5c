//! Lambda: is there a usable Gmail token? Returns `{"status": "authorized" | "consent_required"}`.

use sluice_gmail::auth_check;
use sluice_gmail::lambda::LambdaContext;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let context = LambdaContext::from_env().await?;
    let deps = &context.oauth;
    sluice_core::lambda::serve_step(|input| auth_check::run(input, deps)).await
}
