//! The S3 stage: the first stop of every attachment.
//!
//! [`store_raw`] keeps the immutable original under `raw/` with its provenance (message id,
//! part id, sha256, received time); [`run`] (the Lambda) sniffs that object by content,
//! normalizes it to UTF-8 under `staged/`, or moves it to `quarantine/` with a reason.
//! Keys derive from the content hash and the source ids, so staging twice changes nothing.

mod names;
mod sniff;
pub mod upload;

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_core::dataset::DatasetName;
use sluice_core::quarantine::{self, QuarantineReason, quarantine_key};
use sluice_core::{BackendError, Config, ObjectKey, ObjectStore, PutOptions, StepError};

pub use names::{attachment_id, dataset_for_file, safe_file_name};
pub use sniff::Refusal;

/// Where an attachment came from. Ids only: no contents, no addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentSource {
    pub message_id: String,
    pub part_id: String,
    /// The name the sender gave it (untrusted).
    pub file_name: String,
    pub received_at: DateTime<Utc>,
    /// The charset the MIME part declared, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_charset: Option<String>,
}

/// An attachment's bytes: in memory (small, from Gmail) or in a file (large, local runs).
pub enum AttachmentBody {
    Bytes(bytes::Bytes),
    File(PathBuf),
}

/// The original, stored under `raw/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawObject {
    pub dataset: String,
    pub raw_key: String,
    pub attachment_id: String,
    pub sha256: String,
    pub size: u64,
    /// False when the same attachment was stored before (nothing was written).
    pub created: bool,
}

/// The stage Lambda's input: an object under `raw/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageInput {
    pub raw_key: String,
    /// Set by the state machine's failure branch: a later stage failed on this file after its
    /// retries. The staged copy is dropped and the original stays under `raw/`, so a later run
    /// can take the file up again; its ledger entry records the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<FailedStage>,
}

/// The error a later stage failed with (the `{"Error", "Cause"}` of a Catch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedStage {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    Staged,
    Quarantined,
    /// A later stage failed on the file (see [`StageInput::failed`]).
    Failed,
}

