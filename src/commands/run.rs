//! `sluice run`, `sluice resume`, `sluice redrive`, `sluice executions`, `sluice history`: the
//! whole pipeline on the local ASL engine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use sluice::runner::{Pipeline, PipelineOptions, base_dir_of};
use sluice_core::{BackendKind, Backends, Config};
use sluice_statemachine::{ExecutionOutcome, ExecutionReport};

#[derive(Clone, Copy, ValueEnum)]
pub enum BackendChoice {
    /// A directory, a SQLite file and a 0600 secrets file under `.sluice/`.
    Local,
    /// S3, DynamoDB and Secrets Manager (`[aws]`; `aws.endpoint_url` for an emulator).
    Aws,
}

#[derive(Args)]
pub struct RunArgs {
    /// Which backends the stages use (default: `backend` in the config, else local).
    #[arg(long, value_enum)]
    backend: Option<BackendChoice>,
    /// The execution input (JSON).
    #[arg(long, default_value = "{}")]
    input: String,
    /// Another definition instead of the built-in asl/pipeline.asl.json.
    #[arg(long)]
    definition: Option<PathBuf>,
    /// Take up again the files that stayed failed after their attempts.
    #[arg(long)]
    retry_failed: bool,
    /// Invoke the real Lambda binaries in DIR (`target/debug` after `cargo build --bins`, or
    /// `target/lambda` after `cargo lambda build`) through a local Lambda Runtime API, with the
    /// timeouts, memory and environment the SAM template gives them. Needs the AWS backends.
    #[arg(long, value_name = "DIR")]
    lambda_binaries: Option<PathBuf>,
    /// The SAM template for --lambda-binaries (default: infra/template.yaml beside the config).
    #[arg(long, value_name = "PATH", requires = "lambda_binaries")]
    template: Option<PathBuf>,
}

/// Where `--lambda-binaries` finds the binaries and the template.
pub(crate) struct LambdaChoice<'a> {
    pub dir: &'a Path,
    pub template: Option<&'a Path>,
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("answer").required(true).args(["code", "output", "fail"]))]
pub struct ResumeArgs {
    /// The execution (its name, a unique prefix of it, or its ARN).
    execution: String,
    /// The OAuth code Google returned: exchanged here, so it never enters the execution's history.
    #[arg(long)]
    code: Option<String>,
    /// Answer the waiting task with this JSON output.
    #[arg(long)]
    output: Option<String>,
    /// Fail the waiting task with this error name.
    #[arg(long)]
    fail: Option<String>,
    /// The cause that goes with --fail.
    #[arg(long, requires = "fail", default_value = "failed by the operator")]
    cause: String,
    #[arg(long, value_enum)]
    backend: Option<BackendChoice>,
}

#[derive(Args)]
pub struct RedriveArgs {
    /// The FAILED, TIMED_OUT or ABORTED execution (its name, a unique prefix of it, or its ARN).
    execution: String,
    #[arg(long, value_enum)]
    backend: Option<BackendChoice>,
}

#[derive(Args)]
pub struct ExecutionsArgs {
    /// List the child executions of this map run (its ARN) instead.
    #[arg(long)]
    map_run: Option<String>,
}

#[derive(Args)]
pub struct HistoryArgs {
    /// The execution (its name, a unique prefix of it, or its ARN).
    execution: String,
    /// Print the events as JSON lines.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn open(
    config_path: Option<&Path>,
    backend: Option<BackendChoice>,
    definition: Option<&Path>,
) -> anyhow::Result<(Config, Pipeline)> {
    open_with(config_path, backend, definition, None, None).await
}

/// [`open`], with activity resources served by `activities` (the Step Functions API's queue)
/// and, with `lambda`, the functions run as their real binaries.
pub(crate) async fn open_with_activities(
    config_path: Option<&Path>,
    backend: Option<BackendChoice>,
    lambda: Option<LambdaChoice<'_>>,
    activities: std::sync::Arc<dyn sluice_statemachine::TaskHandler>,
) -> anyhow::Result<(Config, Pipeline)> {
    open_with(config_path, backend, None, lambda, Some(activities)).await
}

