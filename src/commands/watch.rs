//! `sluice watch`: the bucket's `incoming/` folder, watched. Each file put under
//! `incoming/<dataset>/` (locally `.sluice/objects/incoming/<dataset>/`) is registered in the
//! uploads ledger and run through the pipeline's per-file states, as the `sluice-incoming`
//! Lambda does on AWS for S3's events. A file is taken once it has stopped changing; each
//! version of it once (the ledger remembers), so a restart takes up exactly what is left.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};
use sluice::runner::Pipeline;
use sluice::runner::uploads::{UploadOutcome, process_upload};
use sluice_core::{Backends, Config};
use sluice_stage::upload::INCOMING_PREFIX;

use super::run::BackendChoice;

#[derive(Args)]
pub struct WatchArgs {
    /// One pass over what is in incoming/ now, then exit (for cron, or a script).
    #[arg(long)]
    once: bool,
    /// Seconds between passes.
    #[arg(long, default_value_t = 5)]
    interval: u64,
    /// A file must look the same this many seconds apart before it is taken (it may still be
    /// being written).
    #[arg(long, default_value_t = 1)]
    settle: u64,
    /// Take up again files whose processing failed.
    #[arg(long)]
    retry_failed: bool,
    /// Print one JSON object per file.
    #[arg(long)]
    json: bool,
    #[arg(long, value_enum)]
    backend: Option<BackendChoice>,
}

pub async fn run(config_path: Option<&Path>, args: WatchArgs) -> anyhow::Result<ExitCode> {
    let (config, pipeline) = super::run::open(config_path, args.backend, None).await?;
    let backends = Backends::from_config(&config).await?;
    let settle = Duration::from_secs(args.settle);
    let mut seen = listing(&backends).await?;
    let mut failures = 0usize;
    loop {
        tokio::time::sleep(settle).await;
        let now = listing(&backends).await?;
        // Only what did not change over the settle time; the rest waits for the next pass.
        for (key, version) in &now {
            if seen.get(key) == Some(version) {
                failures += take(&pipeline, &backends, &config, key, &args).await;
            }
        }
        if args.once {
            break;
        }
        tokio::time::sleep(Duration::from_secs(args.interval).saturating_sub(settle)).await;
        seen = now;
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Every object under incoming/ with its version.
async fn listing(backends: &Backends) -> anyhow::Result<BTreeMap<String, Option<String>>> {
    Ok(backends
        .objects
        .list(INCOMING_PREFIX)
        .await?
        .into_iter()
        .map(|info| (info.key.to_string(), info.version))
        .collect())
}

/// Processes one file and prints what became of it; 1 when it failed.
async fn take(pipeline: &Pipeline, backends: &Backends, config: &Config, key: &str, args: &WatchArgs) -> usize {
    let outcome = process_upload(pipeline, backends, config, key, args.retry_failed).await;
    let (line, failed): (Value, bool) = match outcome {
        // Seen before: said nothing of, pass after pass.
        Ok(UploadOutcome::AlreadyDone { .. } | UploadOutcome::Gone) => return 0,
        Ok(UploadOutcome::Processed { source, result }) => {
            let failed = result["status"] == "failed";
            (json!({"key": key, "source": source, "result": result}), failed)
        }
        Ok(UploadOutcome::Skipped { source, reason }) => (
            json!({"key": key, "source": source, "result": {"status": "skipped", "reason": reason}}),
            false,
        ),
        Err(err) => (json!({"key": key, "error": format!("{err:#}")}), true),
    };
    if args.json {
        println!("{line}");
    } else {
        println!("{}", sentence(&line));
    }
    usize::from(failed)
}

fn sentence(line: &Value) -> String {
    let key = line["key"].as_str().unwrap_or("?");
    let result = &line["result"];
    match result["status"].as_str() {
        Some("ingested") => format!(
            "{key}: ingested into {} ({} rows written, {} rejected)",
            result["dataset"].as_str().unwrap_or("?"),
            result["rows_written"],
            result["rows_rejected"]
        ),
        Some("quarantined") => format!(
            "{key}: quarantined ({})",
            result["reason"].as_str().unwrap_or("refused")
        ),
        Some("skipped") => format!("{key}: skipped: {}", result["reason"].as_str().unwrap_or("")),
        Some("failed") => format!(
            "{key}: failed: {} (sluice watch --retry-failed takes it up again)",
            result["error"].as_str().unwrap_or("?")
        ),
        _ => format!("{key}: error: {}", line["error"].as_str().unwrap_or("?")),
    }
}
