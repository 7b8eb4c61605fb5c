//! Uploads on the local engine: an object under `incoming/<dataset>/` registered in the
//! uploads ledger (as the `sluice-incoming` Lambda does on AWS) and run through
//! `asl/upload.asl.json`, the pipeline's own per-file states. `sluice ingest FILE` and
//! `sluice watch` both come here.

use serde_json::Value;
use sluice_core::ledger::{Ledger, LedgerEntry};
use sluice_core::{Backends, Config};
use sluice_stage::upload::{self, Registration};
use sluice_statemachine::ExecutionOutcome;

use super::{Pipeline, RunnerError, uuid_like};

/// What became of one uploaded object.
#[derive(Debug)]
pub enum UploadOutcome {
    /// It went through the per-file states: their result (`status` is `ingested`,
    /// `quarantined` or `failed`, as in a run's map results).
    Processed { source: String, result: Value },
    /// The ledger already had this very version in a final state: nothing was done again.
    AlreadyDone { entry: Option<LedgerEntry> },
    /// Recorded as skipped (too large, or outside `incoming/<dataset>/`).
    Skipped { source: String, reason: String },
    /// No object at the key any more.
    Gone,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadRunError {
    #[error("registering the upload: {0}")]
    Register(#[from] sluice_stage::upload::UploadError),
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error("reading the uploads ledger: {0}")]
    Ledger(#[from] sluice_core::BackendError),
    /// The execution itself failed (not one file: the per-file states catch those).
    #[error("the uploads execution {execution} failed: {error}: {cause}")]
    Execution {
        execution: String,
        error: String,
        cause: String,
    },
}

/// Registers the object at `key` and, unless the ledger says it is done, runs it through the
/// uploads state machine to its end.
pub async fn process_upload(
    pipeline: &Pipeline,
    backends: &Backends,
    config: &Config,
    key: &str,
    retry_failed: bool,
) -> Result<UploadOutcome, UploadRunError> {
    let run = format!("upload-{}", uuid_like());
    let registration = upload::register_upload(
        backends.objects.as_ref(),
        &backends.control,
        config,
        key,
        Some(&run),
        retry_failed,
    )
    .await?;
    let work = match registration {
        Registration::Ready(work) => work,
        Registration::AlreadyDone { source, .. } => {
            let entry = Ledger::new(backends.control.clone(), upload::UPLOADS_LEDGER)
                .get(&source)
                .await?;
            return Ok(UploadOutcome::AlreadyDone { entry });
        }
        Registration::Skipped { source, reason } => return Ok(UploadOutcome::Skipped { source, reason }),
        Registration::Gone => return Ok(UploadOutcome::Gone),
    };
    let source = work.ledger.source.clone();
    let report = pipeline.process_uploads(&run, std::slice::from_ref(&work)).await?;
    match report.outcome {
        ExecutionOutcome::Succeeded { mut output } => {
            let result = output["files"][0].take();
            Ok(UploadOutcome::Processed { source, result })
        }
        ExecutionOutcome::Failed { error, cause } => Err(UploadRunError::Execution {
            execution: report.execution_arn,
            error: error.unwrap_or_default(),
            cause: cause.unwrap_or_default(),
        }),
        // The per-file states never wait on a task token.
        ExecutionOutcome::Waiting { .. } => Err(UploadRunError::Execution {
            execution: report.execution_arn,
            error: "States.Runtime".into(),
            cause: "the uploads execution parked on a task token".into(),
        }),
    }
}
