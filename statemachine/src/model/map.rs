//! The Map state's processor and the fields of a Distributed Map: where its items come from
//! (`ItemReader`), how they are grouped (`ItemBatcher`) and where results go (`ResultWriter`).
//! Shapes follow the Step Functions developer guide; validation has already checked them.

use super::{Scope, StateMachine};
use crate::path::JsonPath;
use crate::payload::Template;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// `ItemProcessor` (or the legacy `Iterator`): the states each item runs through, and how.
#[derive(Debug, Clone)]
pub struct Processor {
    pub scope: Arc<Scope>,
    pub config: ProcessorConfig,
    /// The processor as a state machine of its own: a Distributed Map runs each child
    /// execution on it, and a child stored mid-run is resumed from this definition.
    pub(crate) machine: StateMachine,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessorConfig {
    #[serde(default)]
    pub mode: ProcessorMode,
    pub execution_type: Option<ExecutionType>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProcessorMode {
    #[default]
    Inline,
    Distributed,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionType {
    #[default]
    Standard,
    Express,
}

impl<'de> Deserialize<'de> for Processor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut value = Value::deserialize(d)?;
        let config = match value.as_object_mut().and_then(|m| m.remove("ProcessorConfig")) {
            Some(c) => ProcessorConfig::deserialize(c).map_err(serde::de::Error::custom)?,
            None => ProcessorConfig::default(),
        };
        let scope: Scope = serde_json::from_value(value.clone()).map_err(serde::de::Error::custom)?;
        let scope = Arc::new(scope);
        let machine = StateMachine::from_scope(scope.clone(), crate::json::to_compact(&value));
        Ok(Self { scope, config, machine })
    }
}

/// `ItemReader`: a Distributed Map's items read from S3.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ItemReader {
    pub resource: String,
    /// `Parameters` (JSONPath) or `Arguments`: Bucket and Key (getObject) or Bucket and Prefix
    /// (listObjectsV2).
    #[serde(alias = "Arguments")]
    pub parameters: Option<Template>,
    #[serde(default)]
    pub reader_config: ReaderConfig,
}

/// The two S3 actions an `ItemReader` can call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderAction {
    GetObject,
    ListObjectsV2,
}

/// AWS reads CSV headers of up to 10 KiB.
pub const MAX_CSV_HEADER_BYTES: usize = 10 * 1024;

pub const S3_GET_OBJECT: &str = "arn:aws:states:::s3:getObject";
pub const S3_LIST_OBJECTS_V2: &str = "arn:aws:states:::s3:listObjectsV2";
pub const S3_PUT_OBJECT: &str = "arn:aws:states:::s3:putObject";

impl ItemReader {
    pub fn action(&self) -> Option<ReaderAction> {
        match self.resource.as_str() {
            S3_GET_OBJECT => Some(ReaderAction::GetObject),
            S3_LIST_OBJECTS_V2 => Some(ReaderAction::ListObjectsV2),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReaderConfig {
    pub input_type: Option<InputType>,
    #[serde(rename = "CSVHeaderLocation", default)]
    pub csv_header_location: CsvHeaderLocation,
    #[serde(rename = "CSVHeaders")]
    pub csv_headers: Option<Vec<String>>,
    #[serde(rename = "CSVDelimiter", default)]
    pub csv_delimiter: CsvDelimiter,
    pub max_items: Option<u64>,
    pub max_items_path: Option<JsonPath>,
    pub manifest_type: Option<ManifestType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum InputType {
    Json,
    Jsonl,
    Csv,
    Manifest,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CsvHeaderLocation {
    #[default]
    FirstRow,
    Given,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CsvDelimiter {
    #[default]
    Comma,
    Pipe,
    Semicolon,
    Space,
    Tab,
}

impl CsvDelimiter {
    pub fn byte(self) -> u8 {
        match self {
            CsvDelimiter::Comma => b',',
            CsvDelimiter::Pipe => b'|',
            CsvDelimiter::Semicolon => b';',
            CsvDelimiter::Space => b' ',
            CsvDelimiter::Tab => b'\t',
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ManifestType {
    S3Inventory,
}

/// `ItemBatcher`: items grouped into batches, one child execution per batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ItemBatcher {
    pub max_items_per_batch: Option<u64>,
    pub max_items_per_batch_path: Option<JsonPath>,
    pub max_input_bytes_per_batch: Option<u64>,
    pub max_input_bytes_per_batch_path: Option<JsonPath>,
    pub batch_input: Option<Template>,
}

/// `ResultWriter`: child results exported to S3 instead of returned.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResultWriter {
    pub resource: Option<String>,
    #[serde(alias = "Arguments")]
    pub parameters: Option<Template>,
    pub writer_config: Option<WriterConfig>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WriterConfig {
    #[serde(default)]
    pub output_type: OutputType,
    pub transformation: Option<Transformation>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OutputType {
    #[default]
    Json,
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Transformation {
    None,
    Compact,
    Flatten,
}
