//! The `sluice-ingest` Lambda: its step from [`sluice_functions::INGEST`], served on the Lambda
//! Runtime API.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_functions::serve_lambda(&sluice_functions::INGEST).await
}
