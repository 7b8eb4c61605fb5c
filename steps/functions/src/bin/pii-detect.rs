//! The `sluice-pii-detect` Lambda: its step from [`sluice_functions::PII_DETECT`], served on the Lambda
//! Runtime API.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_functions::serve_lambda(&sluice_functions::PII_DETECT).await
}
