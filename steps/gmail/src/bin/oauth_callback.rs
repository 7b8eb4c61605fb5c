//! Lambda behind API Gateway: `GET /oauth/callback?code&state`.

use std::sync::Arc;

use sluice_gmail::callback;
use sluice_gmail::lambda::LambdaContext;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let context = LambdaContext::from_env().await?;
    lambda_http::run(callback::router(Arc::new(context.oauth))).await
}
