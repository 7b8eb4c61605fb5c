//! The `sluice-consent-request` Lambda: its step from [`sluice_functions::CONSENT_REQUEST`], served on the Lambda
//! Runtime API.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_functions::serve_lambda(&sluice_functions::CONSENT_REQUEST).await
}
