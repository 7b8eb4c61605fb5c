//! Amazon Comprehend as a [`crate::Detector`]: request packing ([`packing`]) and the
//! DetectPiiEntities adapter ([`ComprehendDetector`]).

mod adapter;
pub mod packing;

pub use adapter::{ComprehendDetector, ComprehendSettings, ComprehendUsage};
