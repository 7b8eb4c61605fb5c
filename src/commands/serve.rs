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
}

pub async fn run(config_path: Option<&Path>, args: ServeArgs) -> anyhow::Result<ExitCode> {
    super::init_cli_tracing();
    let default = Path::new("sluice.toml");
    let config_path = config_path.or(default.is_file().then_some(default));
    let config = super::load_config(config_path)?;
    let backends = Backends::from_config(&config).await.context("opening the backends")?;
    let options = PipelineOptions {
        definition: None,
        base_dir: base_dir_of(config_path),
        decorate: None,
        show_progress: false,
        lambda_binaries: None,
    };
    let pipeline = Arc::new(Pipeline::open(&config, backends.clone(), options).await?);
    let callback = sluice_gmail::callback::router(pipeline.oauth.clone());
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