async fn open_with(
    config_path: Option<&Path>,
    backend: Option<BackendChoice>,
    definition: Option<&Path>,
    lambda: Option<LambdaChoice<'_>>,
    activities: Option<std::sync::Arc<dyn sluice_statemachine::TaskHandler>>,
) -> anyhow::Result<(Config, Pipeline)> {
    let mut config = super::load_config(config_path.or(default_config().as_deref()))?;
    match backend {
        Some(BackendChoice::Local) => config.backend = BackendKind::Local,
        Some(BackendChoice::Aws) => {
            config.backend = BackendKind::Aws;
            anyhow::ensure!(
                config.aws.bucket.is_some(),
                "--backend aws needs aws.bucket in the config (or SLUICE_AWS__BUCKET)"
            );
        }
        None => {}
    }
    if config.backend == BackendKind::Aws && config.aws.endpoint_url.is_some() {
        // An emulator starts empty: create the bucket and tables the run needs.
        Backends::provision_aws(&config)
            .await
            .context("provisioning the emulator's bucket and tables")?;
    }
    let lambda_binaries = match lambda {
        Some(choice) => Some(lambda_binaries(
            &config,
            config_path.or(default_config().as_deref()),
            choice,
        )?),
        None => None,
    };
    let backends = Backends::from_config(&config).await.context("opening the backends")?;
    let definition = match definition {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?),
        None => None,
    };
    let options = PipelineOptions {
        definition,
        base_dir: base_dir_of(config_path.or(default_config().as_deref())),
        decorate: None,
        show_progress: true,
        lambda_binaries,
        activities,
    };
    let pipeline = Pipeline::open(&config, backends, options).await?;
    Ok((config, pipeline))
}

/// The functions of `--lambda-binaries`, from the template, for the local configuration.
pub(crate) fn lambda_binaries(
    config: &Config,
    config_path: Option<&Path>,
    choice: LambdaChoice<'_>,
) -> anyhow::Result<sluice::runner::lambda_host::LambdaBinaries> {
    use sluice::runner::lambda_host::{LambdaBinaries, LocalRun};
    anyhow::ensure!(
        config.backend == BackendKind::Aws,
        "--lambda-binaries needs the AWS backends (--backend aws, or backend = \"aws\"; aws.endpoint_url for an \
         emulator such as moto): each binary runs in a process of its own, and the template's functions use S3, \
         DynamoDB and Secrets Manager"
    );
    let base_dir = base_dir_of(config_path);
    let template_path = choice
        .template
        .map(Path::to_path_buf)
        .unwrap_or_else(|| base_dir.join("infra/template.yaml"));
    let template = sluice::runner::template::SamTemplate::load(&template_path)?;
    let document = match config_path {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        None => String::new(),
    };
    // The SLUICE_* variables the configuration was loaded with reach the functions too.
    let overrides: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("SLUICE_")).collect();
    let binaries = LambdaBinaries::from_template(
        choice.dir,
        &template,
        &LocalRun {
            config,
            config_document: &document,
            config_overrides: &overrides,
            base_dir: &base_dir,
        },
    )
    .with_context(|| format!("reading the functions of {}", template_path.display()))?;
    for note in &binaries.notes {
        println!("note: {note}");
    }
    Ok(binaries)
}

/// With no `--config`: `./sluice.toml` (the repository root's reads the fixture mail).
pub(crate) fn default_config() -> Option<PathBuf> {
    let path = PathBuf::from("sluice.toml");
    path.is_file().then_some(path)
}

pub async fn run(config_path: Option<&Path>, args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut input: Value = serde_json::from_str(&args.input).context("--input is not JSON")?;
    if args.retry_failed {
        anyhow::ensure!(input.is_object(), "--input must be a JSON object");
        input["retry_failed"] = Value::Bool(true);
    }
    let lambda = args.lambda_binaries.as_deref().map(|dir| LambdaChoice {
        dir,
        template: args.template.as_deref(),
    });
    let (_, pipeline) = open_with(config_path, args.backend, args.definition.as_deref(), lambda, None).await?;
    abort_abandoned(&pipeline)?;
    loop {
        let started = Instant::now();
        let report = pipeline.start(input.clone()).await;
        pipeline.progress.finish();
        let report = report?;
        let code = print_outcome(&pipeline, &report, started);
        // An execution stops fetching before its history could fill; a new one goes on.
        let more_mail =
            matches!(&report.outcome, ExecutionOutcome::Succeeded { output } if output["more_mail"] == true);
        if !more_mail {
            return Ok(code);
        }
        println!("more mail remains: continuing in a new execution");
    }
}

pub async fn resume(config_path: Option<&Path>, args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let (_, pipeline) = open(config_path, args.backend, None).await?;
    let arn = pipeline.find_execution(&args.execution)?;
    let tokens = pipeline.waiting_tokens(&arn)?;
    let Some(token) = tokens.first() else {
        anyhow::bail!("execution {} is not waiting for a task answer", short_name(&arn));
    };
    let started = Instant::now();
    let report = if let Some(code) = args.code {
        // Exchange the code here, so neither the code nor the token lands in the history.
        let exchange = sluice::runner::exchange_code(&pipeline, &code).await;
        match exchange {
            Ok(status) => {
                pipeline
                    .engine
                    .send_task_success(token, json!({"status": status}))
                    .await
            }
            Err(failure) => {
                pipeline
                    .engine
                    .send_task_failure(token, &failure.error, &failure.cause)
                    .await
            }
        }
    } else if let Some(output) = args.output {
        let output: Value = serde_json::from_str(&output).context("--output is not JSON")?;
        pipeline.engine.send_task_success(token, output).await
    } else {
        let error = args.fail.unwrap_or_default();
        pipeline.engine.send_task_failure(token, &error, &args.cause).await
    };
    pipeline.progress.finish();
    Ok(print_outcome(&pipeline, &report?, started))
}

