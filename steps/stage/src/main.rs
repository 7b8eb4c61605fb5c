//! The S3 stage Lambda: `{"raw_key": "raw/..."}` in, [`sluice_stage::StageOutput`] out.

use lambda_runtime::{LambdaEvent, service_fn};
use sluice_core::{Backends, Config, StepFailure};
use sluice_stage::StageInput;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_core::telemetry::init();
    let config = Config::from_env()?;
    let backends = Backends::from_config(&config).await?;
    let (config, backends) = (&config, &backends);
    lambda_runtime::run(service_fn(|event: LambdaEvent<StageInput>| async move {
        sluice_stage::run(event.payload, backends.objects.as_ref(), config)
            .await
            .map_err(StepFailure::from)
    }))
    .await
}