/// The stage Lambda's output: keys and small facts only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageOutput {
    pub status: StageStatus,
    pub dataset: String,
    pub attachment_id: String,
    pub raw_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_key: Option<String>,
    /// The machine-readable quarantine reason code (`invalid_encoding`, `too_large`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{key} is not an object under raw/<dataset>/<id>/: {reason}")]
    NotARawKey { key: String, reason: &'static str },
    #[error("{key} has no object")]
    Missing { key: String },
    #[error(transparent)]
    InvalidDataset(#[from] sluice_core::dataset::InvalidDatasetName),
    #[error("reading the attachment {path}: {source}")]
    ReadAttachment {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("working file for {key}: {source}")]
    Scratch {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl StepError for StageError {
    fn error_name(&self) -> &'static str {
        match self {
            StageError::NotARawKey { .. } | StageError::InvalidDataset(_) => "Stage.InvalidInput",
            StageError::Missing { .. } => "Stage.MissingObject",
            StageError::ReadAttachment { .. } | StageError::Scratch { .. } => "Stage.Io",
            StageError::Backend(err) => err.error_name(),
        }
    }
}

const META_MESSAGE_ID: &str = "source-message-id";
const META_PART_ID: &str = "source-part-id";
const META_SHA256: &str = "sha256";
const META_RECEIVED_AT: &str = "received-at";
const META_FILE_NAME: &str = "file-name";
const META_CHARSET: &str = "declared-charset";
const META_ATTACHMENT_ID: &str = "attachment-id";

/// Stores the original under `raw/<dataset>/<attachment id>/<safe name>`; an attachment already
/// stored (same content, same message and part) is not written again.
pub async fn store_raw(
    objects: &dyn ObjectStore,
    dataset: &str,
    source: &AttachmentSource,
    body: AttachmentBody,
) -> Result<RawObject, StageError> {
    DatasetName::parse(dataset)?;
    let (sha256, size) = match &body {
        AttachmentBody::Bytes(bytes) => (hex::encode(Sha256::digest(bytes)), bytes.len() as u64),
        AttachmentBody::File(path) => hash_file(path)?,
    };
    let id = attachment_id(&sha256, &source.message_id, &source.part_id);
    let key = ObjectKey::new(format!("raw/{dataset}/{id}/{}", safe_file_name(&source.file_name)))?;
    let raw = |created| RawObject {
        dataset: dataset.to_string(),
        raw_key: key.to_string(),
        attachment_id: id.clone(),
        sha256: sha256.clone(),
        size,
        created,
    };
    // Raw originals are immutable: the same attachment (or its quarantined remains) means done.
    if objects.head(&key).await?.is_some() || objects.head(&quarantine_key(&key)?).await?.is_some() {
        return Ok(raw(false));
    }
    let mut metadata = BTreeMap::from([
        (META_MESSAGE_ID.to_string(), names::metadata_value(&source.message_id)),
        (META_PART_ID.to_string(), names::metadata_value(&source.part_id)),
        (META_SHA256.to_string(), sha256.clone()),
        (META_RECEIVED_AT.to_string(), source.received_at.to_rfc3339()),
        (META_FILE_NAME.to_string(), names::metadata_value(&source.file_name)),
        (META_ATTACHMENT_ID.to_string(), id.clone()),
    ]);
    if let Some(charset) = &source.declared_charset {
        metadata.insert(META_CHARSET.to_string(), names::metadata_value(charset));
    }
    let options = PutOptions {
        metadata,
        content_type: None,
    };
    match body {
        AttachmentBody::Bytes(bytes) => objects.put_bytes(&key, bytes, &options).await?,
        AttachmentBody::File(path) => objects.put_file(&key, &path, &options).await?,
    };
    Ok(raw(true))
}

fn hash_file(path: &Path) -> Result<(String, u64), StageError> {
    let read_error = |source| StageError::ReadAttachment {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher).map_err(read_error)?;
    Ok((hex::encode(hasher.finalize()), size))
}

/// The parts of a raw key: `raw/<dataset>/<id>/<name>`.
struct RawKeyParts<'a> {
    dataset: &'a str,
    attachment_id: &'a str,
    file_name: &'a str,
}

fn parse_raw_key(key: &str) -> Result<RawKeyParts<'_>, StageError> {
    let not_raw = |reason| StageError::NotARawKey {
        key: key.to_string(),
        reason,
    };
    let mut parts = key.splitn(4, '/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("raw"), Some(dataset), Some(attachment_id), Some(file_name)) if !file_name.contains('/') => {
            if !DatasetName::is_valid(dataset) {
                return Err(not_raw("the dataset segment is not a valid dataset name"));
            }
            Ok(RawKeyParts {
                dataset,
                attachment_id,
                file_name,
            })
        }
        (Some("raw"), ..) => Err(not_raw("expected raw/<dataset>/<id>/<file name>")),
        _ => Err(not_raw("the key does not start with raw/")),
    }
}

/// The stage step: validates the raw object and writes `staged/` or moves it to `quarantine/`.
pub async fn run(input: StageInput, objects: &dyn ObjectStore, config: &Config) -> Result<StageOutput, StageError> {
    run_with_limit(input, objects, config, config.stage.max_attachment_bytes).await
}

