//! Lambda, run as a `.waitForTaskToken` task: parks the task token with a single-use OAuth
//! state and PKCE verifier, and logs the consent URL.

use sluice_gmail::consent_request;
use sluice_gmail::lambda::LambdaContext;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let context = LambdaContext::from_env().await?;
    let deps = &context.oauth;
    sluice_core::lambda::serve_step(|input| consent_request::run(input, deps)).await
}
