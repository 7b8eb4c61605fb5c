//! The DynamoDB ingest step: streams a staged CSV, types its cells and upserts one item per
//! row into the `records` table (pk = dataset, sk = the record key).
//!
//! Rows that cannot load (ragged, undecodable, empty key, over 400 KB) never vanish: per
//! `ingest.on_bad_rows` the file is quarantined with every line's reason and nothing loads, or
//! the bad rows go to `<name>.rejects.csv` beside the file while the good ones load. Items are
//! a pure function of the file, so a rerun (after a crash, too) writes the same table.

mod batch;
mod cells;
mod ordered;
mod rows;
mod writer;

use std::io::Read;

use serde::{Deserialize, Serialize};
use sluice_core::config::{BadRowPolicy, DatasetSettings};
use sluice_core::quarantine::{self, LineProblem, QuarantineReason, quarantine_key};
use sluice_core::retry::Backoff;
use sluice_core::{BackendError, Backends, Config, Item, ObjectKey, PutOptions, StepError};
use tokio::sync::mpsc;

pub use batch::BatchBuilder;
pub use cells::{is_dynamo_number, type_cell};
pub use rows::{DATA_ATTRIBUTE, HeaderProblem, KEY_SEPARATOR, Row, Rows, Schema};

/// Line-level reasons carried in the step's output (the rest are in the rejects object or
/// the quarantine reason).
pub const MAX_REASONS_IN_OUTPUT: usize = 20;
/// Line-level reasons kept in a quarantine reason document.
pub const MAX_REASONS_IN_QUARANTINE: usize = 1000;

/// The step's input: a staged (or cleaned) CSV and the dataset it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestInput {
    pub dataset: String,
    pub source_key: String,
}

/// The step's output: counts and keys only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestOutput {
    pub dataset: String,
    pub source_key: String,
    pub rows_read: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    /// Rows replaced inside a batch by a later row with the same key.
    pub rows_collapsed: u64,
    /// Rows whose key an earlier batch of the same file already wrote (the later row wins).
    /// Non-zero usually means the key columns are not unique, or were masked.
    #[serde(default)]
    pub rows_overwritten: u64,
    pub quarantined: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects_key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<LineProblem>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reasons_truncated: bool,
}

