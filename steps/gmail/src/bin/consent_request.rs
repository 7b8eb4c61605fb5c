//! Lambda, run as a `.waitForTaskToken` task: parks the task token with a single-use OAuth
//! state and PKCE verifier, and logs the consent URL.

use lambda_runtime::{LambdaEvent, service_fn};
use sluice_core::StepFailure;
use sluice_gmail::consent_request::{self, ConsentRequestInput};
use sluice_gmail::lambda::LambdaContext;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let context = LambdaContext::from_env().await?;
    let deps = &context.oauth;
    lambda_runtime::run(service_fn(|event: LambdaEvent<ConsentRequestInput>| async move {
        consent_request::run(event.payload, deps)
            .await
            .map_err(StepFailure::from)
    }))
    .await
}
