//! Lambda: the manual resume. Exchanges `{"code": "..."}` (sent with SendTaskSuccess) for a token.

use sluice_gmail::code_exchange;
use sluice_gmail::lambda::LambdaContext;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let context = LambdaContext::from_env().await?;
    let deps = &context.oauth;
    sluice_core::lambda::serve_step(|input| code_exchange::run(input, deps)).await
}
