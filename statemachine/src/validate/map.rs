//! The fields of a Distributed Map, checked as the Step Functions developer guide states
//! them: `ItemProcessor.ProcessorConfig`, `ItemReader` (with `ReaderConfig`), `ItemBatcher`,
//! `ResultWriter` (with `WriterConfig`) and `Label`, allowed only where AWS allows them and
//! with the same value ranges. Each problem carries the JSON pointer of the field. In a JSONata
//! state the same blocks take `Arguments` instead of `Parameters`, no `...Path` fields, and a
//! `{% %}` expression wherever a number goes.

use super::Checker;
use crate::json::PAYLOAD_LIMIT_BYTES;
use crate::model::map::{MAX_CSV_HEADER_BYTES, S3_GET_OBJECT, S3_LIST_OBJECTS_V2, S3_PUT_OBJECT};
use crate::path::JsonPath;
use crate::payload::{Template, escape_pointer};
use serde_json::{Map, Value};

/// AWS's ceiling on `MaxItems`.
const MAX_ITEMS: u64 = 100_000_000;
/// Characters a `Label` cannot hold (besides whitespace and control characters).
const LABEL_FORBIDDEN: &str = "<>{}[]?*\"#%\\^|~`$&,;:/";

/// Checks one JSON object found at `at`, reporting problems against `state`.
struct Fields<'a, 'c> {
    checker: &'c mut Checker,
    state: &'a str,
    map: &'a Map<String, Value>,
    at: String,
    /// The state's query language is JSONata.
    jsonata: bool,
}

impl<'a> Fields<'a, '_> {
    fn problem(&mut self, field: &str, message: impl Into<String>) {
        let pointer = if field.is_empty() {
            self.at.clone()
        } else {
            format!("{}/{}", self.at, escape_pointer(field))
        };
        self.checker.problem(Some(self.state), &pointer, message);
    }

    fn only(&mut self, what: &str, allowed: &[&str]) {
        for key in self.map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.problem(
                    key,
                    format!("'{key}' is not allowed in {what} (allowed: {})", allowed.join(", ")),
                );
            }
        }
    }

    /// A string field that must be one of `choices`.
    fn one_of(&mut self, field: &str, choices: &[&str]) -> Option<&'a str> {
        match self.map.get(field) {
            None => None,
            Some(Value::String(s)) if choices.contains(&s.as_str()) => Some(s),
            Some(other) => {
                self.problem(
                    field,
                    format!("{field} must be one of {}, not {other}", choices.join(", ")),
                );
                None
            }
        }
    }

    fn integer_in(&mut self, field: &str, min: u64, max: u64) -> Option<u64> {
        let value = self.map.get(field)?;
        if self.jsonata && value.as_str().is_some_and(crate::jsonata::is_expression) {
            // Checked when it is evaluated; compiled by `template`.
            self.template(field);
            return None;
        }
        match crate::model::whole_seconds_of(value).filter(|n| (min..=max).contains(n)) {
            Some(n) => Some(n),
            None => {
                self.problem(
                    field,
                    format!("{field} must be an integer from {min} to {max}, not {value}"),
                );
                None
            }
        }
    }

    fn path(&mut self, field: &str) {
        match self.map.get(field) {
            None => {}
            Some(Value::String(text)) => {
                if let Err(e) = JsonPath::parse(text) {
                    self.problem(field, e.to_string());
                }
            }
            Some(_) => self.problem(field, format!("{field} must be a path string")),
        }
    }

    fn template(&mut self, field: &str) {
        let Some(value) = self.map.get(field) else { return };
        if self.jsonata {
            if let Err((pointer, message)) = crate::jsonata::Template::compile(value) {
                let at = format!("{}/{}{pointer}", self.at, escape_pointer(field));
                self.checker.problem(Some(self.state), &at, message);
            }
            return;
        }
        if !value.is_object() {
            self.problem(field, format!("{field} must be a JSON object"));
            return;
        }
        if let Err((pointer, message)) = Template::compile(value) {
            let at = format!("{}/{}{pointer}", self.at, escape_pointer(field));
            self.checker.problem(Some(self.state), &at, message);
        }
    }

    fn exclusive(&mut self, a: &str, b: &str) {
        if self.map.contains_key(a) && self.map.contains_key(b) {
            self.problem(b, format!("{a} and {b} cannot both be set"));
        }
    }

    /// The object held by `field`, to check in its turn.
    fn object(&mut self, field: &str) -> Option<&'a Map<String, Value>> {
        match self.map.get(field) {
            None => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => {
                self.problem(field, format!("{field} must be a JSON object"));
                None
            }
        }
    }

    fn nested<'b>(&'b mut self, field: &str, map: &'a Map<String, Value>) -> Fields<'a, 'b> {
        Fields {
            checker: self.checker,
            state: self.state,
            map,
            at: format!("{}/{}", self.at, escape_pointer(field)),
            jsonata: self.jsonata,
        }
    }

    /// The fields a block allows: `jsonpath` in a JSONPath state, `jsonata` in a JSONata one.
    fn allowed(&self, jsonpath: &'static [&'static str], jsonata: &'static [&'static str]) -> &'static [&'static str] {
        if self.jsonata { jsonata } else { jsonpath }
    }
}

