//! The `sluice-run-begin` Lambda: its step from [`sluice_functions::RUN_BEGIN`], served on the Lambda
//! Runtime API.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_functions::serve_lambda(&sluice_functions::RUN_BEGIN).await
}
