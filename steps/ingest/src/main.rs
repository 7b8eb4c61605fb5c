//! The DynamoDB ingest Lambda: `{"dataset", "source_key"}` in, [`sluice_ingest::IngestOutput`] out.

use lambda_runtime::{LambdaEvent, service_fn};
use sluice_core::{Backends, Config, StepFailure};
use sluice_ingest::IngestInput;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_core::telemetry::init();
    let config = Config::from_env()?;
    let backends = Backends::from_config(&config).await?;
    let (config, backends) = (&config, &backends);
    lambda_runtime::run(service_fn(|event: LambdaEvent<IngestInput>| async move {
        sluice_ingest::run(event.payload, backends, config)
            .await
            .map_err(StepFailure::from)
    }))
    .await
}
