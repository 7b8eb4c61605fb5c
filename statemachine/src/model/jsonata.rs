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

fn move_fields(object: &mut Map<String, Value>) {
    let mut fields = Map::new();
    for name in JSONATA_FIELDS {
        if let Some(value) = object.remove(*name) {
            fields.insert((*name).to_string(), value);
        }
    }
    object.insert(JSONATA_KEY.to_string(), Value::Object(fields));
}
