//! Sluice's PII stages: find personal data in staged CSVs and mask, redact or tokenize it per
//! column policy before any row reaches the records table.
//!
//! - [`entity`]: what a detector reports (Comprehend type names, code-point offsets, a score).
//! - [`detector`]: the [`Detector`] port and the [`BuiltinDetector`] (regex + checksums).
//! - [`comprehend`]: Amazon Comprehend as a detector: request packing and the adapter.
//! - [`overlap`]: the one overlap-resolution rule both detectors share.
//! - [`policy`]: the per-dataset [`PiiPolicy`] (keep / mask / redact / tokenize) and its loader.
//! - [`transform`]: applying a policy to a cell ([`CellCleaner`]).
//! - [`settings`]: the `[pii]` configuration section and the detector it names.
//! - [`steps`]: the detect and mask steps over staged CSVs ([`steps::detect::run`], [`steps::mask::run`]).
//! - [`scan`]: `sluice pii scan` (JSON lines per entity).
//! - [`tokenize`]: keyed HMAC-SHA-256 tokens; [`vault`]: AES-256-GCM originals for re-identification.

pub mod comprehend;
pub mod detector;
pub mod entity;
mod error;
pub mod overlap;
pub mod policy;
mod recognizers;
pub mod scan;
pub mod settings;
pub mod steps;
pub mod tokenize;
pub mod transform;
pub mod vault;

pub use comprehend::{ComprehendDetector, ComprehendSettings, ComprehendUsage};
pub use detector::{BuiltinDetector, Cell, DetectError, Detector};
pub use entity::{EntityType, PiiEntity};
pub use error::PiiError;
pub use policy::{Action, PiiPolicy, PolicyError};
pub use settings::{Engine, PiiSettings, PolicySet};
pub use steps::PiiDeps;
pub use tokenize::Tokenizer;
pub use transform::CellCleaner;
pub use vault::{Vault, VaultError};
