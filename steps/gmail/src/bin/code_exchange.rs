//! Lambda: the manual resume. Exchanges `{"code": "..."}` (sent with SendTaskSuccess) for a token.

use lambda_runtime::{LambdaEvent, service_fn};
use sluice_core::StepFailure;
use sluice_gmail::code_exchange::{self, CodeExchangeInput};
use sluice_gmail::lambda::LambdaContext;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let context = LambdaContext::from_env().await?;
    let deps = &context.oauth;
    lambda_runtime::run(service_fn(|event: LambdaEvent<CodeExchangeInput>| async move {
        code_exchange::run(event.payload, deps).await.map_err(StepFailure::from)
    }))
    .await
}
