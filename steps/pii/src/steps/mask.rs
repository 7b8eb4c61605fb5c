//! The mask step: rewrites a staged CSV by its dataset's policy (keep, mask, redact, tokenize)
//! into the cleaned CSV that ingest loads. Tokenized originals go to the vault, sealed, before
//! the cleaned file is published. The header row is kept as it is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_core::{ObjectKey, PutOptions, secrets};

use super::findings::{FINDINGS_KEY_NAME, FindingsReader, Stamp, findings_key};
use super::{CountsByColumn, CsvBatches, PiiDeps, check_input, detect_rows, io_error};
use crate::error::PiiError;
use crate::policy::Action;
use crate::tokenize::{Tokenizer, tokenization_key_name};
use crate::transform::CellCleaner;
use crate::vault::Vault;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskInput {
    pub dataset: String,
    pub staged_key: String,
    /// Where to write the cleaned CSV; by default `clean/<the path after staged/>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskOutput {
    pub dataset: String,
    pub staged_key: String,
    pub clean_key: String,
    pub engine: String,
    pub rows: u64,
    /// Entities acted on, by action name (`keep`, `mask`, `redact`, `tokenize`).
    pub by_action: BTreeMap<String, u64>,
    /// Column -> entity type -> count.
    pub by_column: CountsByColumn,
    /// New originals sealed in the vault by this run.
    pub vaulted: u64,
}

/// `staged/a/b.csv` -> `clean/a/b.csv`; a key outside `staged/` gets `.clean` before its extension.
pub fn default_clean_key(staged: &ObjectKey) -> Result<ObjectKey, PiiError> {
    if let Some(rest) = staged.as_str().strip_prefix("staged/") {
        return Ok(ObjectKey::new(format!("clean/{rest}"))?);
    }
    let name = staged.file_name();
    let cleaned = match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.clean.{ext}"),
        None => format!("{name}.clean"),
    };
    Ok(staged.with_file_name(&cleaned)?)
}

