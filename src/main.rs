//! `sluice`: run the pipeline's stages locally, inspect what they stored, and drive the ASL
//! engine. Each subcommand lives in `commands/`.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Ingest moves millions of small allocations between the CSV reader's thread and the writer's;
// mimalloc frees across threads far more cheaply than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Gmail attachments to a PII-safe, token-guarded dataset"
)]
struct Cli {
    /// The configuration file (default: ./sluice.toml when it exists, else built-in defaults).
    #[arg(long, global = true, env = "SLUICE_CONFIG_FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load one local CSV file as an upload (stage, PII, ingest; its own ledger entry) and print
    /// the counts.
    Ingest(commands::ingest::IngestArgs),
    /// Watch the bucket's incoming/ folder: each file put under incoming/<dataset>/ is loaded
    /// once, as on AWS.
    Watch(commands::watch::WatchArgs),
    /// Read stored records.
    #[command(subcommand)]
    Records(commands::records::RecordsCommand),
    /// Serve the REST API (records, POST /runs, the OAuth callback) on loopback.
    Serve(commands::serve::ServeArgs),
    /// Call the REST API as a consumer (a client-credentials token from [tokens.clients]).
    #[command(subcommand)]
    Api(commands::api::ApiCommand),
    /// Print (or write) the API consumers' Cognito stack that infra/template.yaml nests.
    CognitoTemplate(commands::cognito::CognitoTemplateArgs),
    /// Find PII in text.
    #[command(subcommand)]
    Pii(commands::pii::PiiCommand),
    /// The Step Functions API on the local engine, for the aws CLI and the AWS SDKs.
    #[command(subcommand)]
    Stepfunctions(commands::stepfunctions::StepFunctionsCommand),
    /// Run the whole pipeline (asl/pipeline.asl.json) on the local engine.
    Run(commands::run::RunArgs),
    /// Answer the task a parked execution waits on (the Gmail consent) and continue it.
    Resume(commands::run::ResumeArgs),
    /// Restart a FAILED, TIMED_OUT or ABORTED execution from the state that did not finish.
    Redrive(commands::run::RedriveArgs),
    /// List the local executions and their map runs (marking ABORTED those whose process died).
    Executions(commands::run::ExecutionsArgs),
    /// Show an execution's history events.
    History(commands::run::HistoryArgs),
    /// Draw a state machine as SVG, optionally with the path an execution took.
    Graph(commands::graph::GraphArgs),
    /// Validate state machine definitions, reporting every problem with its location.
    Validate(commands::asl::ValidateArgs),
    /// Execute a state machine definition with the local ASL engine and print its output.
    Exec(commands::asl::ExecArgs),
    /// Run recorded ASL conformance cases and print `N passed, M failed`.
    Conformance(commands::asl::ConformanceArgs),
    /// Run one state once, as AWS's TestState API does, and print TestState's response.
    TestState(commands::asl::TestStateArgs),
}

fn main() -> ExitCode {
    sluice_core::telemetry::install_crypto_provider();
    let cli = Cli::parse();
    // Held to the end, so the log lines still buffered are written before the process exits.
    let _logs = commands::init_cli_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Ingest(args) => commands::ingest::run(cli.config.as_deref(), args).await,
            Command::Watch(args) => commands::watch::run(cli.config.as_deref(), args).await,
            Command::Records(command) => commands::records::run(cli.config.as_deref(), command).await,
            Command::Serve(args) => commands::serve::run(cli.config.as_deref(), args).await,
            Command::Api(command) => commands::api::run(cli.config.as_deref(), command).await,
            Command::CognitoTemplate(args) => commands::cognito::run(cli.config.as_deref(), args),
            Command::Pii(command) => commands::pii::run(cli.config.as_deref(), command).await,
            Command::Run(args) => commands::run::run(cli.config.as_deref(), args).await,
            Command::Stepfunctions(command) => commands::stepfunctions::run(cli.config.as_deref(), command).await,
            Command::Resume(args) => commands::run::resume(cli.config.as_deref(), args).await,
            Command::Redrive(args) => commands::run::redrive(cli.config.as_deref(), args).await,
            Command::Executions(args) => commands::run::executions(cli.config.as_deref(), args).await,
            Command::History(args) => commands::run::history(cli.config.as_deref(), args).await,
            Command::Graph(args) => commands::graph::run(cli.config.as_deref(), args).await,
            Command::Validate(args) => Ok(commands::asl::validate(args)),
            Command::Exec(args) => Ok(commands::asl::exec(args).await),
            Command::Conformance(args) => Ok(commands::asl::conformance(args).await),
            Command::TestState(args) => Ok(commands::asl::test_state(args).await),
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
