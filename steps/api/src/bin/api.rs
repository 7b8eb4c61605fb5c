//! The API Lambda (API Gateway or a function URL, through lambda_http).

use std::sync::Arc;

use sluice_api::{ApiState, StepFunctionsRunStarter};
use sluice_core::{Backends, Config};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    sluice_core::telemetry::init();
    let config = Config::from_env()?;
    let backends = Backends::from_config(&config).await?;
    let mut state = ApiState::from_config(&config, &backends).await?;
    if let Some(starter) = StepFunctionsRunStarter::from_config(&config).await? {
        state = state.with_run_starter(Arc::new(starter));
    }
    lambda_http::run(sluice_api::router(state)).await
}