/// Checks a Map state's processor mode and the fields that only a Distributed Map has.
pub(super) fn distributed_fields(
    checker: &mut Checker,
    state: &str,
    map: &Map<String, Value>,
    at: &str,
    jsonata: bool,
) {
    let mut c = Fields {
        checker,
        state,
        map,
        at: at.to_string(),
        jsonata,
    };
    let distributed = processor_config(&mut c);
    if !distributed {
        // (The tolerance fields are documented for the Distributed Map, but inline maps that
        // set them, as Sluice's own pipeline does, are accepted and honoured.)
        for field in ["ItemReader", "ItemBatcher", "ResultWriter", "Label"] {
            if map.contains_key(field) {
                c.problem(
                    field,
                    format!("{field} is allowed only in a Distributed Map (ItemProcessor.ProcessorConfig.Mode = DISTRIBUTED)"),
                );
            }
        }
        return;
    }
    if jsonata {
        // The items come from the one or the other.
        c.exclusive("Items", "ItemReader");
    }
    if let Some(reader) = c.object("ItemReader") {
        item_reader(&mut c.nested("ItemReader", reader));
    }
    if let Some(batcher) = c.object("ItemBatcher") {
        item_batcher(&mut c.nested("ItemBatcher", batcher));
    }
    if let Some(writer) = c.object("ResultWriter") {
        result_writer(&mut c.nested("ResultWriter", writer));
    }
    c.integer_in("MaxConcurrency", 0, 10_000);
    match map.get("Label") {
        None => {}
        Some(Value::String(label)) => {
            let bad = label
                .chars()
                .any(|ch| ch.is_whitespace() || ch.is_control() || LABEL_FORBIDDEN.contains(ch));
            if label.is_empty() || label.chars().count() > 40 || bad {
                c.problem(
                    "Label",
                    format!("Label must be 1 to 40 characters without whitespace, control characters or any of {LABEL_FORBIDDEN}"),
                );
            }
        }
        Some(_) => c.problem("Label", "Label must be a string"),
    }
}

/// Checks `ProcessorConfig`; true when the map is distributed.
fn processor_config(c: &mut Fields<'_, '_>) -> bool {
    let Some(processor) = c.map.get("ItemProcessor").and_then(Value::as_object) else {
        return false;
    };
    let Some(config) = c.nested("ItemProcessor", processor).object("ProcessorConfig") else {
        return false;
    };
    let mut at = c.nested("ItemProcessor", processor);
    let mut f = at.nested("ProcessorConfig", config);
    f.only("ProcessorConfig", &["Mode", "ExecutionType"]);
    let mode = f.one_of("Mode", &["INLINE", "DISTRIBUTED"]);
    let execution_type = f.one_of("ExecutionType", &["STANDARD", "EXPRESS"]);
    let distributed = mode == Some("DISTRIBUTED");
    if distributed && !config.contains_key("ExecutionType") {
        f.problem(
            "",
            "a Distributed Map's ProcessorConfig needs an ExecutionType (STANDARD or EXPRESS)",
        );
    }
    if !distributed && execution_type.is_some() {
        f.problem(
            "ExecutionType",
            "ExecutionType is allowed only with \"Mode\": \"DISTRIBUTED\"",
        );
    }
    distributed
}

