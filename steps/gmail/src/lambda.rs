//! Setup shared by the Lambda binaries: configuration from the environment, backends, Step
//! Functions for task tokens, and the OAuth dependencies, built once per container.

use std::sync::Arc;

use sluice_core::task_tokens::StepFunctionsTaskTokens;
use sluice_core::{Backends, Config};

use crate::http::https_client;
use crate::steps::OAuthDeps;

/// Everything a mail Lambda needs, from `SLUICE_*` environment variables.
pub struct LambdaContext {
    pub config: Config,
    pub backends: Backends,
    pub oauth: OAuthDeps,
    pub http: crate::http::HttpClient,
}

impl LambdaContext {
    pub async fn from_env() -> anyhow::Result<LambdaContext> {
        let (config, backends) = sluice_core::lambda::environment()
            .await
            .map_err(|err| anyhow::anyhow!(err))?;
        let sdk = sluice_core::aws::sdk_config(&config.aws).await;
        let task_tokens = Arc::new(StepFunctionsTaskTokens::new(sluice_core::aws::step_functions_client(
            &sdk,
            &config.aws,
        )));
        let http = https_client()?;
        let settings = crate::GmailSettings::from_config(&config)?;
        let oauth = OAuthDeps::new(settings, &backends, task_tokens, http.clone()).await?;
        Ok(LambdaContext {
            config,
            backends,
            oauth,
            http,
        })
    }
}
