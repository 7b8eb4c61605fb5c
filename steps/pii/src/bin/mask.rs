//! The PII mask Lambda: builds the backends and detector once, then runs
//! `sluice_pii::steps::mask::run` per event.

use lambda_runtime::{LambdaEvent, service_fn};
use sluice_core::{Backends, Config, StepFailure};
use sluice_pii::PiiDeps;
use sluice_pii::steps::mask::{self, MaskInput};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_core::telemetry::init();
    let config = Config::from_env()?;
    let backends = Backends::from_config(&config).await?;
    let deps = PiiDeps::from_config(&config, backends).await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<MaskInput>| async move {
        mask::run(event.payload, deps).await.map_err(StepFailure::from)
    }))
    .await
}