pub async fn run(input: MaskInput, deps: &PiiDeps) -> Result<MaskOutput, PiiError> {
    let staged = check_input(&input.dataset, &input.staged_key)?;
    let clean_key = match &input.clean_key {
        Some(key) => ObjectKey::new(key.as_str()).map_err(|err| PiiError::InvalidInput {
            field: "clean_key",
            reason: err.to_string(),
        })?,
        None => default_clean_key(&staged)?,
    };
    if clean_key == staged {
        return Err(PiiError::InvalidInput {
            field: "clean_key",
            reason: "must differ from staged_key".into(),
        });
    }
    let mut policy = deps.policies.for_dataset(&input.dataset);
    let (tokenizer, mut vault) = if policy.tokenizes() {
        let secrets = deps.backends.secrets.as_ref();
        let key = secrets::key_or_create(secrets, &tokenization_key_name(&input.dataset)).await?;
        let vault = Vault::open(deps.backends.control.clone(), secrets, &input.dataset).await?;
        (Some(Tokenizer::new(&key)), Some(vault))
    } else {
        (None, None)
    };
    let local = deps.backends.objects.download(&staged).await?;
    // The detect step's findings, made under the policy as configured (before key columns are
    // set aside below); detected again where there are none that fit.
    let stamp = Stamp::of(local.path(), &deps.detector.fingerprint(), &policy, deps.batch_bytes)
        .map_err(io_error("read the staged CSV"))?;
    let mut carried = carried_findings(deps, &staged, &stamp).await?;
    let mut batches = CsvBatches::open(&staged, local.open()?, deps.batch_bytes)?;
    let header = batches.header().clone();
    // Key columns name the records: masking them would collapse records into one. They are
    // changed only when the policy has a rule for that very column (tokenize keeps them apart).
    let columns: Vec<String> = header
        .iter()
        .map(|c| c.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    let dataset = deps.datasets.get(&input.dataset).cloned().unwrap_or_default();
    if let Ok(keys) = dataset.key_columns_in(&columns) {
        for key in keys {
            if !policy.columns.contains_key(key) {
                policy.skip_columns.insert(key.to_string());
            }
        }
    }
    let cleaner = CellCleaner::new(policy, tokenizer)?;
    // Whether each column is set aside, looked up once (cells past the header have no name).
    let skipped: Vec<bool> = header.iter().map(|name| cleaner.policy().is_skipped(name)).collect();
    let skips_unnamed = cleaner.policy().is_skipped("");
    let output = tempfile::NamedTempFile::new().map_err(io_error("create the cleaned CSV"))?;
    // Ragged rows are written as they came (cleaned): whether they load is the ingest step's
    // call, under `ingest.on_bad_rows`.
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(std::io::BufWriter::new(output.as_file()));
    writer
        .write_record(&header)
        .map_err(|err| io_error("write the cleaned CSV")(err.into()))?;

    let mut by_action: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_column = CountsByColumn::new();
    let (mut rows, mut vaulted) = (0u64, 0u64);
    while let Some(batch) = batches.next_batch()? {
        let found = carried
            .as_mut()
            .map(|findings| findings.next_rows(&batch, header.len()));
        let grid = match found {
            Some(Ok(mut grid)) => {
                for row in &mut grid {
                    for (column, entities) in row.iter_mut().enumerate() {
                        if skipped.get(column).copied().unwrap_or(skips_unnamed) {
                            entities.clear();
                        }
                    }
                }
                grid
            }
            other => {
                if let Some(Err(why)) = other {
                    tracing::warn!(key = %staged, reason = %why, "PII findings unusable from here on: detecting again");
                    carried = None;
                }
                detect_rows(deps.detector.as_ref(), cleaner.policy(), &header, &batch, &staged).await?
            }
        };
        let mut sealed = Vec::new();
        for (record, entities) in batch.iter().zip(&grid) {
            for (column, text) in record.iter().enumerate() {
                let name = header.get(column).unwrap_or("");
                let found = entities.get(column).map_or(&[][..], Vec::as_slice);
                let cleaned = cleaner.clean(name, text, found, &mut sealed);
                for entity in cleaned.applied.iter() {
                    let action: &Action = cleaner.policy().action_for(name, &entity.kind);
                    bump(&mut by_action, action.name());
                    count(&mut by_column, name, entity.kind.as_str());
                }
                writer
                    .write_field(cleaned.text.as_bytes())
                    .map_err(|err| io_error("write the cleaned CSV")(err.into()))?;
            }
            writer
                .write_record(None::<&[u8]>)
                .map_err(|err| io_error("write the cleaned CSV")(err.into()))?;
        }
        // The rows go to a private temporary file, published only after the vault holds every
        // original their tokens stand for.
        if let Some(vault) = vault.as_mut() {
            vault.queue(sealed)?;
        }
        rows += batch.len() as u64;
    }
    if let Some(findings) = carried {
        findings
            .finish()
            .map_err(|why| io_error("read the PII findings")(std::io::Error::other(why.to_string())))?;
    }
    writer.flush().map_err(io_error("write the cleaned CSV"))?;
    drop(writer);
    // The originals are in the vault before the rows that carry their tokens are published.
    if let Some(vault) = vault.as_mut() {
        vaulted = vault.write_queued().await? as u64;
    }
    let options = PutOptions {
        content_type: Some("text/csv".into()),
        metadata: BTreeMap::from([("sluice-pii-source".to_string(), staged.to_string())]),
    };
    deps.backends
        .objects
        .put_temp_file(&clean_key, output, &options)
        .await?;
    tracing::info!(dataset = %input.dataset, key = %staged, clean = %clean_key, rows, vaulted, "cleaned CSV written");
    Ok(MaskOutput {
        dataset: input.dataset,
        staged_key: staged.to_string(),
        clean_key: clean_key.to_string(),
        engine: deps.detector.engine().to_string(),
        rows,
        by_action,
        by_column,
        vaulted,
    })
}

/// One more entity of `kind` in `column`, allocating names only the first time.
fn count(by_column: &mut CountsByColumn, column: &str, kind: &str) {
    match by_column.get_mut(column) {
        Some(counts) => bump(counts, kind),
        None => bump(by_column.entry(column.to_string()).or_default(), kind),
    }
}

fn bump(counts: &mut BTreeMap<String, u64>, name: &str) {
    match counts.get_mut(name) {
        Some(count) => *count += 1,
        None => {
            counts.insert(name.to_string(), 1);
        }
    }
}

/// The detect step's findings for this very file, if it left any that fit.
async fn carried_findings(
    deps: &PiiDeps,
    staged: &ObjectKey,
    stamp: &Stamp,
) -> Result<Option<FindingsReader>, PiiError> {
    let key = findings_key(staged)?;
    if deps.backends.objects.head(&key).await?.is_none() {
        return Ok(None);
    }
    let signing_key = secrets::key_or_create(deps.backends.secrets.as_ref(), FINDINGS_KEY_NAME).await?;
    let local = deps.backends.objects.download(&key).await?;
    match FindingsReader::open(local.open()?, stamp, &signing_key) {
        Ok(findings) => Ok(Some(findings)),
        Err(why) => {
            tracing::warn!(key = %staged, reason = %why, "PII findings not used: detecting again");
            Ok(None)
        }
    }
}

impl sluice_core::ledger::LedgerOutcome for MaskOutput {
    fn ledger_move(&self) -> Option<sluice_core::ledger::LedgerMove> {
        Some(sluice_core::ledger::LedgerMove::to(
            sluice_core::ledger::LedgerState::Cleaned,
        ))
    }
}
