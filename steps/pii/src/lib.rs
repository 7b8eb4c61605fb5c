//! Sluice's PII stages: find personal data in staged CSVs and mask, redact or tokenize it per
//! column policy before any row reaches the records table.
//!
//! - [`entity`]: what a detector reports (Comprehend type names, code-point offsets, a score).
//! - [`detector`]: the [`Detector`] port and the [`BuiltinDetector`] (regex + checksums).
//! - [`overlap`]: the one overlap-resolution rule both detectors share.

pub mod detector;
pub mod entity;
pub mod overlap;
mod recognizers;

pub use detector::{BuiltinDetector, Cell, DetectError, Detector};
pub use entity::{EntityType, PiiEntity};
