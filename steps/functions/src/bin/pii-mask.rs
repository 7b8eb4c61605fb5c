//! The `sluice-pii-mask` Lambda: its step from [`sluice_functions::PII_MASK`], served on the Lambda
//! Runtime API.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_functions::serve_lambda(&sluice_functions::PII_MASK).await
}
