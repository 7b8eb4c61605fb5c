//! The token-issue Lambda: issues or rotates the API keys of a dataset's consumers.

use sluice_tokens::issue::{TokenIssueDeps, TokenSettings};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, backends) = sluice_core::lambda::environment().await?;
    let deps = TokenIssueDeps::new(&backends, TokenSettings::from_config(&config)?);
    let deps = &deps;
    sluice_core::lambda::serve_step(|input| sluice_tokens::run(input, deps)).await
}
