//! `ResultWriter`: a map run's child results exported to S3 the way AWS lays them out:
//! `<Prefix>/<map run id>/manifest.json` naming `SUCCEEDED_n.json`, `FAILED_n.json` and
//! `PENDING_n.json`, each an array of child execution results.
//! Also the `WriterConfig` transformations, which shape the results whether they go to S3 or
//! become the state's output.

use crate::errors::{StateFailure, names};
use crate::executor::run::timestamp;
use crate::json::to_compact;
use crate::model::map::{OutputType, Transformation};
use crate::objects::ObjectStorage;
use crate::store::{ExecutionRecord, ExecutionStatus};
use serde_json::{Value, json};

/// A result file is closed when it passes this size (AWS closes them at 5 GB), which bounds
/// the memory a large map run's export needs.
const RESULT_FILE_BYTES: usize = 16 * 1024 * 1024;

pub(crate) fn writer_failed(cause: impl Into<String>) -> StateFailure {
    StateFailure::new(names::RESULT_WRITER_FAILED, cause)
}

/// A child's entry in a result file (Transformation NONE).
pub(crate) fn described(child: &ExecutionRecord) -> Value {
    let mut entry = json!({
        "ExecutionArn": child.execution_arn,
        "Input": to_compact(&child.input),
        "InputDetails": {"Included": true},
        "Name": child.name,
        "RedriveCount": child.redrive_count,
        "StartDate": timestamp(child.start_date),
        "StateMachineArn": child.state_machine_arn,
        "Status": child.status.as_str(),
    });
    if let Some(stop) = child.stop_date {
        entry["StopDate"] = Value::String(timestamp(stop));
    }
    let (redrive, reason) = match child.status {
        ExecutionStatus::Succeeded => ("NOT_REDRIVABLE", "Execution is SUCCEEDED and cannot be redriven"),
        ExecutionStatus::Running => ("NOT_REDRIVABLE", "Execution is RUNNING and cannot be redriven"),
        _ => (
            "REDRIVABLE_BY_MAP_RUN",
            "Execution can be redriven by redriving its Map Run",
        ),
    };
    entry["RedriveStatus"] = Value::String(redrive.into());
    entry["RedriveStatusReason"] = Value::String(reason.into());
    match child.status {
        ExecutionStatus::Succeeded => {
            entry["Output"] = Value::String(to_compact(child.output.as_ref().unwrap_or(&Value::Null)));
            entry["OutputDetails"] = json!({"Included": true});
        }
        ExecutionStatus::Running => {}
        _ => {
            if let Some(e) = &child.error {
                entry["Error"] = Value::String(e.clone());
            }
            if let Some(c) = &child.cause {
                entry["Cause"] = Value::String(c.clone());
            }
        }
    }
    entry
}

/// What a finished child contributes to the state's output (no ResultWriter to S3).
pub(crate) fn compact(child: &ExecutionRecord, transformation: Transformation, out: &mut Vec<Value>) {
    match (child.status, transformation) {
        (_, Transformation::None) => out.push(described(child)),
        (ExecutionStatus::Succeeded, Transformation::Flatten) => match child.output.clone() {
            Some(Value::Array(items)) => out.extend(items),
            other => out.push(other.unwrap_or(Value::Null)),
        },
        (ExecutionStatus::Succeeded, _) => out.push(child.output.clone().unwrap_or(Value::Null)),
        // A failed child's result is its description, whatever the transformation (AWS).
        _ => out.push(described(child)),
    }
}

/// One status's result files, filled as children are paged through.
struct ResultFiles {
    status: &'static str,
    extension: &'static str,
    output_type: OutputType,
    buffer: Vec<u8>,
    entries: u64,
    written: Vec<Value>,
}

impl ResultFiles {
    fn new(status: &'static str, output_type: OutputType) -> Self {
        Self {
            status,
            extension: match output_type {
                OutputType::Json => "json",
                OutputType::Jsonl => "jsonl",
            },
            output_type,
            buffer: Vec::new(),
            entries: 0,
            written: Vec::new(),
        }
    }

