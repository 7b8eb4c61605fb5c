//! Files put straight into the bucket under `incoming/<dataset>/`: each version of each object
//! is registered once in the uploads ledger (source `upload#<key>#<version>`) and copied under
//! `raw/`, from where the pipeline's per-file states take it as they take a mail attachment.
//!
//! Registering is idempotent: S3 may deliver an event twice, a watcher may see a file twice,
//! and both find the ledger entry already there. A file Sluice cannot take (over
//! `stage.max_file_bytes`, outside `incoming/<dataset>/`) is recorded `skipped` with the reason,
//! so nothing put in `incoming/` vanishes without a trace.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sluice_core::dataset::DatasetName;
use sluice_core::ledger::{Ledger, LedgerEntry, LedgerRef, LedgerState};
use sluice_core::{BackendError, Config, ObjectKey, ObjectStore, Table};

use crate::names::{self, attachment_id, safe_file_name};
use crate::{META_ATTACHMENT_ID, META_FILE_NAME, META_MESSAGE_ID, META_PART_ID, META_RECEIVED_AT};

/// Where uploads go: `incoming/<dataset>/<file name>`.
pub const INCOMING_PREFIX: &str = "incoming/";
/// The ledger uploads are recorded in (partition `ledger#uploads`), beside the mailboxes'.
pub const UPLOADS_LEDGER: &str = "uploads";
/// The `message id` of an upload's provenance: it came from no message. The stage step gives
/// such files `stage.max_file_bytes`, not a mail attachment's limit.
pub const UPLOAD_MESSAGE_ID: &str = "upload";

/// An object key under `incoming/`, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingKey {
    pub key: ObjectKey,
    pub dataset: DatasetName,
    /// The path below the dataset (sub-folders are part of the name).
    pub file_name: String,
}

/// Why a key is not an upload Sluice can take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAnUpload {
    #[error("{key} is not under {INCOMING_PREFIX}")]
    OutsideIncoming { key: String },
    #[error("{key} is not under {INCOMING_PREFIX}<dataset>/: put the file in its dataset's folder")]
    NoDataset { key: String },
    #[error("{key}: {reason}")]
    BadDataset { key: String, reason: String },
    #[error("{key} is a folder, not a file")]
    Folder { key: String },
}

/// Takes `incoming/<dataset>/<name>` apart.
pub fn parse_incoming_key(key: &str) -> Result<IncomingKey, NotAnUpload> {
    let Some(rest) = key.strip_prefix(INCOMING_PREFIX) else {
        return Err(NotAnUpload::OutsideIncoming { key: key.to_string() });
    };
    if key.ends_with('/') {
        return Err(NotAnUpload::Folder { key: key.to_string() });
    }
    let Some((dataset, file_name)) = rest.split_once('/') else {
        return Err(NotAnUpload::NoDataset { key: key.to_string() });
    };
    let dataset = DatasetName::parse(dataset).map_err(|err| NotAnUpload::BadDataset {
        key: key.to_string(),
        reason: err.to_string(),
    })?;
    let key = ObjectKey::new(key).map_err(|err| NotAnUpload::BadDataset {
        key: key.to_string(),
        reason: err.to_string(),
    })?;
    Ok(IncomingKey {
        key,
        dataset,
        file_name: file_name.to_string(),
    })
}

/// The ledger source of one version of an uploaded object.
pub fn upload_source(key: &str, version: &str) -> String {
    format!("upload#{key}#{version}")
}

/// One file for the pipeline's per-file states: what a Map item carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadWork {
    pub raw_key: String,
    pub ledger: LedgerRef,
}

/// What registering an upload found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// For the pipeline: newly registered, or registered before and not yet final (an event
    /// delivered again after a crash, which must not be lost).
    Ready(UploadWork),
    /// Already final in the ledger (a duplicate event, or a file seen before): nothing to do.
    AlreadyDone { source: String, state: LedgerState },
    /// Recorded as skipped, with the reason: the file will not be processed as it is.
    Skipped { source: String, reason: String },
    /// No object at the key any more (deleted before its event was handled), or a folder
    /// placeholder: nothing to register.
    Gone,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Registers the object at `key` (as it is now) for processing, copying it under