/// [`run`], refusing files over `limit` bytes (a mail attachment's limit, or a handed-over file's).
async fn run_with_limit(
    input: StageInput,
    objects: &dyn ObjectStore,
    config: &Config,
    limit: u64,
) -> Result<StageOutput, StageError> {
    let raw_key = ObjectKey::new(input.raw_key.clone())?;
    let parts = parse_raw_key(raw_key.as_str())?;
    let staged_key = ObjectKey::new(format!(
        "staged/{}/{}/{}",
        parts.dataset,
        parts.attachment_id,
        names::csv_name(parts.file_name)
    ))?;
    let quarantined_key = quarantine_key(&raw_key)?;
    let output = |status, bytes| StageOutput {
        status,
        dataset: parts.dataset.to_string(),
        attachment_id: parts.attachment_id.to_string(),
        raw_key: raw_key.to_string(),
        staged_key: None,
        quarantine_key: None,
        reason: None,
        line: None,
        encoding: None,
        bytes,
    };

    if let Some(failed) = &input.failed {
        if is_verdict_on_the_file(&failed.error) {
            return quarantine_failed(
                objects,
                &raw_key,
                &staged_key,
                &quarantined_key,
                parts.file_name,
                failed,
                output(StageStatus::Quarantined, 0),
            )
            .await;
        }
        // Any other failure says nothing about the file: keep the original for the next attempt.
        objects.delete(&staged_key).await?;
        tracing::warn!(raw_key = %raw_key, error = %failed.error, "a later stage failed on this file");
        return Ok(StageOutput {
            reason: Some(failed.error.clone()),
            ..output(StageStatus::Failed, 0)
        });
    }

    // Idempotent: a rerun reports what the first run did.
    if let Some(staged) = objects.head(&staged_key).await? {
        return Ok(StageOutput {
            staged_key: Some(staged_key.to_string()),
            encoding: staged.metadata.get("source-encoding").cloned(),
            ..output(StageStatus::Staged, staged.size)
        });
    }
    if let Some(reason) = quarantine::read_reason(objects, &quarantined_key).await?
        && objects.head(&raw_key).await?.is_none()
    {
        return Ok(StageOutput {
            quarantine_key: Some(quarantined_key.to_string()),
            reason: Some(reason.code),
            line: reason.problems.first().map(|p| p.line),
            ..output(StageStatus::Quarantined, 0)
        });
    }

    let raw = objects.head(&raw_key).await?.ok_or_else(|| StageError::Missing {
        key: raw_key.to_string(),
    })?;
    let declared = config
        .dataset(parts.dataset)
        .encoding
        .or_else(|| raw.metadata.get(META_CHARSET).cloned())
        .and_then(|label| encoding_rs::Encoding::for_label(label.trim().as_bytes()));
    // A file put in the bucket's incoming/ is not a mail attachment: it has the larger limit.
    let limit = if raw.metadata.get(META_MESSAGE_ID).map(String::as_str) == Some(upload::UPLOAD_MESSAGE_ID) {
        config.stage.max_file_bytes
    } else {
        limit
    };
    let verdict = if raw.size > limit {
        Err(Refusal::TooLarge { size: raw.size, limit })
    } else {
        normalize_object(objects, &raw_key, declared).await?
    };
    match verdict {
        Ok((file, normalized)) => {
            let mut metadata = raw.metadata.clone();
            metadata.insert("source-encoding".into(), normalized.encoding.to_string());
            metadata.insert("raw-key".into(), names::metadata_value(raw_key.as_str()));
            let options = PutOptions {
                metadata,
                content_type: Some("text/csv; charset=utf-8".into()),
            };
            objects.put_temp_file(&staged_key, file, &options).await?;
            tracing::info!(raw_key = %raw_key, staged_key = %staged_key, encoding = normalized.encoding, "staged");
            Ok(StageOutput {
                staged_key: Some(staged_key.to_string()),
                encoding: Some(normalized.encoding.to_string()),
                ..output(StageStatus::Staged, normalized.bytes_written)
            })
        }
        Err(refusal) => {
            let reason = QuarantineReason {
                stage: "stage".into(),
                code: refusal.code().into(),
                message: refusal.describe(parts.file_name),
                source_key: raw_key.to_string(),
                problems: refusal
                    .line()
                    .map(|line| sluice_core::quarantine::LineProblem {
                        line,
                        column: None,
                        reason: refusal.describe(parts.file_name),
                    })
                    .into_iter()
                    .collect(),
                problems_truncated: false,
            };
            // A file refused for its size is not copied again (a gigabyte takes seconds):
            // its reason is recorded and the original stays under raw/.
            let moved = if matches!(refusal, Refusal::TooLarge { .. }) {
                quarantine::record_reason_in_place(objects, &raw_key, &reason).await?
            } else {
                quarantine::quarantine(objects, &raw_key, &reason).await?
            };
            tracing::warn!(raw_key = %raw_key, code = refusal.code(), "quarantined");
            Ok(StageOutput {
                quarantine_key: Some(moved.to_string()),
                reason: Some(refusal.code().to_string()),
                line: refusal.line(),
                ..output(StageStatus::Quarantined, raw.size)
            })
        }
    }
}

/// Moves a file a later stage failed on into quarantine (and drops its staged copy), so a
/// rerun does not try it again and an operator finds it with the reason.
async fn quarantine_failed(
    objects: &dyn ObjectStore,
    raw_key: &ObjectKey,
    staged_key: &ObjectKey,
    quarantined_key: &ObjectKey,
    file_name: &str,
    failed: &FailedStage,
    output: StageOutput,
) -> Result<StageOutput, StageError> {
    let code = failed.error.clone();
    if objects.head(raw_key).await?.is_some() {
        let reason = QuarantineReason {
            stage: "pipeline".into(),
            code: code.clone(),
            // The cause of a step error names keys and lines, never cell values.
            message: format!(
                "{file_name}: a later stage failed with {}: {}",
                failed.error, failed.cause
            ),
            source_key: raw_key.to_string(),
            problems: Vec::new(),
            problems_truncated: false,
        };
        quarantine::quarantine(objects, raw_key, &reason).await?;
        tracing::warn!(raw_key = %raw_key, error = %failed.error, "quarantined after a failed stage");
    }
    objects.delete(staged_key).await?;
    Ok(StageOutput {
        quarantine_key: Some(quarantined_key.to_string()),
        reason: Some(code),
        ..output
    })
}