impl sluice_core::ledger::LedgerOutcome for IngestOutput {
    fn ledger_move(&self) -> Option<sluice_core::ledger::LedgerMove> {
        use sluice_core::ledger::{LedgerMove, LedgerState};
        Some(if self.quarantined {
            LedgerMove {
                reason: Some(format!(
                    "refused at ingest ({} rows rejected); see {}",
                    self.rows_rejected,
                    self.quarantine_key.as_deref().unwrap_or("quarantine/")
                )),
                ..LedgerMove::to(LedgerState::Quarantined)
            }
        } else if self.rows_rejected > 0 {
            LedgerMove {
                reason: Some(format!(
                    "{} rows rejected; see {}",
                    self.rows_rejected,
                    self.rejects_key.as_deref().unwrap_or("the rejects file")
                )),
                ..LedgerMove::to(LedgerState::Ingested)
            }
        } else {
            LedgerMove::to(LedgerState::Ingested)
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    InvalidDataset(#[from] sluice_core::dataset::InvalidDatasetName),
    #[error("{key} has no object (and was not quarantined before)")]
    Missing { key: String },
    #[error("reading {key}: {source}")]
    Io {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl StepError for IngestError {
    fn error_name(&self) -> &'static str {
        match self {
            IngestError::InvalidDataset(_) => "Ingest.InvalidInput",
            IngestError::Missing { .. } => "Ingest.MissingObject",
            IngestError::Io { .. } => "Ingest.Io",
            IngestError::Backend(err) => err.error_name(),
        }
    }
}

/// What one pass over a file found.
#[derive(Debug, Default, Clone)]
pub struct ReadStats {
    pub rows_read: u64,
    pub rows_rejected: u64,
    pub rows_collapsed: u64,
    pub rows_overwritten: u64,
    /// The first problems, at most `keep` of them.
    pub problems: Vec<LineProblem>,
    pub problems_truncated: bool,
}

/// Reads a whole CSV, handing full batches to `on_batch` (which returns false to stop early)
/// and every rejected record to `on_reject`. Keeps the first `keep` problems.
pub fn read_file(
    input: impl Read,
    dataset: &str,
    settings: &sluice_core::config::DatasetSettings,
    keep: usize,
    mut on_batch: impl FnMut(Vec<Item>) -> bool,
    mut on_reject: impl FnMut(&Schema, &LineProblem, &csv::ByteRecord),
) -> Result<ReadStats, HeaderProblem> {
    let rows = Rows::new(input, dataset, settings)?;
    let schema = rows.schema().clone();
    let mut stats = ReadStats::default();
    let mut builder = BatchBuilder::default();
    // Keys of earlier batches, as 64-bit hashes: 8 bytes a row instead of the keys themselves
    // (a false "overwritten" needs a hash collision, about 1 in 10^7 for a million rows).
    let mut written_keys: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut batch_keys: Vec<u64> = Vec::new();
    for row in rows {
        stats.rows_read += 1;
        match row {
            Row::Item { key, item } => {
                let hash = key_hash(&key);
                if written_keys.contains(&hash) {
                    stats.rows_overwritten += 1;
                }
                batch_keys.push(hash);
                if let Some(batch) = builder.push(key, item) {
                    written_keys.extend(batch_keys.drain(..));
                    if !on_batch(batch) {
                        return Ok(stats);
                    }
                }
            }
            Row::Rejected { problem, record } => {
                stats.rows_rejected += 1;
                on_reject(&schema, &problem, &record);
                if stats.problems.len() < keep {
                    stats.problems.push(problem);
                } else {
                    stats.problems_truncated = true;
                }
            }
        }
    }
    if let Some(batch) = builder.take() {
        on_batch(batch);
    }
    stats.rows_collapsed = builder.collapsed;
    Ok(stats)
}

fn key_hash(key: &sluice_core::ItemKey) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(key)
}

/// The ingest step.
pub async fn run(input: IngestInput, backends: &Backends, config: &Config) -> Result<IngestOutput, IngestError> {
    sluice_core::dataset::DatasetName::parse(&input.dataset)?;
    let source = ObjectKey::new(input.source_key.clone())?;
    let output = IngestOutput {
        dataset: input.dataset.clone(),
        source_key: source.to_string(),
        ..IngestOutput::default()
    };
    let objects = backends.objects.as_ref();
    if objects.head(&source).await?.is_none() {
        return already_quarantined(objects, &source, output).await;
    }
    let local = objects.download(&source).await?;
    let settings = config.dataset(&input.dataset);
    if config.ingest.on_bad_rows == BadRowPolicy::Quarantine {
        let file = local.open()?;
        if let Some(refused) = refuse_bad_rows(backends, &source, file, &input.dataset, &settings, &output).await? {
            return Ok(refused);
        }
    }
    load(
        backends,
        config,
        &source,
        local.open()?,
        &input.dataset,
        settings,
        output,
    )
    .await
}

impl IngestOutput {
    /// The counts and the first problems of a pass over the file.
    fn count(&mut self, stats: &ReadStats) {
        self.rows_read = stats.rows_read;
        self.rows_rejected = stats.rows_rejected;
        self.reasons = stats.problems.iter().take(MAX_REASONS_IN_OUTPUT).cloned().collect();
        self.reasons_truncated = stats.problems.len() > MAX_REASONS_IN_OUTPUT || stats.problems_truncated;
    }
}

fn io_error(source_key: &ObjectKey) -> impl FnOnce(std::io::Error) -> IngestError + use<> {
    let key = source_key.to_string();
    move |source: std::io::Error| IngestError::Io { key, source }
}

/// A source that is gone was quarantined by an earlier attempt (its reason is beside it), or
/// never existed.
async fn already_quarantined(
    objects: &dyn sluice_core::ObjectStore,
    source: &ObjectKey,
    output: IngestOutput,
) -> Result<IngestOutput, IngestError> {
    let moved = quarantine_key(source)?;
    match quarantine::read_reason(objects, &moved).await? {
        Some(reason) => Ok(IngestOutput {
            quarantined: true,
            quarantine_key: Some(moved.to_string()),
            reasons: reason.problems.into_iter().take(MAX_REASONS_IN_OUTPUT).collect(),
            ..output
        }),
        None => Err(IngestError::Missing {
            key: source.to_string(),
        }),
    }
}

/// Under `on_bad_rows = "quarantine"`: a first pass, and the whole file quarantined (nothing
/// loaded) when its header or any row cannot load; None when every row can.
async fn refuse_bad_rows(
    backends: &Backends,
    source: &ObjectKey,
    file: std::fs::File,
    dataset: &str,
    settings: &DatasetSettings,
    output: &IngestOutput,
) -> Result<Option<IngestOutput>, IngestError> {
    let (dataset, check_settings) = (dataset.to_string(), settings.clone());
    let checked = blocking(source, move || {
        read_file(
            file,
            &dataset,
            &check_settings,
            MAX_REASONS_IN_QUARANTINE,
            |_| true,
            |_, _, _| {},
        )
    })
    .await?;
    let stats = match checked {
        Err(header) => {
            return quarantine_header(backends, source, &header, output.clone())
                .await
                .map(Some);
        }
        Ok(stats) if stats.rows_rejected > 0 => stats,
        Ok(_) => return Ok(None),
    };
    let reason = QuarantineReason {
        stage: "ingest".into(),
        code: "bad_rows".into(),
        message: format!(
            "{}: {} of {} rows cannot load (first: {})",
            source.file_name(),
            stats.rows_rejected,
            stats.rows_read,
            stats.problems.first().map(ToString::to_string).unwrap_or_default()
        ),
        source_key: source.to_string(),
        problems: stats.problems.clone(),
        problems_truncated: stats.problems_truncated,
    };
    let moved = quarantine::quarantine(backends.objects.as_ref(), source, &reason).await?;
    tracing::warn!(source = %source, rejected = stats.rows_rejected, "quarantined: bad rows");
    let mut refused = output.clone();
    refused.count(&stats);
    refused.quarantined = true;
    refused.quarantine_key = Some(moved.to_string());
    Ok(Some(refused))
}

/// The load: a blocking reader feeds batches through a bounded channel to the async writer;
/// rows that cannot load go to `<name>.rejects.csv` beside the source.
async fn load(
    backends: &Backends,
    config: &Config,
    source: &ObjectKey,
    file: std::fs::File,
    dataset: &str,
    settings: DatasetSettings,
    mut output: IngestOutput,
) -> Result<IngestOutput, IngestError> {
    let (sender, receiver) = mpsc::channel::<Vec<Item>>(config.ingest.concurrency * 2);
    let rejects_file = tempfile::NamedTempFile::new().map_err(io_error(source))?;
    let rejects_writer = rejects_file.reopen().map_err(io_error(source))?;
    let dataset = dataset.to_string();
    let in_key_order = backends.records.prefers_key_order();
    let reader = blocking(source, move || {
        let mut rejects = RejectsWriter::new(rejects_writer);
        let mut send = |batch| sender.blocking_send(batch).is_ok();
        let mut ordered = in_key_order.then(ordered::KeyOrdered::default);
        // The first failure to gather a row for ordering ends the read; it is reported below.
        let mut gathering_failed = None;
        let stats = read_file(
            file,
            &dataset,
            &settings,
            MAX_REASONS_IN_OUTPUT,
            |batch| match ordered.as_mut() {
                None => send(batch),
                Some(ordered) => ordered.push(batch, &mut send).unwrap_or_else(|err| {
                    gathering_failed = Some(err);
                    false
                }),
            },
            |schema, problem, record| rejects.write(schema, problem, record),
        );
        if let Some(err) = gathering_failed {
            return Err(err);
        }
        if let Some(ordered) = ordered {
            ordered.finish(&mut send)?;
        }
        rejects.finish().map(|()| stats)
    });
    let backoff = Backoff {
        max_attempts: config.ingest.max_retries,
        ..Backoff::default()
    };
    let writer = writer::write_batches(backends.records.clone(), receiver, config.ingest.concurrency, backoff);
    let (read, written) = tokio::join!(reader, writer);
    let written = written?;
    let stats = match read?.map_err(io_error(source))? {
        Ok(stats) => stats,
        Err(header) => return quarantine_header(backends, source, &header, output).await,
    };

    if stats.rows_rejected > 0 {
        let rejects_key = source.with_file_name(&rejects_name(source.file_name()))?;
        let options = PutOptions {
            content_type: Some("text/csv; charset=utf-8".into()),
            ..PutOptions::default()
        };
        backends
            .objects
            .put_file(&rejects_key, rejects_file.path(), &options)
            .await?;
        output.rejects_key = Some(rejects_key.to_string());
    }
    output.count(&stats);
    output.rows_written = written;
    output.rows_collapsed = stats.rows_collapsed;
    output.rows_overwritten = stats.rows_overwritten;
    if stats.rows_overwritten > 0 {
        tracing::warn!(source = %source, rows = stats.rows_overwritten, "rows repeat keys written earlier in the file: the key columns are not unique");
    }
    tracing::info!(
        source = %source,
        rows_read = output.rows_read,
        rows_written = output.rows_written,
        rows_rejected = output.rows_rejected,
        "ingested"
    );
    Ok(output)
}

async fn quarantine_header(
    backends: &Backends,
    source: &ObjectKey,
    problem: &HeaderProblem,
    output: IngestOutput,
) -> Result<IngestOutput, IngestError> {
    let line_problem = LineProblem {
        line: 1,
        column: None,
        reason: problem.describe(),
    };
    let reason = QuarantineReason {
        stage: "ingest".into(),
        code: problem.code().into(),
        message: format!("{} line 1: {}", source.file_name(), problem.describe()),
        source_key: source.to_string(),
        problems: vec![line_problem.clone()],
        problems_truncated: false,
    };
    let moved = quarantine::quarantine(backends.objects.as_ref(), source, &reason).await?;
    tracing::warn!(source = %source, code = problem.code(), "quarantined: header");
    Ok(IngestOutput {
        quarantined: true,
        quarantine_key: Some(moved.to_string()),
        reasons: vec![line_problem],
        ..output
    })
}

/// `orders.csv` -> `orders.rejects.csv`.
fn rejects_name(file_name: &str) -> String {
    match file_name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => format!("{stem}.rejects.{extension}"),
        _ => format!("{file_name}.rejects.csv"),
    }
}

async fn blocking<T: Send + 'static>(
    source: &ObjectKey,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, IngestError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| IngestError::Io {
        key: source.to_string(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// The rejects object: `line,column,reason` followed by the record's own fields.
struct RejectsWriter {
    writer: csv::Writer<std::fs::File>,
    wrote_header: bool,
    error: Option<std::io::Error>,
}

impl RejectsWriter {
    fn new(file: std::fs::File) -> Self {
        RejectsWriter {
            writer: csv::WriterBuilder::new().flexible(true).from_writer(file),
            wrote_header: false,
            error: None,
        }
    }

    fn write(&mut self, schema: &Schema, problem: &LineProblem, record: &csv::ByteRecord) {
        if self.error.is_some() {
            return;
        }
        let result = (|| -> csv::Result<()> {
            if !self.wrote_header {
                let mut header = vec!["line", "column", "reason"];
                header.extend(schema.columns.iter().map(String::as_str));
                self.writer.write_record(&header)?;
                self.wrote_header = true;
            }
            let line = problem.line.to_string();
            let mut fields: Vec<&[u8]> = vec![
                line.as_bytes(),
                problem.column.as_deref().unwrap_or("").as_bytes(),
                problem.reason.as_bytes(),
            ];
            fields.extend(record.iter());
            self.writer.write_record(&fields)
        })();
        if let Err(err) = result {
            self.error = Some(std::io::Error::other(err.to_string()));
        }
    }

    fn finish(mut self) -> Result<(), std::io::Error> {
        if let Some(err) = self.error {
            return Err(err);
        }
        self.writer.flush()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rejects_sit_beside_the_file() {
        assert_eq!(super::rejects_name("orders.csv"), "orders.rejects.csv");
        assert_eq!(super::rejects_name("orders"), "orders.rejects.csv");
    }
}
