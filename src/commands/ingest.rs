//! `sluice ingest FILE`: one local file through the pipeline's own path: the S3 stage, PII
//! detection and masking under the dataset's policy, then the DynamoDB ingest. Nothing reaches
//! the records table unmasked, whichever way it came in.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use sluice_core::Backends;
use sluice_core::quarantine::LineProblem;
use sluice_stage::{AttachmentBody, AttachmentSource, StageStatus};

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
}

/// Exit code when the file was quarantined (loaded nothing) rather than failing outright.
const EXIT_QUARANTINED: u8 = 2;

pub async fn run(config_path: Option<&Path>, args: IngestArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let backends = Backends::from_config(&config).await.context("opening the backends")?;
    let dataset = args
        .dataset
        .clone()
        .unwrap_or_else(|| config.ingest.default_dataset.clone());
    let file_name = args
        .file
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("attachment.csv")
        .to_string();
    let metadata = std::fs::metadata(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    anyhow::ensure!(metadata.is_file(), "{} is not a file", args.file.display());
    let source = AttachmentSource {
        message_id: "local-file".into(),
        part_id: file_name.clone(),
        file_name: file_name.clone(),
        received_at: metadata
            .modified()
            .map(Into::into)
            .unwrap_or_else(|_| chrono::Utc::now()),
        declared_charset: None,
    };
    let staged = sluice_stage::stage_handed_over_file(
        backends.objects.as_ref(),
        &config,
        &dataset,
        &source,
        AttachmentBody::File(args.file.clone()),
    )
    .await
    .with_context(|| format!("staging {}", args.file.display()))?;

    let mut report = IngestReport {
        file: args.file.display().to_string(),
        dataset: dataset.clone(),
        rows_read: 0,
        rows_written: 0,
        rows_rejected: 0,
        rows_collapsed: 0,
        rows_overwritten: 0,
        quarantined: false,
        quarantine_key: staged.quarantine_key.clone(),
        quarantine_reason: staged.reason.clone(),
        staged_key: staged.staged_key.clone(),
        rejects_key: None,
        reasons: Vec::new(),
    };
    let cleaned = match (staged.status, &staged.staged_key) {
        (StageStatus::Staged, Some(staged_key)) => clean(&config, &backends, &dataset, staged_key, &staged.raw_key)
            .await
            .with_context(|| format!("masking PII in {}", args.file.display()))?,
        _ => Cleaned::Refused(staged.clone()),
    };
    let staged = match cleaned {
        Cleaned::Clean(clean_key) => Ok(clean_key),
        Cleaned::Refused(outcome) => Err(outcome),
    };
    match staged {
        Ok(clean_key) => {
            let ingested = sluice_ingest::run(
                sluice_ingest::IngestInput {
                    dataset: dataset.clone(),
                    source_key: clean_key,
                },
                &backends,
                &config,
            )
            .await
            .with_context(|| format!("ingesting {}", args.file.display()))?;
            report.rows_read = ingested.rows_read;
            report.rows_written = ingested.rows_written;
            report.rows_rejected = ingested.rows_rejected;
            report.rows_collapsed = ingested.rows_collapsed;
            report.rows_overwritten = ingested.rows_overwritten;
            report.quarantined = ingested.quarantined;
            report.quarantine_key = ingested.quarantine_key.clone();
            report.rejects_key = ingested.rejects_key.clone();
            report.reasons = ingested.reasons.iter().map(LineProblem::to_string).collect();
            if ingested.quarantined {
                report.quarantine_reason = Some("bad_rows".into());
                report.staged_key = None;
            }
        }
        Err(staged) => {
            report.quarantined = true;
            report.quarantine_key = staged.quarantine_key.clone();
            report.quarantine_reason = staged.reason.clone();
            report.staged_key = None;
            let reason = match &staged.quarantine_key {
                Some(key) => {
                    let key = sluice_core::ObjectKey::new(key.clone())?;
                    sluice_core::quarantine::read_reason(backends.objects.as_ref(), &key).await?
                }
                None => None,
            };
            report.reasons = reason.map(|r| vec![r.message]).unwrap_or_default();
        }
    }

    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_sentence(&report);
    }
    Ok(if report.quarantined {
        ExitCode::from(EXIT_QUARANTINED)
    } else {
        ExitCode::SUCCESS
    })
}

enum Cleaned {
    /// The masked file, ready to ingest.
    Clean(String),
    /// Quarantined, at staging or because PII detection found the file unreadable.
    Refused(sluice_stage::StageOutput),
}

/// Detection and masking, as the pipeline's DetectPii and MaskPii states run them; a file they
/// refuse (a verdict on its content) is quarantined as the pipeline's failure branch does.
async fn clean(
    config: &sluice_core::Config,
    backends: &Backends,
    dataset: &str,
    staged_key: &str,
    raw_key: &str,
) -> anyhow::Result<Cleaned> {
    let pii = sluice_pii::PiiDeps::from_config(config, backends.clone()).await?;
    let detected = sluice_pii::steps::detect::run(
        sluice_pii::steps::detect::DetectInput {
            dataset: dataset.to_string(),
            staged_key: staged_key.to_string(),
        },
        &pii,
    )
    .await;
    let masked = match detected {
        Ok(_) => {
            sluice_pii::steps::mask::run(
                sluice_pii::steps::mask::MaskInput {
                    dataset: dataset.to_string(),
                    staged_key: staged_key.to_string(),
                    clean_key: None,
                },
                &pii,
            )
            .await
        }
        Err(err) => Err(err),
    };
    let failure = match masked {
        Ok(masked) => return Ok(Cleaned::Clean(masked.clean_key)),
        Err(err) => sluice_core::StepFailure::from(err),
    };
    if !sluice_stage::is_verdict_on_the_file(&failure.error) {
        anyhow::bail!("{}: {}", failure.error, failure.cause);
    }
    let quarantined = sluice_stage::run(
        sluice_stage::StageInput {
            raw_key: raw_key.to_string(),
            failed: Some(sluice_stage::FailedStage {
                error: failure.error,
                cause: failure.cause,
            }),
        },
        backends.objects.as_ref(),
        config,
    )
    .await?;
    Ok(Cleaned::Refused(quarantined))
}

fn print_sentence(report: &IngestReport) {
    if report.quarantined {
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
