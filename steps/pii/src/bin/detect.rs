//! The PII detect Lambda: builds the backends and detector once, then runs
//! `sluice_pii::steps::detect::run` per event.

use sluice_pii::PiiDeps;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, backends) = sluice_core::lambda::environment().await?;
    let deps = PiiDeps::from_config(&config, backends).await?;
    let deps = &deps;
    sluice_core::lambda::serve_step(|input| sluice_pii::steps::detect::run(input, deps)).await
}
