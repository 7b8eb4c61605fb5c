//! The `sluice-auth-check` Lambda: its step from [`sluice_functions::AUTH_CHECK`], served on the Lambda
//! Runtime API.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_functions::serve_lambda(&sluice_functions::AUTH_CHECK).await
}
