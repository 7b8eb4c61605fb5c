//! The S3 stage Lambda: `{"raw_key": "raw/...", "ledger": {...}}` in, [`sluice_stage::StageOutput`]
//! out; the outcome moves the file's ledger entry.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, backends) = sluice_core::lambda::environment().await?;
    let (config, backends) = (&config, &backends);
    sluice_core::lambda::serve_tracked_step(backends.control.clone(), |input| {
        sluice_stage::run(input, backends.objects.as_ref(), config)
    })
    .await
}