fn item_reader(f: &mut Fields<'_, '_>) {
    let allowed = f.allowed(
        &["Resource", "Parameters", "Arguments", "ReaderConfig"],
        &["Resource", "Arguments", "ReaderConfig"],
    );
    f.only("an ItemReader", allowed);
    f.exclusive("Parameters", "Arguments");
    f.template("Parameters");
    f.template("Arguments");
    let resource = match f.map.get("Resource") {
        None => {
            f.problem("", "an ItemReader needs a Resource");
            None
        }
        Some(Value::String(r)) if r == S3_GET_OBJECT || r == S3_LIST_OBJECTS_V2 => Some(r.as_str()),
        Some(other) => {
            f.problem(
                "Resource",
                format!("the ItemReader's Resource must be {S3_GET_OBJECT} or {S3_LIST_OBJECTS_V2}, not {other}"),
            );
            None
        }
    };
    if !f.map.contains_key("Parameters") && !f.map.contains_key("Arguments") {
        f.problem("", "an ItemReader needs Parameters (or Arguments) naming the Bucket");
    }
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    let config = f.object("ReaderConfig");
    let mut r = f.nested("ReaderConfig", config.unwrap_or(&EMPTY));
    let allowed = r.allowed(
        &[
            "InputType",
            "CSVHeaderLocation",
            "CSVHeaders",
            "CSVDelimiter",
            "MaxItems",
            "MaxItemsPath",
            "ManifestType",
        ],
        &[
            "InputType",
            "CSVHeaderLocation",
            "CSVHeaders",
            "CSVDelimiter",
            "MaxItems",
            "ManifestType",
        ],
    );
    r.only("a ReaderConfig", allowed);
    let input_type = match r.map.get("InputType") {
        Some(Value::String(t)) if t == "PARQUET" => {
            r.problem(
                "InputType",
                "PARQUET input is not supported by the local engine (CSV, JSON, JSONL, MANIFEST are)",
            );
            None
        }
        _ => r.one_of("InputType", &["CSV", "JSON", "JSONL", "MANIFEST"]),
    };
    match resource {
        Some(S3_GET_OBJECT) if !r.map.contains_key("InputType") => r.problem(
            "",
            "an ItemReader with s3:getObject needs ReaderConfig.InputType (CSV, JSON, JSONL or MANIFEST)",
        ),
        Some(S3_LIST_OBJECTS_V2) if r.map.contains_key("InputType") => {
            r.problem("InputType", "an ItemReader with s3:listObjectsV2 takes no InputType")
        }
        _ => {}
    }
    let csv = input_type == Some("CSV");
    for field in ["CSVHeaderLocation", "CSVHeaders", "CSVDelimiter"] {
        if !csv && r.map.contains_key(field) {
            r.problem(field, format!("{field} is allowed only with \"InputType\": \"CSV\""));
        }
    }
    if csv {
        let location = r.one_of("CSVHeaderLocation", &["FIRST_ROW", "GIVEN"]);
        r.one_of("CSVDelimiter", &["COMMA", "PIPE", "SEMICOLON", "SPACE", "TAB"]);
        let given = location == Some("GIVEN");
        match r.map.get("CSVHeaders") {
            None if given => r.problem("", "\"CSVHeaderLocation\": \"GIVEN\" needs CSVHeaders"),
            None => {}
            Some(_) if !given => r.problem(
                "CSVHeaders",
                "CSVHeaders is allowed only with \"CSVHeaderLocation\": \"GIVEN\"",
            ),
            Some(Value::Array(headers)) if !headers.is_empty() && headers.iter().all(Value::is_string) => {
                let bytes: usize = headers.iter().filter_map(Value::as_str).map(|h| h.len() + 1).sum();
                if bytes > MAX_CSV_HEADER_BYTES {
                    r.problem(
                        "CSVHeaders",
                        format!(
                            "CSVHeaders are {bytes} bytes; Step Functions reads headers of up to {} bytes",
                            MAX_CSV_HEADER_BYTES
                        ),
                    );
                }
            }
            Some(_) => r.problem("CSVHeaders", "CSVHeaders must be a non-empty array of strings"),
        }
    }
    r.exclusive("MaxItems", "MaxItemsPath");
    r.integer_in("MaxItems", 0, MAX_ITEMS);
    r.path("MaxItemsPath");
    match r.map.get("ManifestType") {
        None => {}
        Some(_) if input_type != Some("MANIFEST") => r.problem(
            "ManifestType",
            "ManifestType is allowed only with \"InputType\": \"MANIFEST\"",
        ),
        Some(Value::String(t)) if t == "S3_INVENTORY" => {}
        Some(Value::String(t)) if t == "ATHENA_DATA" => r.problem(
            "ManifestType",
            "ATHENA_DATA manifests are not supported by the local engine (S3_INVENTORY is)",
        ),
        Some(other) => r.problem(
            "ManifestType",
            format!("ManifestType must be S3_INVENTORY, not {other}"),
        ),
    }
}