/// Marks ABORTED the executions whose process died, and says so.
fn abort_abandoned(pipeline: &Pipeline) -> anyhow::Result<()> {
    for arn in pipeline.engine.abort_abandoned()? {
        println!(
            "execution {} was left RUNNING by a process that is gone: marked ABORTED (`sluice redrive {}` finishes it)",
            short_name(&arn),
            short_name(&arn)
        );
    }
    Ok(())
}

pub async fn redrive(config_path: Option<&Path>, args: RedriveArgs) -> anyhow::Result<ExitCode> {
    let (_, pipeline) = open(config_path, args.backend, None).await?;
    let arn = pipeline.find_execution(&args.execution)?;
    let started = Instant::now();
    let report = pipeline.engine.redrive_execution(&arn).await;
    pipeline.progress.finish();
    Ok(print_outcome(&pipeline, &report?, started))
}

fn seconds_between(start: chrono::DateTime<chrono::Utc>, stop: Option<chrono::DateTime<chrono::Utc>>) -> String {
    stop.map(|stop| format!("{:.1} s", (stop - start).num_milliseconds() as f64 / 1000.0))
        .unwrap_or_else(|| "-".into())
}

pub async fn executions(config_path: Option<&Path>, args: ExecutionsArgs) -> anyhow::Result<ExitCode> {
    let (_, pipeline) = open(config_path, None, None).await?;
    pipeline.progress.finish();
    if let Some(map_run) = args.map_run {
        // Full ARNs: `sluice history ARN` shows a child's own history.
        for child in pipeline.engine.list_children(&map_run)? {
            println!(
                "{}  {:<9}  {}  {:>8}",
                child.execution_arn,
                child.status.as_str(),
                child.start_date.format("%Y-%m-%d %H:%M:%S"),
                seconds_between(child.start_date, child.stop_date)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    abort_abandoned(&pipeline)?;
    let mut all = pipeline.engine.list_executions()?;
    all.sort_by_key(|e| e.start_date);
    if all.is_empty() {
        println!("no executions yet (start one with `sluice run`)");
    }
    for execution in all {
        println!(
            "{}  {:<9}  {}  {:>8}",
            execution.name,
            execution.status.as_str(),
            execution.start_date.format("%Y-%m-%d %H:%M:%S"),
            seconds_between(execution.start_date, execution.stop_date)
        );
        if execution.status == sluice_statemachine::ExecutionStatus::Running {
            // What answers it: `sluice resume NAME`, or the task token for the Step Functions
            // API (`aws stepfunctions send-task-success --task-token ...`), as on AWS.
            for token in pipeline.waiting_tokens(&execution.execution_arn)? {
                println!("    waits on task token {token}");
            }
        }
        for map_run in pipeline.engine.list_map_runs(&execution.execution_arn)? {
            let items = map_run.item_counts;
            println!(
                "    map run {} ({}): {:?}, {} children, items {} succeeded / {} failed / {} total",
                map_run.state_name,
                map_run.map_run_arn,
                map_run.status,
                map_run.execution_counts.total,
                items.succeeded,
                items.failed,
                items.total
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn history(config_path: Option<&Path>, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let (_, pipeline) = open(config_path, None, None).await?;
    pipeline.progress.finish();
    let arn = match pipeline.find_execution(&args.execution) {
        Ok(arn) => arn,
        // A map run's child is not listed among the executions: take its ARN as given.
        Err(_) if args.execution.starts_with("arn:") => args.execution.clone(),
        Err(e) => return Err(e.into()),
    };
    for event in pipeline.engine.execution_history(&arn)? {
        if args.json {
            println!("{}", serde_json::to_string(&event)?);
        } else {
            let details = serde_json::to_value(&event.details)?;
            let state = details
                .get("name")
                .or_else(|| details.get("mapRunArn"))
                .and_then(Value::as_str)
                .unwrap_or("");
            println!(
                "{:>4}  {}  {:<28} {}",
                event.id,
                event.timestamp.format("%H:%M:%S%.3f"),
                format!("{:?}", event.event_type),
                state
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn short_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

fn print_outcome(pipeline: &Pipeline, report: &ExecutionReport, started: Instant) -> ExitCode {
    let name = short_name(&report.execution_arn);
    let elapsed = started.elapsed().as_secs_f64();
    match &report.outcome {
        ExecutionOutcome::Succeeded { output } => {
            println!("execution {name} succeeded in {elapsed:.2} s");
            print_summary(output);
            ExitCode::SUCCESS
        }
        ExecutionOutcome::Waiting { .. } => {
            println!("execution {name} is waiting for Gmail consent.");
            if let Some(url) = pipeline.consent_url.lock().ok().and_then(|u| u.clone()) {
                println!("  1. open this URL and allow read access to the mailbox:\n     {url}");
            }
            println!("  2. then either let Google redirect to the callback (`sluice serve` answers /oauth/callback),");
            println!("     or copy the `code` parameter from the redirect and run:");
            println!("     sluice resume {name} --code CODE");
            println!("  (`sluice resume {name} --fail Auth.ConsentDenied` gives up.)");
            ExitCode::SUCCESS
        }
        ExecutionOutcome::Failed { error, cause } => {
            println!(
                "execution {name} failed after {elapsed:.2} s: {}: {}",
                error.as_deref().unwrap_or("(no error name)"),
                cause.as_deref().unwrap_or("")
            );
            println!("  see `sluice history {name}`");
            ExitCode::FAILURE
        }
    }
}

fn print_summary(output: &Value) {
    if output["status"] == "mailbox_busy" {
        println!(
            "  {}",
            output["message"].as_str().unwrap_or("another run holds the mailbox")
        );
        println!(
            "  (`sluice executions` lists it; one waiting for consent ends with `sluice resume NAME --fail Auth.ConsentDenied`)"
        );
        return;
    }
    let mail = &output["mail"];
    let number = |value: &Value, key: &str| value.get(key).and_then(Value::as_u64).unwrap_or(0);
    println!(
        "  mail: {} messages listed ({} done before) in {} batch(es), {} attachments fetched, {} Gmail quota units",
        number(mail, "messages_listed"),
        number(mail, "messages_already_done"),
        number(mail, "batches"),
        number(mail, "attachments_fetched"),
        number(mail, "gmail_quota_units")
    );
    println!(
        "  work: {} files processed, {} of them left by earlier runs, {} failed ones taken up again",
        number(mail, "work_items"),
        number(mail, "work_carried_over"),
        number(mail, "work_retried")
    );
    let ledger = &output["ledger"];
    let states = |counts: &Value| -> String {
        counts
            .as_object()
            .map(|c| {
                c.iter()
                    .map(|(state, n)| format!("{} {state}", n.as_u64().unwrap_or(0)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let this_run = ledger["this_run"].as_object().cloned().unwrap_or_default();
    if let Some(datasets) = ledger["datasets"].as_object() {
        println!("  files by dataset (all runs; this run in brackets):");
        for (dataset, counts) in datasets {
            let now = this_run.get(dataset).map(states).unwrap_or_default();
            println!(
                "    {dataset}: {} [{}]",
                states(counts),
                if now.is_empty() { "nothing".into() } else { now }
            );
        }
    }
    for entry in ledger["set_aside"].as_array().into_iter().flatten() {
        println!(
            "    {} {} ({})",
            entry["state"].as_str().unwrap_or("?"),
            entry["raw_key"].as_str().or(entry["source"].as_str()).unwrap_or("?"),
            entry["reason"].as_str().unwrap_or("?")
        );
    }
    let failed_total = number(ledger, "failed_total");
    if failed_total > 0 {
        println!(
            "  {failed_total} file(s) failed (`sluice run --retry-failed` takes them up again once their attempts are spent):"
        );
        for entry in ledger["failed"].as_array().into_iter().flatten() {
            println!(
                "    failed {} ({}, {} attempt(s))",
                entry["raw_key"].as_str().unwrap_or("?"),
                entry["error"].as_str().unwrap_or("?"),
                entry["attempts"].as_u64().unwrap_or(0)
            );
        }
    }
    let not_final = number(ledger, "not_final");
    if not_final > 0 {
        println!("  {not_final} file(s) are not finished: the next run takes them up");
    }
    if output["more_mail"] == true {
        println!("  more mail remains than one execution takes (1,500 batches)");
    }
    let consumers = output["tokens"]["consumers"].as_array().cloned().unwrap_or_default();
    let changed = consumers.iter().filter(|c| c["action"] != "unchanged").count();
    println!(
        "  consumer keys: {} configured, {} issued or rotated",
        consumers.len(),
        changed
    );
    if number(mail, "attachments_fetched") == 0 && number(mail, "work_items") == 0 && changed == 0 {
        println!("  nothing new: every message was handled by an earlier run; no object, row or key changed");
    }
}
