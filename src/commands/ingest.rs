//! `sluice ingest FILE`: one local file as an upload (put under `incoming/<dataset>/`, as a
//! user puts one in the bucket), through the pipeline's own per-file states: the S3 stage, PII
//! detection and masking under the dataset's policy, then the DynamoDB ingest, with the file's
//! entry in the uploads ledger. Nothing reaches the records table unmasked, whichever way it
//! came in.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use serde_json::Value;
use sluice::runner::uploads::{UploadOutcome, process_upload};
use sluice::runner::{Pipeline, PipelineOptions, base_dir_of};
use sluice_core::dataset::DatasetName;
use sluice_core::ledger::LedgerState;
use sluice_core::quarantine::LineProblem;
use sluice_core::{Backends, ObjectKey, PutOptions};
use sluice_ingest::IngestOutput;
use sluice_stage::upload::INCOMING_PREFIX;

#[derive(Args)]
pub struct IngestArgs {
    /// The CSV file to load.
    file: PathBuf,
    /// The dataset it belongs to (default: ingest.default_dataset).
    #[arg(long)]
    dataset: Option<String>,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    json: bool,
}

/// What `--json` prints.
#[derive(Serialize)]
struct IngestReport {
    file: String,
    dataset: String,
    rows_read: u64,
    rows_written: u64,
    rows_rejected: u64,
    rows_collapsed: u64,
    rows_overwritten: u64,
    quarantined: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    quarantine_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quarantine_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    staged_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejects_key: Option<String>,
    reasons: Vec<String>,
    /// The ledger had these very bytes final already: nothing was done again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    already_done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ledger_state: Option<String>,
}

/// Exit code when the file was quarantined or skipped (loaded nothing) rather than failing.
const EXIT_QUARANTINED: u8 = 2;

