//! `sluice validate`, `sluice exec`, `sluice conformance`, `sluice test-state`: the ASL engine on
//! its own.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use sluice::asl as cli;

#[derive(Args)]
pub struct ValidateArgs {
    /// State machine definitions (ASL JSON).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Args)]
pub struct ExecArgs {
    /// The state machine definition (ASL JSON).
    #[arg(long)]
    definition: PathBuf,
    /// The execution input (JSON).
    #[arg(long, default_value = "{}")]
    input: String,
    /// A Step Functions Local mock config file whose responses drive the Task states.
    #[arg(long, requires = "test_case")]
    mock_config: Option<PathBuf>,
    /// The test case of the mock config to use.
    #[arg(long, requires = "mock_config")]
    test_case: Option<String>,
    /// The S3 stand-in of a Distributed Map's ItemReader and ResultWriter: object `KEY` of
    /// bucket `BUCKET` is the file `DIR/BUCKET/KEY`.
    #[arg(long, value_name = "DIR")]
    s3_dir: Option<PathBuf>,
    /// Waits, retry intervals and timeouts take no real time, while the clock (and so the
    /// history's and the context object's timestamps) moves as if they had.
    #[arg(long)]
    virtual_clock: bool,
}

#[derive(Args)]
pub struct ConformanceArgs {
    /// A JSON-lines file of recorded cases (see shared/asl-conformance/README.md).
    file: PathBuf,
    /// Only the cases of this category.
    #[arg(long)]
    category: Option<String>,
    /// Seed each case's S3 objects into `DIR/BUCKET/KEY` (in memory without it).
    #[arg(long, value_name = "DIR")]
    s3_dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct TestStateArgs {
    /// The state's definition (or a whole state machine's, with --state-name choosing the
    /// state): a JSON object, or a file holding one.
    #[arg(long)]
    definition: String,
    /// The state's name (what its context shows and a mock answers); in a whole state
    /// machine, the state to test (default: its StartAt).
    #[arg(long, default_value = sluice_statemachine::test_state::DEFAULT_STATE_NAME)]
    state_name: String,
    /// The state's input (JSON).
    #[arg(long, default_value = "{}")]
    input: String,
    /// Workflow variables set before the state runs (a JSON object).
    #[arg(long)]
    variables: Option<String>,
    /// INFO, DEBUG (adds what the state was given and returned) or TRACE.
    #[arg(long, default_value = "INFO", value_parser = ["INFO", "DEBUG", "TRACE"])]
    inspection_level: String,
    /// A Task's mocked answer, or a Map's or Parallel's whole result: `{"result": "<JSON
    /// text>"}` or `{"errorOutput": {"error": "...", "cause": "..."}}`, with an optional
    /// `"fieldValidationMode": "STRICT" | "PRESENT" | "NONE"`, as TestState's `mock` takes it.
    #[arg(long)]
    mock: Option<String>,
    /// A JSON object laid over the Context object the state sees (with --mock only).
    #[arg(long)]
    context: Option<String>,
    /// TestState's stateConfiguration: `{"retrierRetryCount": N, "errorCausedByState": "...",
    /// "mapIterationFailureCount": N, "mapItemReaderData": "..."}`.
    #[arg(long)]
    state_configuration: Option<String>,
}

pub async fn test_state(args: TestStateArgs) -> ExitCode {
    let request = cli::TestStateCli {
        definition: &args.definition,
        state_name: &args.state_name,
        input: &args.input,
        variables: args.variables.as_deref(),
        inspection_level: &args.inspection_level,
        mock: args.mock.as_deref(),
        context: args.context.as_deref(),
        state_configuration: args.state_configuration.as_deref(),
    };
    exit(cli::test_state(request, &mut std::io::stdout()).await)
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

pub fn validate(args: ValidateArgs) -> ExitCode {
    let paths: Vec<&std::path::Path> = args.files.iter().map(PathBuf::as_path).collect();
    exit(cli::validate_files(&paths, &mut std::io::stdout()))
}

pub async fn exec(args: ExecArgs) -> ExitCode {
    let setup = cli::ExecSetup {
        mock_config: args.mock_config.as_deref(),
        test_case: args.test_case.as_deref(),
        s3_dir: args.s3_dir.as_deref(),
        virtual_clock: args.virtual_clock,
    };
    let code = cli::exec(&args.definition, &args.input, setup, &mut std::io::stdout()).await;
    exit(code)
}

pub async fn conformance(args: ConformanceArgs) -> ExitCode {
    let (_, failed) = cli::conformance(
        &args.file,
        args.category.as_deref(),
        args.s3_dir.as_deref(),
        &mut std::io::stdout(),
    )
    .await;
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