fn item_batcher(f: &mut Fields<'_, '_>) {
    let allowed = f.allowed(
        &[
            "MaxItemsPerBatch",
            "MaxItemsPerBatchPath",
            "MaxInputBytesPerBatch",
            "MaxInputBytesPerBatchPath",
            "BatchInput",
        ],
        &["MaxItemsPerBatch", "MaxInputBytesPerBatch", "BatchInput"],
    );
    f.only("an ItemBatcher", allowed);
    f.exclusive("MaxItemsPerBatch", "MaxItemsPerBatchPath");
    f.exclusive("MaxInputBytesPerBatch", "MaxInputBytesPerBatchPath");
    f.integer_in("MaxItemsPerBatch", 1, u32::MAX as u64);
    f.integer_in("MaxInputBytesPerBatch", 1, PAYLOAD_LIMIT_BYTES as u64);
    f.path("MaxItemsPerBatchPath");
    f.path("MaxInputBytesPerBatchPath");
    f.template("BatchInput");
    let limited = [
        "MaxItemsPerBatch",
        "MaxItemsPerBatchPath",
        "MaxInputBytesPerBatch",
        "MaxInputBytesPerBatchPath",
    ]
    .iter()
    .any(|k| f.map.contains_key(*k));
    if !limited {
        f.problem(
            "",
            "an ItemBatcher needs MaxItemsPerBatch, MaxInputBytesPerBatch or one of their Path forms",
        );
    }
}

fn result_writer(f: &mut Fields<'_, '_>) {
    let allowed = f.allowed(
        &["Resource", "Parameters", "Arguments", "WriterConfig"],
        &["Resource", "Arguments", "WriterConfig"],
    );
    f.only("a ResultWriter", allowed);
    f.exclusive("Parameters", "Arguments");
    f.template("Parameters");
    f.template("Arguments");
    let has_parameters = f.map.contains_key("Parameters") || f.map.contains_key("Arguments");
    match f.map.get("Resource") {
        None if has_parameters => f.problem(
            "",
            "a ResultWriter with Parameters needs \"Resource\": \"arn:aws:states:::s3:putObject\"",
        ),
        None => {}
        Some(Value::String(r)) if r == S3_PUT_OBJECT && !has_parameters => f.problem(
            "",
            "a ResultWriter with a Resource needs Parameters (or Arguments) with the Bucket",
        ),
        Some(Value::String(r)) if r == S3_PUT_OBJECT => {}
        Some(other) => f.problem(
            "Resource",
            format!("the ResultWriter's Resource must be {S3_PUT_OBJECT}, not {other}"),
        ),
    }
    if let Some(Value::Object(parameters)) = f.map.get("Parameters").or_else(|| f.map.get("Arguments"))
        && !parameters.contains_key("Bucket")
        && !parameters.contains_key("Bucket.$")
    {
        let field = if f.map.contains_key("Parameters") {
            "Parameters"
        } else {
            "Arguments"
        };
        f.problem(field, "the ResultWriter's Parameters need a Bucket");
    }
    if let Some(config) = f.object("WriterConfig") {
        let mut w = f.nested("WriterConfig", config);
        w.only("a WriterConfig", &["OutputType", "Transformation"]);
        w.one_of("OutputType", &["JSON", "JSONL"]);
        w.one_of("Transformation", &["NONE", "COMPACT", "FLATTEN"]);
    }
    if f.map.is_empty() {
        f.problem(
            "",
            "a ResultWriter needs Resource and Parameters, a WriterConfig, or both",
        );
    }
}