    fn add(&mut self, entry: &Value) {
        match self.output_type {
            OutputType::Json => {
                self.buffer.push(if self.entries == 0 { b'[' } else { b',' });
                self.buffer.extend_from_slice(to_compact(entry).as_bytes());
            }
            OutputType::Jsonl => {
                self.buffer.extend_from_slice(to_compact(entry).as_bytes());
                self.buffer.push(b'\n');
            }
        }
        self.entries += 1;
    }

    async fn flush(&mut self, objects: &dyn ObjectStorage, bucket: &str, base: &str) -> Result<(), StateFailure> {
        if self.entries == 0 {
            return Ok(());
        }
        if self.output_type == OutputType::Json {
            self.buffer.push(b']');
        }
        let key = format!("{base}{}_{}.{}", self.status, self.written.len(), self.extension);
        let body = std::mem::take(&mut self.buffer);
        let size = body.len();
        objects
            .put_object(bucket, &key, body)
            .await
            .map_err(|e| writer_failed(e.to_string()))?;
        self.written.push(json!({"Key": key, "Size": size}));
        self.entries = 0;
        Ok(())
    }
}

/// Where a map run's results go.
pub(crate) struct ResultTarget {
    pub bucket: String,
    pub prefix: String,
    pub output_type: OutputType,
    pub transformation: Transformation,
}

impl ResultTarget {
    pub fn from_parameters(
        parameters: &Value,
        output_type: OutputType,
        transformation: Transformation,
    ) -> Result<Self, StateFailure> {
        let bucket = match parameters.get("Bucket") {
            Some(Value::String(b)) if !b.is_empty() => b.clone(),
            _ => return Err(writer_failed("the ResultWriter's Parameters need a Bucket (a string)")),
        };
        let prefix = match parameters.get("Prefix") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(p)) => p.clone(),
            Some(other) => {
                return Err(writer_failed(format!(
                    "the ResultWriter's Prefix must be a string, not {}",
                    to_compact(other)
                )));
            }
        };
        Ok(Self {
            bucket,
            prefix,
            output_type,
            transformation,
        })
    }

    fn base(&self, map_run_id: &str) -> String {
        let prefix = self.prefix.trim_end_matches('/');
        if prefix.is_empty() {
            format!("{map_run_id}/")
        } else {
            format!("{prefix}/{map_run_id}/")
        }
    }
}

/// Writes the result files and the manifest; returns `ResultWriterDetails`. `next_page`
/// hands out the children in index order, a page at a time, until it returns an empty page.
pub(crate) async fn write_results(
    objects: &dyn ObjectStorage,
    target: &ResultTarget,
    map_run_arn: &str,
    map_run_id: &str,
    mut next_page: impl FnMut() -> Result<Vec<ExecutionRecord>, StateFailure>,
) -> Result<(Value, u64), StateFailure> {
    let base = target.base(map_run_id);
    let mut succeeded = ResultFiles::new("SUCCEEDED", target.output_type);
    let mut failed = ResultFiles::new("FAILED", target.output_type);
    let mut pending = ResultFiles::new("PENDING", target.output_type);
    let mut written = 0u64;
    loop {
        let page = next_page()?;
        if page.is_empty() {
            break;
        }
        for child in &page {
            let files = match child.status {
                ExecutionStatus::Succeeded => &mut succeeded,
                ExecutionStatus::Running => &mut pending,
                _ => &mut failed,
            };
            let mut entries = Vec::new();
            compact(child, target.transformation, &mut entries);
            for entry in &entries {
                files.add(entry);
            }
            written += 1;
            if files.buffer.len() >= RESULT_FILE_BYTES {
                files.flush(objects, &target.bucket, &base).await?;
            }
        }
    }
    for files in [&mut succeeded, &mut failed, &mut pending] {
        files.flush(objects, &target.bucket, &base).await?;
    }
    let manifest_key = format!("{base}manifest.json");
    let manifest = json!({
        "DestinationBucket": target.bucket,
        "MapRunArn": map_run_arn,
        "ResultFiles": {
            "FAILED": failed.written,
            "PENDING": pending.written,
            "SUCCEEDED": succeeded.written,
        }
    });
    objects
        .put_object(&target.bucket, &manifest_key, to_compact(&manifest).into_bytes())
        .await
        .map_err(|e| writer_failed(e.to_string()))?;
    Ok((json!({"Bucket": target.bucket, "Key": manifest_key}), written))
}
