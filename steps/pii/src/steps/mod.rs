//! The two PII steps over a staged CSV: [`detect`] (a report of counts) and [`mask`] (the cleaned
//! CSV that ingest loads; `tokenize` rules de-identify in the same pass). Both stream the CSV in
//! batches of about `[pii] batch_bytes` of cell text, so memory does not grow with the file.

pub mod detect;
mod findings;
pub mod mask;

pub use findings::findings_key;

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_core::{Backends, Config, ObjectKey};

use crate::detector::{Cell, Detector};
use crate::entity::PiiEntity;
use crate::error::PiiError;
use crate::policy::PiiPolicy;
use crate::settings::{PiiSettings, PolicySet};

/// What the PII steps need, built once per process.
#[derive(Clone)]
pub struct PiiDeps {
    /// `objects` (staged CSV in, report/clean CSV out), `control` (the vault) and `secrets`
    /// (tokenization and vault keys).
    pub backends: Backends,
    pub detector: Arc<dyn Detector>,
    pub policies: PolicySet,
    pub batch_bytes: usize,
    /// `[datasets.*]`: which columns are each dataset's key (kept unless a policy says so).
    pub datasets: BTreeMap<String, sluice_core::config::DatasetSettings>,
}

impl PiiDeps {
    /// Reads `[pii]`, validates every policy and builds the configured detector.
    pub async fn from_config(config: &Config, backends: Backends) -> Result<PiiDeps, PiiError> {
        let settings = PiiSettings::from_config(config)?;
        let policies = settings.policies(&config.origin)?;
        let detector = settings.detector(config, None).await;
        Ok(PiiDeps {
            backends,
            detector,
            policies,
            batch_bytes: settings.batch_bytes,
            datasets: config.datasets.clone(),
        })
    }
}

/// Entity counts by column, then by entity type.
pub type CountsByColumn = BTreeMap<String, BTreeMap<String, u64>>;

pub(crate) fn check_input(dataset: &str, staged_key: &str) -> Result<ObjectKey, PiiError> {
    if let Err(err) = sluice_core::dataset::DatasetName::parse(dataset) {
        return Err(PiiError::InvalidInput {
            field: "dataset",
            reason: err.to_string(),
        });
    }
    ObjectKey::new(staged_key).map_err(|err| PiiError::InvalidInput {
        field: "staged_key",
        reason: err.to_string(),
    })
}

/// Reads a CSV file batch by batch.
pub(crate) struct CsvBatches {
    key: String,
    reader: csv::Reader<std::fs::File>,
    header: csv::StringRecord,
    batch_bytes: usize,
    done: bool,
}

impl CsvBatches {
    pub fn open(key: &ObjectKey, file: std::fs::File, batch_bytes: usize) -> Result<CsvBatches, PiiError> {
        // Rows whose field count differs from the header's pass (each of their cells is still
        // scanned and cleaned, extra ones under the dataset's default rule): `ingest.on_bad_rows`
        // decides whether they load, in one place, not this step.
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(file);
        let header = reader.headers().map_err(|err| csv_error(key.as_str(), &err))?.clone();
        Ok(CsvBatches {
            key: key.to_string(),
            reader,
            header,
            batch_bytes,
            done: false,
        })
    }

    pub fn header(&self) -> &csv::StringRecord {
        &self.header
    }

    /// The next rows, about `batch_bytes` of text; `None` at the end.
    pub fn next_batch(&mut self) -> Result<Option<Vec<csv::StringRecord>>, PiiError> {
        if self.done {
            return Ok(None);
        }
        let mut rows = Vec::new();
        let mut bytes = 0;
        while bytes < self.batch_bytes {
            let mut record = csv::StringRecord::new();
            match self.reader.read_record(&mut record) {
                Ok(true) => {
                    bytes += record.as_slice().len();
                    rows.push(record);
                }
                Ok(false) => {
                    self.done = true;
                    break;
                }
                Err(err) => return Err(csv_error(&self.key, &err)),
            }
        }
        Ok((!rows.is_empty()).then_some(rows))
    }
}

/// A CSV error described by kind and position only (the csv crate's messages may quote data).
fn csv_error(key: &str, err: &csv::Error) -> PiiError {
    let line = err.position().map_or(0, |p| p.line());
    let reason = match err.kind() {
        csv::ErrorKind::Utf8 { err, .. } => format!("field {} is not valid UTF-8", err.field() + 1),
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("the row has {len} fields but the header has {expected_len}")
        }
        csv::ErrorKind::Io(io) => format!("read error: {io}"),
        _ => "malformed CSV".to_string(),
    };
    PiiError::InvalidCsv {
        key: key.to_string(),
        line,
        reason,
    }
}

/// The entities of every cell of `rows` (`[row][column]`); skipped columns get none.
pub(crate) async fn detect_rows(
    detector: &dyn Detector,
    policy: &PiiPolicy,
    header: &csv::StringRecord,
    rows: &[csv::StringRecord],
    key: &ObjectKey,
) -> Result<Vec<Vec<Vec<PiiEntity>>>, PiiError> {
    // Cells past the header (a ragged row) have no column name: scanned under the dataset's
    // default rules all the same, so nothing reaches the table unread. Each column's rules are
    // looked up once a batch, not once a cell.
    let widest = rows
        .iter()
        .map(csv::StringRecord::len)
        .max()
        .unwrap_or(0)
        .max(header.len());
    let columns: Vec<(usize, &[crate::entity::EntityType])> = (0..widest)
        .map(|column| (column, header.get(column).unwrap_or("")))
        .filter(|(_, name)| !policy.is_skipped(name))
        .map(|(column, name)| (column, policy.declared(name)))
        .collect();
    let scanned_in = |row: &csv::StringRecord| {
        let width = row.len().max(header.len());
        columns.iter().copied().filter(move |(column, _)| *column < width)
    };
    let mut cells = Vec::new();
    for row in rows {
        for (column, declared) in scanned_in(row) {
            cells.push(Cell {
                text: row.get(column).unwrap_or(""),
                declared,
            });
        }
    }
    let found = detector.detect(&cells).await.map_err(|source| PiiError::Detection {
        key: key.to_string(),
        source,
    })?;
    let mut found = found.into_iter();
    let mut grid = Vec::with_capacity(rows.len());
    for row in rows {
        let mut per_column = vec![Vec::new(); row.len().max(header.len())];
        for (column, _) in scanned_in(row) {
            if let Some(entities) = found.next()
                && let Some(slot) = per_column.get_mut(column)
            {
                *slot = entities;
            }
        }
        grid.push(per_column);
    }
    Ok(grid)
}

pub(crate) fn io_error(operation: &'static str) -> impl FnOnce(std::io::Error) -> PiiError {
    move |source| PiiError::Io { operation, source }
}
