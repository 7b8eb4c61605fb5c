//! A JSONata state's fields. Before the model is built, [`lower`] works out each state's query
//! language (its own `QueryLanguage`, else the enclosing scope's, else the machine's) and moves
//! the fields a JSONata state reads as JSONata under [`JSONATA_KEY`], in the state and in its
//! Catch entries and Choice rules. The JSONPath model thus never sees a JSONata value, and a
//! JSONata state is exactly one whose `jsonata` is present.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::jsonata::Template;

/// Where [`lower`] puts a JSONata state's JSONata fields.
pub const JSONATA_KEY: &str = "@JSONata";

/// The fields that hold JSONata (or a literal) in a JSONata state, Catch entry or Choice rule.
pub const JSONATA_FIELDS: &[&str] = &[
    "Arguments",
    "Output",
    "Assign",
    "Items",
    "ItemSelector",
    "Condition",
    "Seconds",
    "Timestamp",
    "Error",
    "Cause",
    "TimeoutSeconds",
    "HeartbeatSeconds",
    "MaxConcurrency",
    "ToleratedFailureCount",
    "ToleratedFailurePercentage",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum QueryLanguage {
    #[default]
    JSONPath,
    JSONata,
}

impl QueryLanguage {
    /// The language `QueryLanguage` names, if it names one.
    pub fn named(value: Option<&Value>) -> Option<QueryLanguage> {
        match value?.as_str()? {
            "JSONPath" => Some(QueryLanguage::JSONPath),
            "JSONata" => Some(QueryLanguage::JSONata),
            _ => None,
        }
    }
}

/// The JSONata fields of a state, Catch entry or Choice rule (what each kind takes is checked
/// by validation; absent ones are `None`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct JsonataFields {
    pub arguments: Option<Template>,
    pub output: Option<Template>,
    pub assign: Option<Template>,
    pub items: Option<Template>,
    pub item_selector: Option<Template>,
    pub condition: Option<Template>,
    pub seconds: Option<Template>,
    pub timestamp: Option<Template>,
    pub error: Option<Template>,
    pub cause: Option<Template>,
    pub timeout_seconds: Option<Template>,
    pub heartbeat_seconds: Option<Template>,
    pub max_concurrency: Option<Template>,
    pub tolerated_failure_count: Option<Template>,
    pub tolerated_failure_percentage: Option<Template>,
    /// A Distributed Map's reader, batcher and writer, whose own fields hold JSONata.
    /// (Boxed: states nest deeply, and a state's size is on the stack at each level.)
    pub item_reader: Option<Box<JsonataItemReader>>,
    pub item_batcher: Option<Box<JsonataItemBatcher>>,
    pub result_writer: Option<Box<JsonataResultWriter>>,
}

/// A JSONata Distributed Map's `ItemReader`: `Arguments` (Bucket, Key or Prefix) and
/// `ReaderConfig.MaxItems` may be expressions; the rest of `ReaderConfig` is literal.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JsonataItemReader {
    pub resource: String,
    pub arguments: Option<Template>,
    #[serde(default)]
    pub reader_config: JsonataReaderConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct JsonataReaderConfig {
    #[serde(rename = "MaxItems")]
    pub max_items: Option<Template>,
    /// The literal fields (its `max_items` stays unset: `MaxItems` is read above).
    #[serde(flatten)]
    pub literal: super::map::ReaderConfig,
}

/// A JSONata Distributed Map's `ItemBatcher`: each field a literal or an expression.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct JsonataItemBatcher {
    pub max_items_per_batch: Option<Template>,
    pub max_input_bytes_per_batch: Option<Template>,
    pub batch_input: Option<Template>,
}

/// A JSONata Distributed Map's `ResultWriter`: `Arguments` (Bucket, Prefix) may be expressions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct JsonataResultWriter {
    pub resource: Option<String>,
    pub arguments: Option<Template>,
    pub writer_config: Option<super::map::WriterConfig>,
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Template::compile(&value)
            .map_err(|(pointer, message)| serde::de::Error::custom(format!("{pointer}: {message}")))
    }
}

/// The effective language of a state whose scope defaults to `inherited`.
pub fn language_of(state: &Map<String, Value>, inherited: QueryLanguage) -> QueryLanguage {
    QueryLanguage::named(state.get("QueryLanguage")).unwrap_or(inherited)
}

/// Moves every JSONata state's JSONata fields under [`JSONATA_KEY`] (see the module comment).
pub fn lower(definition: &mut Value) {
    let top = definition
        .as_object()
        .map(|top| language_of(top, QueryLanguage::JSONPath))
        .unwrap_or_default();
    lower_scope(definition, top);
}

fn lower_scope(scope: &mut Value, language: QueryLanguage) {
    let Some(states) = scope.get_mut("States").and_then(Value::as_object_mut) else {
        return;
    };
    for state in states.values_mut() {
        let Some(object) = state.as_object_mut() else { continue };
        let own = language_of(object, language);
        for key in ["Branches"] {
            if let Some(Value::Array(branches)) = object.get_mut(key) {
                branches.iter_mut().for_each(|branch| lower_scope(branch, own));
            }
        }
        for key in ["ItemProcessor", "Iterator"] {
            if let Some(processor) = object.get_mut(key) {
                lower_scope(processor, own);
            }
        }
        if own != QueryLanguage::JSONata {
            continue;
        }
        move_fields(object);
        for key in ["Catch", "Choices"] {
            if let Some(Value::Array(entries)) = object.get_mut(key) {
                for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
                    move_fields(entry);
                }
            }
        }
    }
}

/// A Distributed Map's blocks whose fields hold JSONata in a JSONata state.
const JSONATA_BLOCKS: &[&str] = &["ItemReader", "ItemBatcher", "ResultWriter"];

fn move_fields(object: &mut Map<String, Value>) {
    let mut fields = Map::new();
    for name in JSONATA_FIELDS.iter().chain(JSONATA_BLOCKS) {
        if let Some(value) = object.remove(*name) {
            fields.insert((*name).to_string(), value);
        }
    }
    object.insert(JSONATA_KEY.to_string(), Value::Object(fields));
}
