//! The `sluice-stage` Lambda: its step from [`sluice_functions::STAGE`], served on the Lambda
//! Runtime API.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_functions::serve_lambda(&sluice_functions::STAGE).await
}
