//! The `sluice-pii-detect` Lambda: its step from [`sluice_functions::FUNCTIONS`], served on the Lambda
//! Runtime API.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_functions::serve_lambda("sluice-pii-detect").await
}
