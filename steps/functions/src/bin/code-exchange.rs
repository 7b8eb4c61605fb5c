//! The `sluice-code-exchange` Lambda: its step from [`sluice_functions::CODE_EXCHANGE`], served on the Lambda
//! Runtime API.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_functions::serve_lambda(&sluice_functions::CODE_EXCHANGE).await
}
