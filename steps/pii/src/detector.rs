//! The detector port: a batch of cells in, each cell's entities out. Two implementations:
//! [`BuiltinDetector`] (the local default) and [`crate::comprehend::ComprehendDetector`].

use async_trait::async_trait;

use crate::entity::{CodePoints, EntityType, PiiEntity};
use crate::overlap;
use crate::recognizers::BuiltinRecognizers;

/// One cell to classify: its text and the entity types its column is declared to hold (the whole
/// cell is then one entity of that type, e.g. a `full_name` column declared `NAME`).
#[derive(Debug, Clone, Copy)]
pub struct Cell<'a> {
    pub text: &'a str,
    pub declared: &'a [EntityType],
}

impl<'a> Cell<'a> {
    pub fn new(text: &'a str) -> Self {
        Cell { text, declared: &[] }
    }
}

/// Why a batch could not be classified. A stage fails on it: no cell passes through unclassified.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("Comprehend {operation} was still throttled after {attempts} attempts")]
    Throttled { operation: &'static str, attempts: u32 },
    #[error("Comprehend {operation} failed: {message}")]
    Service { operation: &'static str, message: String },
    #[error("Comprehend {operation} answered with an unusable response: {reason}")]
    InvalidResponse { operation: &'static str, reason: String },
}

/// Finds PII in a batch of cells.
#[async_trait]
pub trait Detector: Send + Sync {
    /// A short name for reports and logs (`builtin`, `comprehend`).
    fn engine(&self) -> &'static str;

    /// Everything besides the cells that its results depend on (the engine and its settings):
    /// findings made under another fingerprint are not reused.
    fn fingerprint(&self) -> String {
        self.engine().to_string()
    }

    /// The entities of each cell, in the order of `cells`: offsets in code points of that cell
    /// (end exclusive), Comprehend type names, overlaps resolved by [`overlap::resolve`].
    async fn detect(&self, cells: &[Cell<'_>]) -> Result<Vec<Vec<PiiEntity>>, DetectError>;
}

/// The whole-cell entities a column declaration implies (trimmed of surrounding whitespace).
pub(crate) fn declared_entities(cell: &Cell<'_>) -> Vec<PiiEntity> {
    if cell.declared.is_empty() {
        return Vec::new();
    }
    let trimmed_start = cell.text.len() - cell.text.trim_start().len();
    let trimmed_end = cell.text.trim_end().len();
    if trimmed_start >= trimmed_end {
        return Vec::new();
    }
    let map = CodePoints::new(cell.text);
    let (begin, end) = (map.char_index(trimmed_start), map.char_index(trimmed_end));
    cell.declared
        .iter()
        .map(|kind| PiiEntity::new(kind.clone(), begin, end, 1.0))
        .collect()
}

/// Cells per thread below which a batch is detected on the calling thread alone.
const MIN_CELLS_PER_THREAD: usize = 2048;

/// Regular expressions and checksums; no network, no cost.
#[derive(Default)]
pub struct BuiltinDetector {
    recognizers: BuiltinRecognizers,
}

impl BuiltinDetector {
    pub fn new() -> Self {
        Self::default()
    }

    /// The entities of one cell, resolved.
    pub fn detect_cell(&self, cell: &Cell<'_>) -> Vec<PiiEntity> {
        let declared = declared_entities(cell);
        let found = self.recognizers.recognize(cell.text);
        if declared.is_empty() {
            return found;
        }
        let mut all = declared;
        all.extend(found);
        overlap::resolve(all, cell.text)
    }
}

#[async_trait]
impl Detector for BuiltinDetector {
    fn engine(&self) -> &'static str {
        "builtin"
    }

    async fn detect(&self, cells: &[Cell<'_>]) -> Result<Vec<Vec<PiiEntity>>, DetectError> {
        // A batch big enough is split over the machine's cores (the recognizers are shared,
        // read-only); a small one is not worth a thread.
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let threads = cores.min(cells.len() / MIN_CELLS_PER_THREAD).max(1);
        if threads == 1 {
            return Ok(cells.iter().map(|cell| self.detect_cell(cell)).collect());
        }
        let part = cells.len().div_ceil(threads);
        Ok(std::thread::scope(|scope| {
            let parts: Vec<_> = cells
                .chunks(part)
                .map(|cells| scope.spawn(move || cells.iter().map(|cell| self.detect_cell(cell)).collect::<Vec<_>>()))
                .collect();
            parts
                .into_iter()
                .flat_map(|part| part.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_declared_name_column_makes_the_trimmed_cell_one_name() {
        let declared = [EntityType::Name];
        let cells = [
            Cell {
                text: "  Zoë Müller ",
                declared: &declared,
            },
            Cell::new("mail zoe@example.com"),
        ];
        let found = BuiltinDetector::new().detect(&cells).await.unwrap();
        assert_eq!(found[0], vec![PiiEntity::new(EntityType::Name, 2, 12, 1.0)]);
        assert_eq!(found[1], vec![PiiEntity::new(EntityType::Email, 5, 20, 0.99)]);
    }

    #[tokio::test]
    async fn a_batch_split_over_threads_finds_what_one_thread_finds_in_order() {
        let texts: Vec<String> = (0..5 * MIN_CELLS_PER_THREAD)
            .map(|i| match i % 4 {
                0 => format!("user{i}@example.test"),
                1 => format!("call +1 415 555 {:04}", i % 10_000),
                2 => format!("nothing {i}"),
                _ => format!("card 4111 1111 1111 1111 and {i}"),
            })
            .collect();
        let cells: Vec<Cell<'_>> = texts.iter().map(|text| Cell::new(text)).collect();
        let detector = BuiltinDetector::new();
        let one_thread: Vec<_> = cells.iter().map(|cell| detector.detect_cell(cell)).collect();
        assert_eq!(detector.detect(&cells).await.unwrap(), one_thread);
    }

    #[tokio::test]
    async fn offsets_are_code_points_after_accents_cjk_and_emoji() {
        let text = "é中😀 a@b.io";
        let found = BuiltinDetector::new().detect(&[Cell::new(text)]).await.unwrap();
        assert_eq!(found[0], vec![PiiEntity::new(EntityType::Email, 4, 10, 0.99)]);
    }
}
