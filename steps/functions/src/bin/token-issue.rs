//! The `sluice-token-issue` Lambda: its step from [`sluice_functions::TOKEN_ISSUE`], served on the Lambda
//! Runtime API.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_functions::serve_lambda(&sluice_functions::TOKEN_ISSUE).await
}
