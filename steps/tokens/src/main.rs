//! The token-issue Lambda: issues or rotates the API keys of a dataset's consumers.

use lambda_runtime::{LambdaEvent, service_fn};
use sluice_core::{Backends, Config, StepFailure};
use sluice_tokens::issue::{TokenIssueDeps, TokenIssueInput, TokenSettings};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_core::telemetry::init();
    let config = Config::from_env()?;
    let settings = TokenSettings::from_config(&config)?;
    let backends = Backends::from_config(&config).await?;
    let deps = TokenIssueDeps::new(&backends, settings);
    lambda_runtime::run(service_fn(|event: LambdaEvent<TokenIssueInput>| {
        let deps = &deps;
        async move { sluice_tokens::run(event.payload, deps).await.map_err(StepFailure::from) }
    }))
    .await
}
