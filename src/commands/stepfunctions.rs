//! `sluice stepfunctions serve`: the Step Functions API (AWS JSON 1.0) on the local engine and
//! its durable store, so the aws CLI, boto3 and the AWS SDKs drive Sluice's engine as they drive
//! AWS. The pipeline's own state machines are there from the start (`sluice-pipeline`,
//! `sluice-uploads`), bound to the in-process functions as `sluice run` binds them.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use sluice::runner::{STATE_MACHINE_NAME, UPLOAD_STATE_MACHINE_NAME};
use std::sync::Arc;

use sluice_sfn_api::StepFunctionsService;
use sluice_sfn_api::activities::{Activities, ActivityHandler};
use sluice_sfn_api::registry::Registry;

use super::run::BackendChoice;

#[derive(Subcommand)]
pub enum StepFunctionsCommand {
    /// Serve the Step Functions API on the local engine (point `--endpoint-url` here).
    Serve(ServeArgs),
}

#[derive(Args)]
pub struct ServeArgs {
    /// Where to listen (loopback by default: requests are not authenticated).
    #[arg(long, default_value = "127.0.0.1:8083")]
    addr: SocketAddr,
    /// Which backends the pipeline's functions use (default: `backend` in the config).
    #[arg(long, value_enum)]
    backend: Option<BackendChoice>,
    /// A Step Functions Local mock config: StartExecution of `<state machine ARN>#<test case>`
    /// answers that test case's Task states from it.
    #[arg(long, value_name = "FILE")]
    mock_config: Option<std::path::PathBuf>,
    /// Run the functions bound to Lambda ARNs as the real Lambda binaries in DIR (see `sluice
    /// run --lambda-binaries`; needs the AWS backends).
    #[arg(long, value_name = "DIR")]
    lambda_binaries: Option<std::path::PathBuf>,
    /// The SAM template for --lambda-binaries (default: infra/template.yaml beside the config).
    #[arg(long, value_name = "PATH", requires = "lambda_binaries")]
    template: Option<std::path::PathBuf>,
}

pub async fn run(config_path: Option<&Path>, command: StepFunctionsCommand) -> anyhow::Result<ExitCode> {
    let StepFunctionsCommand::Serve(args) = command;
    // Activities are queued in the same file the engine keeps executions in.
    let data_dir = super::load_config(config_path)?.data_dir;
    sluice_core::private::private_dir(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let store = data_dir.join("sluice.db");
    let activities =
        Activities::open(&store).with_context(|| format!("opening the activities in {}", store.display()))?;
    let lambda = args.lambda_binaries.as_deref().map(|dir| super::run::LambdaChoice {
        dir,
        template: args.template.as_deref(),
    });
    let (_config, pipeline) = super::run::open_with_activities(
        config_path,
        args.backend,
        lambda,
        Arc::new(ActivityHandler(activities.clone())),
    )
    .await?;
    let registry =
        Registry::open(&store).with_context(|| format!("opening the state machines in {}", store.display()))?;
    let service = match &args.mock_config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let mocks = sluice_statemachine::MockConfig::from_json(&text)
                .with_context(|| format!("the mock config {}", path.display()))?;
            StepFunctionsService::with_mocks(pipeline.engine.clone(), registry, activities, mocks)
        }
        None => StepFunctionsService::new(pipeline.engine.clone(), registry, activities),
    };
    for (name, machine) in [
        (STATE_MACHINE_NAME, &pipeline.machine),
        (UPLOAD_STATE_MACHINE_NAME, &pipeline.uploads),
    ] {
        service
            .register(name, machine.definition())
            .map_err(|e| anyhow::anyhow!("registering {name}: {}", e.message))?;
    }
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("listening on {}", args.addr))?;
    let bound = listener.local_addr()?;
    println!(
        "Step Functions API on http://{bound} (state machines {STATE_MACHINE_NAME} and {UPLOAD_STATE_MACHINE_NAME} registered); \
         e.g. aws stepfunctions list-state-machines --endpoint-url http://{bound}"
    );
    let pipeline = Arc::new(pipeline);
    tokio::spawn(announce_consent(pipeline.clone(), bound));
    service
        .serve(listener)
        .await
        .context("serving the Step Functions API")?;
    // Keeps the pipeline (its Lambda host, if any) alive while serving.
    drop(pipeline);
    Ok(ExitCode::SUCCESS)
}

/// Tells the operator, on this server's output, when a pipeline execution waits for Gmail
/// consent: the consent URL, and the command that answers its task with the code Google gives
/// (as on AWS, where the token is in the execution's history).
async fn announce_consent(pipeline: Arc<sluice::runner::Pipeline>, bound: SocketAddr) {
    // Executions already announced: each is looked into (its record loaded) once, however
    // long it waits, and forgotten once it no longer runs.
    let mut announced: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let latest = pipeline.consent_url.lock().ok().and_then(|url| url.clone());
        let Some(latest) = latest else { continue };
        let Ok(executions) = pipeline.engine.list_executions() else {
            continue;
        };
        let running: Vec<_> = executions
            .iter()
            .filter(|e| e.state_machine_name == STATE_MACHINE_NAME && e.status.as_str() == "RUNNING")
            .collect();
        announced.retain(|arn| running.iter().any(|e| &e.execution_arn == arn));
        for execution in running {
            if announced.contains(&execution.execution_arn) {
                continue;
            }
            let Ok(tokens) = pipeline.waiting_tokens(&execution.execution_arn) else {
                continue;
            };
            let own = pipeline
                .consent_urls
                .lock()
                .ok()
                .and_then(|urls| urls.get(&execution.execution_arn).cloned());
            let url = own.as_deref().unwrap_or(&latest);
            for token in &tokens {
                println!(
                    "execution {} waits for Gmail consent: open {url}\n  then: aws stepfunctions send-task-success --endpoint-url http://{bound} --task-token {token} --task-output '{{\"code\": \"<the code Google gave>\"}}'",
                    execution.name
                );
            }
            if !tokens.is_empty() {
                announced.insert(execution.execution_arn.clone());
            }
        }
    }
}
