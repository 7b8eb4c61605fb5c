//! The API Gateway Lambda authorizer (REQUEST type, REST or HTTP API).

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use sluice_api::auth::lambda::authorize;
use sluice_api::{ApiSettings, Authorizer};
use sluice_core::{Backends, Config};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_core::telemetry::init();
    let config = Config::from_env()?;
    let settings = ApiSettings::from_config(&config)?;
    let backends = Backends::from_config(&config).await?;
    let authorizer = Authorizer::from_settings(&settings, &backends)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let authorizer = &authorizer;
        async move { authorize(&event.payload, authorizer).await }
    }))
    .await
}