/// `raw/<dataset>/<id>/<name>` the first time. `run` is stamped on the entry; `retry_failed`
/// takes up an entry whose processing failed before.
pub async fn register_upload(
    objects: &dyn ObjectStore,
    control: &Arc<dyn Table>,
    config: &Config,
    key: &str,
    run: Option<&str>,
    retry_failed: bool,
) -> Result<Registration, UploadError> {
    let ledger = Ledger::new(control.clone(), UPLOADS_LEDGER).for_run(run);
    // The marker an S3 console leaves for a folder: nothing to take.
    if key.ends_with('/') {
        return Ok(Registration::Gone);
    }
    let object_key = match ObjectKey::new(key) {
        Ok(object_key) => object_key,
        Err(err) => {
            let reason = format!("the key cannot be read: {err}");
            return record_skipped(&ledger, key, "unknown", "", reason, None).await;
        }
    };
    let Some(info) = objects.head(&object_key).await? else {
        tracing::warn!(key, "an upload's object is gone before it was registered");
        return Ok(Registration::Gone);
    };
    let version = info.version.clone().unwrap_or_else(|| format!("size-{}", info.size));
    let source = upload_source(key, &version);
    if let Some(existing) = ledger.get(&source).await? {
        return resume(&ledger, existing, retry_failed).await;
    }
    let incoming = match parse_incoming_key(key) {
        Ok(incoming) => incoming,
        Err(why) => return record_skipped(&ledger, key, &version, "", why.to_string(), None).await,
    };
    let limit = config.stage.max_file_bytes;
    if info.size > limit {
        let reason = format!(
            "{} bytes, over stage.max_file_bytes ({limit} bytes); raise the limit and upload it again",
            info.size
        );
        return record_skipped(&ledger, key, &version, incoming.dataset.as_str(), reason, Some(limit)).await;
    }
    let id = attachment_id(&version, UPLOAD_MESSAGE_ID, key);
    let raw_key = ObjectKey::new(format!(
        "raw/{}/{id}/{}",
        incoming.dataset,
        safe_file_name(&incoming.file_name)
    ))?;
    if objects.head(&raw_key).await?.is_none() {
        // Server-side on S3: the bytes do not pass through this process.
        let provenance = BTreeMap::from([
            (META_MESSAGE_ID.to_string(), UPLOAD_MESSAGE_ID.to_string()),
            (META_PART_ID.to_string(), names::metadata_value(key)),
            (META_RECEIVED_AT.to_string(), chrono::Utc::now().to_rfc3339()),
            (META_FILE_NAME.to_string(), names::metadata_value(&incoming.file_name)),
            (META_ATTACHMENT_ID.to_string(), id.clone()),
            ("upload-version".to_string(), names::metadata_value(&version)),
        ]);
        objects.copy(&object_key, &raw_key, &provenance).await?;
    }
    let entry = LedgerEntry {
        source: source.clone(),
        raw_key: Some(raw_key.to_string()),
        dataset: incoming.dataset.to_string(),
        message_id: UPLOAD_MESSAGE_ID.to_string(),
        part_id: key.to_string(),
        state: LedgerState::Fetched,
        reason: None,
        error: None,
        attempts: 0,
        limit: None,
        run: None,
        updated_at: chrono::Utc::now().timestamp(),
    };
    if !ledger.record(entry).await? {
        // Registered at the same moment by another delivery of the same event.
        if let Some(existing) = ledger.get(&source).await? {
            return resume(&ledger, existing, retry_failed).await;
        }
    }
    tracing::info!(key, raw_key = %raw_key, dataset = %incoming.dataset, "upload registered");
    Ok(Registration::Ready(UploadWork {
        raw_key: raw_key.to_string(),
        ledger: LedgerRef {
            mailbox: UPLOADS_LEDGER.to_string(),
            source,
            run: run.map(str::to_string),
        },
    }))
}

/// An entry registered before: ready again unless final (a failed one only when asked).
async fn resume(ledger: &Ledger, entry: LedgerEntry, retry_failed: bool) -> Result<Registration, UploadError> {
    let again = !entry.state.is_final() || (entry.state == LedgerState::Failed && retry_failed);
    match (&entry.raw_key, again) {
        (Some(raw_key), true) => {
            if entry.state == LedgerState::Failed {
                ledger
                    .advance(
                        &entry.source,
                        LedgerState::Fetched,
                        None,
                        None,
                        chrono::Utc::now().timestamp(),
                    )
                    .await?;
            }
            Ok(Registration::Ready(UploadWork {
                raw_key: raw_key.clone(),
                ledger: LedgerRef {
                    mailbox: UPLOADS_LEDGER.to_string(),
                    source: entry.source,
                    run: ledger.run().map(str::to_string),
                },
            }))
        }
        _ => Ok(Registration::AlreadyDone {
            source: entry.source,
            state: entry.state,
        }),
    }
}

async fn record_skipped(
    ledger: &Ledger,
    key: &str,
    version: &str,
    dataset: &str,
    reason: String,
    limit: Option<u64>,
) -> Result<Registration, UploadError> {
    let source = upload_source(key, version);
    let entry = LedgerEntry {
        source: source.clone(),
        raw_key: None,
        dataset: dataset.to_string(),
        message_id: UPLOAD_MESSAGE_ID.to_string(),
        part_id: key.to_string(),
        state: LedgerState::Skipped,
        reason: Some(reason.clone()),
        error: None,
        attempts: 0,
        limit,
        run: None,
        updated_at: chrono::Utc::now().timestamp(),
    };
    ledger.record(entry).await?;
    tracing::warn!(key, reason = %reason, "upload skipped");
    Ok(Registration::Skipped { source, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_keys_name_their_dataset() {
        let parsed = parse_incoming_key("incoming/orders/2026/jan.csv").unwrap();
        assert_eq!(parsed.dataset.as_str(), "orders");
        assert_eq!(parsed.file_name, "2026/jan.csv");
        for (key, expected) in [
            ("raw/orders/x.csv", "is not under incoming/"),
            ("incoming/x.csv", "put the file in its dataset's folder"),
            ("incoming/orders/", "is a folder"),
            ("incoming/Bad Name/x.csv", "incoming/Bad Name/x.csv"),
            ("incoming/../x.csv", "incoming/../x.csv"),
        ] {
            let err = parse_incoming_key(key).unwrap_err().to_string();
            assert!(err.contains(expected), "{key}: {err}");
        }
    }
}
