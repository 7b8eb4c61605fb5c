//! `sluice serve`: the REST API on loopback, over the configured backends, with `POST /runs`
//! starting local executions and `GET /oauth/callback` resuming a parked one.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use sluice::runner::{LocalRunStarter, Pipeline, PipelineOptions, base_dir_of};
use sluice_core::Backends;

#[derive(Args)]
pub struct ServeArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Run the pipeline's functions as the real Lambda binaries in DIR (see `sluice run
    /// --lambda-binaries`); `GET /oauth/callback` then goes to the OAuth callback's binary, as
    /// behind the deployed HTTP API.
    #[arg(long, value_name = "DIR")]
    lambda_binaries: Option<std::path::PathBuf>,
    /// The SAM template for --lambda-binaries (default: infra/template.yaml beside the config).
    #[arg(long, value_name = "PATH", requires = "lambda_binaries")]
    template: Option<std::path::PathBuf>,
}

pub async fn run(config_path: Option<&Path>, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let default = Path::new("sluice.toml");
    let config_path = config_path.or(default.is_file().then_some(default));
    let config = super::load_config(config_path)?;
    let backends = Backends::from_config(&config).await.context("opening the backends")?;
    let lambda_binaries = match &args.lambda_binaries {
        Some(dir) => Some(super::run::lambda_binaries(
            &config,
            config_path.or(super::run::default_config().as_deref()),
            super::run::LambdaChoice {
                dir,
                template: args.template.as_deref(),
            },
        )?),
        None => None,
    };
    let options = PipelineOptions {
        definition: None,
        base_dir: base_dir_of(config_path),
        decorate: None,
        show_progress: false,
        lambda_binaries,
        activities: None,
    };
    let pipeline = Arc::new(Pipeline::open(&config, backends.clone(), options).await?);
    let callback = match &pipeline.lambda_host {
        Some(host) => sluice::runner::lambda_host::http_route(
            host.clone(),
            sluice_functions::OAUTH_CALLBACK_BINARY,
            "/oauth/callback",
        ),
        None => sluice_gmail::callback::router(pipeline.oauth.clone()),
    };
    let state = sluice_api::ApiState::from_config(&config, &backends)
        .await
        .context("setting up the API")?
        .with_run_starter(Arc::new(LocalRunStarter::new(pipeline)))
        .with_routes(callback);
    eprintln!("Sluice API on http://{} (OpenAPI: /openapi.json)", args.addr);
    sluice_api::serve(args.addr, state)
        .await
        .with_context(|| format!("serving on {}", args.addr))?;
    Ok(ExitCode::SUCCESS)
}
