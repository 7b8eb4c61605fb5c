//! What every Lambda `main` does first: logs, configuration and backends, once per process.
//! (The pipeline functions are served by `sluice_functions::serve_lambda`.)

use crate::{Backends, Config};

/// Starts logging, reads the configuration from the environment and builds its backends.
pub async fn environment() -> Result<(Config, Backends), lambda_runtime::Error> {
    crate::telemetry::init();
    let config = Config::from_env()?;
    let backends = Backends::from_config(&config).await?;
    Ok((config, backends))
}
