//! The DynamoDB ingest Lambda: `{"dataset", "source_key"}` in, [`sluice_ingest::IngestOutput`] out.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, backends) = sluice_core::lambda::environment().await?;
    let (config, backends) = (&config, &backends);
    sluice_core::lambda::serve_tracked_step(backends.control.clone(), |input| {
        sluice_ingest::run(input, backends, config)
    })
    .await
}