/// Errors that say the file itself is bad (so trying again cannot help): the file is
/// quarantined. Any other failure (throttling, storage, a timeout) leaves it `failed`, for a
/// later run to take up again.
pub fn is_verdict_on_the_file(error: &str) -> bool {
    error.ends_with(".InvalidCsv") || error == "Backend.InvalidItem"
}

impl sluice_core::ledger::LedgerOutcome for StageOutput {
    fn ledger_move(&self) -> Option<sluice_core::ledger::LedgerMove> {
        use sluice_core::ledger::{LedgerMove, LedgerState};
        Some(match self.status {
            StageStatus::Staged => LedgerMove::to(LedgerState::Staged),
            StageStatus::Quarantined => LedgerMove {
                reason: Some(match (&self.reason, self.line) {
                    (Some(code), Some(line)) => format!(
                        "{code} (line {line}); see {}",
                        self.quarantine_key.as_deref().unwrap_or("quarantine/")
                    ),
                    (Some(code), None) => format!(
                        "{code}; see {}",
                        self.quarantine_key.as_deref().unwrap_or("quarantine/")
                    ),
                    _ => "refused when staged".to_string(),
                }),
                ..LedgerMove::to(LedgerState::Quarantined)
            },
            StageStatus::Failed => LedgerMove {
                error: self.reason.clone(),
                ..LedgerMove::to(LedgerState::Failed)
            },
        })
    }
}

type Verdict = Result<(tempfile::NamedTempFile, sniff::Normalized), Refusal>;

/// Decodes the raw object into a temporary UTF-8 file and checks its shape, off the async runtime.
async fn normalize_object(
    objects: &dyn ObjectStore,
    raw_key: &ObjectKey,
    declared: Option<&'static encoding_rs::Encoding>,
) -> Result<Verdict, StageError> {
    let local = objects.download(raw_key).await?;
    let source = local.open()?;
    let key = raw_key.to_string();
    let scratch = move |source| StageError::Scratch {
        key: key.clone(),
        source,
    };
    let work = move || -> Result<Verdict, StageError> {
        let mut staged = tempfile::NamedTempFile::new().map_err(&scratch)?;
        let normalized = match sniff::normalize(source, declared, staged.as_file_mut()).map_err(&scratch)? {
            Ok(normalized) => normalized,
            Err(refusal) => return Ok(Err(refusal)),
        };
        staged.as_file_mut().seek(SeekFrom::Start(0)).map_err(&scratch)?;
        let reader = std::io::BufReader::new(staged.as_file_mut());
        if let Err(refusal) = sniff::check_shape(reader) {
            return Ok(Err(refusal));
        }
        Ok(Ok((staged, normalized)))
    };
    let verdict = tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StageError::Scratch {
            key: raw_key.to_string(),
            source: std::io::Error::other(e.to_string()),
        })??;
    drop(local);
    Ok(verdict)
}

/// Stores an attachment and stages it, under the attachment limit (`stage.max_attachment_bytes`).
pub async fn stage_attachment(
    objects: &dyn ObjectStore,
    config: &Config,
    dataset: &str,
    source: &AttachmentSource,
    body: AttachmentBody,
) -> Result<StageOutput, StageError> {
    store_and_stage(
        objects,
        config,
        dataset,
        source,
        body,
        config.stage.max_attachment_bytes,
    )
    .await
}

async fn store_and_stage(
    objects: &dyn ObjectStore,
    config: &Config,
    dataset: &str,
    source: &AttachmentSource,
    body: AttachmentBody,
    limit: u64,
) -> Result<StageOutput, StageError> {
    let raw = store_raw(objects, dataset, source, body).await?;
    let input = StageInput {
        raw_key: raw.raw_key,
        failed: None,
    };
    run_with_limit(input, objects, config, limit).await
}
