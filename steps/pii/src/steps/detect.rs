//! The detect step: counts the PII in a staged CSV by column and type and writes the report
//! beside it (`<name>.pii-report.json`), and the findings the mask step reuses
//! (`<name>.pii-findings`, see [`super::findings`]). Both hold counts or positions, never values.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sluice_core::{ObjectKey, PutOptions};

use super::findings::{FINDINGS_KEY_NAME, FindingsWriter, Stamp, findings_key};
use super::{CountsByColumn, CsvBatches, PiiDeps, check_input, detect_rows, io_error};
use crate::error::PiiError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectInput {
    pub dataset: String,
    pub staged_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectOutput {
    pub dataset: String,
    pub staged_key: String,
    pub report_key: String,
    pub engine: String,
    pub rows: u64,
    /// Entities at or above the policy's minimum score, in all columns.
    pub entities: u64,
    pub contains_pii: bool,
}

/// The report object's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectReport {
    pub dataset: String,
    pub staged_key: String,
    pub engine: String,
    pub rows: u64,
    pub entities: u64,
    /// Column -> entity type -> count.
    pub by_column: CountsByColumn,
    /// Entity type -> count.
    pub by_type: std::collections::BTreeMap<String, u64>,
}

/// The report key of a staged object: same folder, `<file name>.pii-report.json`.
pub fn report_key(staged: &ObjectKey) -> Result<ObjectKey, PiiError> {
    Ok(staged.with_file_name(&format!("{}.pii-report.json", staged.file_name()))?)
}

pub async fn run(input: DetectInput, deps: &PiiDeps) -> Result<DetectOutput, PiiError> {
    let staged = check_input(&input.dataset, &input.staged_key)?;
    let policy = deps.policies.for_dataset(&input.dataset);
    let local = deps.backends.objects.download(&staged).await?;
    let stamp = Stamp::of(local.path(), &deps.detector.fingerprint(), &policy, deps.batch_bytes)
        .map_err(io_error("read the staged CSV"))?;
    let signing_key = sluice_core::secrets::key_or_create(deps.backends.secrets.as_ref(), FINDINGS_KEY_NAME).await?;
    let mut findings = FindingsWriter::new(&stamp, &signing_key).map_err(io_error("write the PII findings"))?;
    let mut batches = CsvBatches::open(&staged, local.open()?, deps.batch_bytes)?;
    let header = batches.header().clone();
    let mut by_column = CountsByColumn::new();
    let (mut rows, mut entities) = (0u64, 0u64);
    while let Some(batch) = batches.next_batch()? {
        let grid = detect_rows(deps.detector.as_ref(), &policy, &header, &batch, &staged).await?;
        findings.push_rows(&grid).map_err(io_error("write the PII findings"))?;
        rows += batch.len() as u64;
        for row in &grid {
            for (column, found) in row.iter().enumerate() {
                let name = header.get(column).unwrap_or("");
                let min_score = policy.min_score_for(name);
                for entity in found.iter().filter(|e| e.score >= min_score) {
                    *by_column
                        .entry(name.to_string())
                        .or_default()
                        .entry(entity.kind.to_string())
                        .or_default() += 1;
                    entities += 1;
                }
            }
        }
    }
    let mut by_type = std::collections::BTreeMap::new();
    for counts in by_column.values() {
        for (kind, count) in counts {
            *by_type.entry(kind.clone()).or_insert(0) += count;
        }
    }
    let report = DetectReport {
        dataset: input.dataset.clone(),
        staged_key: staged.to_string(),
        engine: deps.detector.engine().to_string(),
        rows,
        entities,
        by_column,
        by_type,
    };
    let findings = findings.finish().map_err(io_error("write the PII findings"))?;
    let binary = PutOptions {
        content_type: Some("application/octet-stream".into()),
        ..PutOptions::default()
    };
    deps.backends
        .objects
        .put_temp_file(&findings_key(&staged)?, findings, &binary)
        .await?;
    let report_key = report_key(&staged)?;
    let body = serde_json::to_vec_pretty(&report).map_err(|err| PiiError::Io {
        operation: "encode the PII report",
        source: err.into(),
    })?;
    let options = PutOptions {
        content_type: Some("application/json".into()),
        ..PutOptions::default()
    };
    deps.backends
        .objects
        .put_bytes(&report_key, Bytes::from(body), &options)
        .await?;
    tracing::info!(dataset = %input.dataset, key = %staged, rows, entities, "PII detection report written");
    Ok(DetectOutput {
        dataset: input.dataset,
        staged_key: staged.to_string(),
        report_key: report_key.to_string(),
        engine: deps.detector.engine().to_string(),
        rows,
        entities,
        contains_pii: entities > 0,
    })
}
