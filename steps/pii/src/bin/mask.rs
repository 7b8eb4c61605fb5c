//! The PII mask Lambda: builds the backends and detector once, then runs
//! `sluice_pii::steps::mask::run` per event.

use sluice_pii::PiiDeps;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, backends) = sluice_core::lambda::environment().await?;
    let deps = PiiDeps::from_config(&config, backends).await?;
    let deps = &deps;
    let control = deps.backends.control.clone();
    sluice_core::lambda::serve_tracked_step(control, |input| sluice_pii::steps::mask::run(input, deps)).await
}