pub async fn run(config_path: Option<&Path>, args: IngestArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let dataset = args
        .dataset
        .clone()
        .unwrap_or_else(|| config.ingest.default_dataset.clone());
    let dataset = DatasetName::parse(&dataset).context("--dataset")?;
    let metadata = std::fs::metadata(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    anyhow::ensure!(metadata.is_file(), "{} is not a file", args.file.display());
    let mut report = IngestReport::new(&args.file, &dataset);
    // Refused before a byte is copied: the registration would skip it for the same limit.
    let limit = config.stage.max_file_bytes;
    if metadata.len() > limit {
        report.quarantined = true;
        report.quarantine_reason = Some("too_large".into());
        report.reasons = vec![format!(
            "{} bytes, over stage.max_file_bytes ({limit} bytes)",
            metadata.len()
        )];
        return report.print(args.json);
    }

    // The file becomes an upload, as if put in the bucket: the same registration, ledger and
    // per-file states as every file under incoming/.
    let backends = Backends::from_config(&config).await.context("opening the backends")?;
    let file_name = args
        .file
        .file_name()
        .and_then(|name| name.to_str())
        .map(sluice_stage::safe_file_name)
        .unwrap_or_else(|| "upload.csv".to_string());
    let key = ObjectKey::new(format!("{INCOMING_PREFIX}{dataset}/{file_name}"))?;
    backends
        .objects
        .put_file(&key, &args.file, &PutOptions::default())
        .await
        .with_context(|| format!("putting {} under {INCOMING_PREFIX}", args.file.display()))?;
    let pipeline = Pipeline::open(
        &config,
        backends.clone(),
        PipelineOptions {
            definition: None,
            base_dir: base_dir_of(config_path),
            decorate: None,
            show_progress: false,
            lambda_binaries: None,
            activities: None,
        },
    )
    .await?;
    let outcome = process_upload(&pipeline, &backends, &config, key.as_str(), true).await;
    // The original is kept under raw/ once registered; this command's own copy in incoming/ is
    // not needed after (a file a user put there is the user's, and stays).
    if let Err(err) = backends.objects.delete(&key).await {
        tracing::warn!(key = %key, error = %err, "could not remove the incoming copy");
    }
    let outcome = outcome.with_context(|| format!("processing {}", args.file.display()))?;
    match outcome {
        UploadOutcome::Processed { source, result } => {
            report.fill_from(&result, &backends, &source).await?;
        }
        UploadOutcome::AlreadyDone { entry } => {
            // The same bytes were taken before (the ledger has them final): nothing again.
            report.already_done = true;
            if let Some(entry) = entry {
                report.quarantined = matches!(entry.state, LedgerState::Quarantined | LedgerState::Skipped);
                report.reasons = entry.reason.into_iter().collect();
                report.ledger_state = Some(entry.state.to_string());
            }
        }
        UploadOutcome::Skipped { reason, .. } => {
            report.quarantined = true;
            report.quarantine_reason = Some("skipped".into());
            report.reasons = vec![reason];
        }
        UploadOutcome::Gone => anyhow::bail!("{key} vanished before it was registered"),
    }
    report.print(args.json)
}

impl IngestReport {
    fn new(file: &Path, dataset: &DatasetName) -> IngestReport {
        IngestReport {
            file: file.display().to_string(),
            dataset: dataset.to_string(),
            rows_read: 0,
            rows_written: 0,
            rows_rejected: 0,
            rows_collapsed: 0,
            rows_overwritten: 0,
            quarantined: false,
            quarantine_key: None,
            quarantine_reason: None,
            staged_key: None,
            rejects_key: None,
            reasons: Vec::new(),
            already_done: false,
            ledger_state: None,
        }
    }

    /// From the per-file states' result (see `FileIngested`, `FileQuarantined`, `FileFailed`).
    async fn fill_from(&mut self, result: &Value, backends: &Backends, source: &str) -> anyhow::Result<()> {
        let text = |value: &Value| value.as_str().map(str::to_string);
        match result["status"].as_str() {
            Some("ingested") => {
                let ingest: IngestOutput =
                    serde_json::from_value(result["ingest"].clone()).context("the ingest step's output")?;
                self.rows_read = ingest.rows_read;
                self.rows_written = ingest.rows_written;
                self.rows_rejected = ingest.rows_rejected;
                self.rows_collapsed = ingest.rows_collapsed;
                self.rows_overwritten = ingest.rows_overwritten;
                self.quarantined = ingest.quarantined;
                self.quarantine_key = ingest.quarantine_key.clone();
                self.rejects_key = ingest.rejects_key.clone();
                self.reasons = ingest.reasons.iter().map(LineProblem::to_string).collect();
                if ingest.quarantined {
                    self.quarantine_reason = Some("bad_rows".into());
                } else {
                    self.staged_key = text(&result["staged_key"]);
                }
            }
            Some("quarantined") => {
                self.quarantined = true;
                self.quarantine_key = text(&result["stage"]["quarantine_key"]);
                self.quarantine_reason = text(&result["stage"]["reason"]);
                if let Some(key) = &self.quarantine_key {
                    let key = ObjectKey::new(key.clone())?;
                    let reason = sluice_core::quarantine::read_reason(backends.objects.as_ref(), &key).await?;
                    self.reasons = reason.map(|r| vec![r.message]).unwrap_or_default();
                }
            }
            _ => anyhow::bail!(
                "{}: {} (the uploads ledger entry {source} says failed; `sluice ingest` again retries it)",
                result["error"].as_str().unwrap_or("failed"),
                result["cause"].as_str().unwrap_or("")
            ),
        }
        Ok(())
    }

    fn print(&self, json: bool) -> anyhow::Result<ExitCode> {
        if json {
            println!("{}", serde_json::to_string(self)?);
        } else {
            print_sentence(self);
        }
        Ok(if self.quarantined {
            ExitCode::from(EXIT_QUARANTINED)
        } else {
            ExitCode::SUCCESS
        })
    }
}

fn print_sentence(report: &IngestReport) {
    if report.already_done {
        println!(
            "{}: already taken ({}) by an earlier run; nothing done again",
            report.file,
            report.ledger_state.as_deref().unwrap_or("done")
        );
    } else if report.quarantined {
        println!(
            "{}: quarantined ({}) at {}",
            report.file,
            report.quarantine_reason.as_deref().unwrap_or("refused"),
            report.quarantine_key.as_deref().unwrap_or("?")
        );
    } else {
        println!(
            "{} -> dataset {}: {} rows read, {} written, {} rejected{}",
            report.file,
            report.dataset,
            report.rows_read,
            report.rows_written,
            report.rows_rejected,
            report
                .rejects_key
                .as_deref()
                .map(|key| format!(" (rejected rows in {key})"))
                .unwrap_or_default()
        );
    }
    if report.rows_overwritten > 0 {
        println!(
            "  warning: {} rows repeat a key written earlier in the file (the later row wins); are the key columns unique?",
            report.rows_overwritten
        );
    }
    for reason in &report.reasons {
        println!("  {reason}");
    }
}
