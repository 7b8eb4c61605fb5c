//! The Amazon States Language model: a state machine, its scopes (the top level, each
//! Parallel branch and each Map processor) and its eight state types.
//!
//! Parsing happens in two steps: [`crate::validate`] checks the raw JSON and reports every
//! problem at once; only a definition without problems is then deserialized into this model
//! (`StateMachine::from_json`), whose paths, templates and choice rules arrive compiled.

mod choice;
mod fields;
pub mod jsonata;
pub mod map;
pub mod retry;

pub use choice::{BranchTest, ChoiceBranch, ChoiceRule, Comparison, Operand, Operator};
pub use fields::{
    PathField, Seconds, is_non_negative_integer, is_positive_integer, parse_timestamp,
    whole_seconds as whole_seconds_of,
};
pub use map::{ExecutionType, ItemBatcher, ItemReader, Processor, ProcessorMode, ResultWriter};
pub use retry::{Catcher, Retrier};

use crate::path::JsonPath;
use crate::payload::{Expr, Template};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// A validated, executable state machine.
#[derive(Debug, Clone)]
pub struct StateMachine {
    pub(crate) root: Arc<Scope>,
    pub(crate) comment: Option<String>,
    pub(crate) timeout_seconds: Option<u64>,
    source: Arc<str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TopLevel {
    comment: Option<String>,
    timeout_seconds: Option<u64>,
    #[serde(flatten)]
    scope: Scope,
}

/// The stack the model is built on (only the pages a definition needs are touched).
const MODEL_STACK_BYTES: usize = 16 * 1024 * 1024;

impl StateMachine {
    /// Builds the machine from a definition that validation has passed (see
    /// [`StateMachine::from_json`]).
    pub(crate) fn from_validated(mut value: Value, text: &str) -> Result<Self, serde_json::Error> {
        jsonata::lower(&mut value);
        // Deserializing a nested definition (Parallel in Parallel ...) takes far more stack per
        // level than parsing it did: the model is built on a stack of its own, big enough for
        // the deepest definition the JSON parser's recursion limit lets through.
        let top: TopLevel = stacker::grow(MODEL_STACK_BYTES, || serde_json::from_value(value))?;
        Ok(Self {
            root: Arc::new(top.scope),
            comment: top.comment,
            timeout_seconds: top.timeout_seconds,
            source: Arc::from(text),
        })
    }

    /// A Map processor as a machine of its own (what a Distributed Map's children run).
    pub(crate) fn from_scope(root: Arc<Scope>, source: String) -> Self {
        Self {
            root,
            comment: None,
            timeout_seconds: None,
            source: Arc::from(source),
        }
    }

    /// The definition text this machine was parsed from.
    pub fn definition(&self) -> &str {
        &self.source
    }

    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// The machine's top-level `TimeoutSeconds`, if any.
    pub fn timeout_seconds(&self) -> Option<u64> {
        self.timeout_seconds
    }

    /// The top-level scope: `StartAt` and the states, nested scopes inside them.
    pub fn root(&self) -> &Scope {
        &self.root
    }

    /// The names of the top-level states.
    pub fn state_names(&self) -> Vec<&str> {
        self.root.states.keys().map(String::as_str).collect()
    }
}

/// A set of states with a start: the machine itself, a Parallel branch or a Map processor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Scope {
    pub start_at: String,
    pub states: HashMap<String, State>,
}

/// Where a state goes when it finishes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transition<'a> {
    Next(&'a str),
    End,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "Type")]
pub enum State {
    Pass(PassState),
    Task(Box<TaskState>),
    Choice(ChoiceState),
    Wait(WaitState),
    Succeed(SucceedState),
    Fail(FailState),
    Parallel(Box<ParallelState>),
    Map(Box<MapState>),
}

impl State {
    /// The history name of the type (`Pass`, `Task`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            State::Pass(_) => "Pass",
            State::Task(_) => "Task",
            State::Choice(_) => "Choice",
            State::Wait(_) => "Wait",
            State::Succeed(_) => "Succeed",
            State::Fail(_) => "Fail",
            State::Parallel(_) => "Parallel",
            State::Map(_) => "Map",
        }
    }
}

/// `Next` / `End`, shared by the states that have them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Flow {
    pub next: Option<String>,
    #[serde(default)]
    pub end: bool,
}

impl Flow {
    pub fn transition(&self) -> Transition<'_> {
        match &self.next {
            Some(next) => Transition::Next(next),
            None => Transition::End,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PassState {
    /// Present exactly when the state's query language is JSONata (see [`jsonata::lower`]).
    #[serde(rename = "@JSONata")]
    pub jsonata: Option<jsonata::JsonataFields>,
    #[serde(flatten)]
    pub flow: Flow,
    #[serde(default)]
    pub input_path: PathField,
    #[serde(default)]
    pub output_path: PathField,
    #[serde(default)]
    pub result_path: PathField,
    pub parameters: Option<Template>,
    pub result: Option<Value>,
    pub assign: Option<Template>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskState {
    /// Present exactly when the state's query language is JSONata (see [`jsonata::lower`]).
    #[serde(rename = "@JSONata")]
    pub jsonata: Option<jsonata::JsonataFields>,
    #[serde(flatten)]
    pub flow: Flow,
    pub resource: String,
    #[serde(default)]
    pub input_path: PathField,
    #[serde(default)]
    pub output_path: PathField,
    #[serde(default)]
    pub result_path: PathField,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    #[serde(default)]
    pub retry: Vec<Retrier>,
    #[serde(default)]
    pub catch: Vec<Catcher>,
    pub timeout_seconds: Option<Seconds>,
    pub timeout_seconds_path: Option<JsonPath>,
    pub heartbeat_seconds: Option<Seconds>,
    pub heartbeat_seconds_path: Option<JsonPath>,
    pub assign: Option<Template>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChoiceState {
    /// Present exactly when the state's query language is JSONata (see [`jsonata::lower`]).
    #[serde(rename = "@JSONata")]
    pub jsonata: Option<jsonata::JsonataFields>,
    pub choices: Vec<ChoiceBranch>,
    pub default: Option<String>,
    #[serde(default)]
    pub input_path: PathField,
    #[serde(default)]
    pub output_path: PathField,
    pub assign: Option<Template>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitState {
    /// Present exactly when the state's query language is JSONata (see [`jsonata::lower`]).
    #[serde(rename = "@JSONata")]
    pub jsonata: Option<jsonata::JsonataFields>,
    #[serde(flatten)]
    pub flow: Flow,
    #[serde(default)]
    pub input_path: PathField,
    #[serde(default)]
    pub output_path: PathField,
    pub seconds: Option<Seconds>,
    pub timestamp: Option<String>,
    pub seconds_path: Option<JsonPath>,
    pub timestamp_path: Option<JsonPath>,
    pub assign: Option<Template>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SucceedState {
    /// Present exactly when the state's query language is JSONata (see [`jsonata::lower`]).
    #[serde(rename = "@JSONata")]
    pub jsonata: Option<jsonata::JsonataFields>,
    #[serde(default)]
    pub input_path: PathField,
    #[serde(default)]
    pub output_path: PathField,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FailState {
    /// Present exactly when the state's query language is JSONata (see [`jsonata::lower`]).
    #[serde(rename = "@JSONata")]
    pub jsonata: Option<jsonata::JsonataFields>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub error_path: Option<Expr>,
    pub cause_path: Option<Expr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParallelState {
    /// Present exactly when the state's query language is JSONata (see [`jsonata::lower`]).
    #[serde(rename = "@JSONata")]
    pub jsonata: Option<jsonata::JsonataFields>,
    #[serde(flatten)]
    pub flow: Flow,
    pub branches: Vec<Scope>,
    #[serde(default)]
    pub input_path: PathField,
    #[serde(default)]
    pub output_path: PathField,
    #[serde(default)]
    pub result_path: PathField,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    #[serde(default)]
    pub retry: Vec<Retrier>,
    #[serde(default)]
    pub catch: Vec<Catcher>,
    pub assign: Option<Template>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MapState {
    /// Present exactly when the state's query language is JSONata (see [`jsonata::lower`]).
    #[serde(rename = "@JSONata")]
    pub jsonata: Option<jsonata::JsonataFields>,
    #[serde(flatten)]
    pub flow: Flow,
    pub item_processor: Option<Processor>,
    pub iterator: Option<Processor>,
    pub items_path: Option<JsonPath>,
    pub item_selector: Option<Template>,
    pub parameters: Option<Template>,
    pub item_reader: Option<ItemReader>,
    pub item_batcher: Option<ItemBatcher>,
    pub result_writer: Option<ResultWriter>,
    pub label: Option<String>,
    pub max_concurrency: Option<u64>,
    pub max_concurrency_path: Option<JsonPath>,
    pub tolerated_failure_count: Option<u64>,
    pub tolerated_failure_count_path: Option<JsonPath>,
    pub tolerated_failure_percentage: Option<f64>,
    pub tolerated_failure_percentage_path: Option<JsonPath>,
    #[serde(default)]
    pub input_path: PathField,
    #[serde(default)]
    pub output_path: PathField,
    #[serde(default)]
    pub result_path: PathField,
    pub result_selector: Option<Template>,
    #[serde(default)]
    pub retry: Vec<Retrier>,
    #[serde(default)]
    pub catch: Vec<Catcher>,
    pub assign: Option<Template>,
}

impl MapState {
    /// The states of `ItemProcessor`, or of the legacy `Iterator`.
    pub fn processor(&self) -> Option<&Scope> {
        self.item_processor().map(|p| p.scope.as_ref())
    }

    /// `ItemProcessor`, or the legacy `Iterator`, with its configuration.
    pub fn item_processor(&self) -> Option<&Processor> {
        self.item_processor.as_ref().or(self.iterator.as_ref())
    }

    /// Whether the items run as child executions (`ProcessorConfig.Mode = DISTRIBUTED`).
    pub fn is_distributed(&self) -> bool {
        self.item_processor()
            .is_some_and(|p| p.config.mode == ProcessorMode::Distributed)
    }

    /// `ItemSelector`, or the legacy `Parameters`.
    pub fn selector(&self) -> Option<&Template> {
        self.item_selector.as_ref().or(self.parameters.as_ref())
    }
}

impl TryFrom<Value> for Template {
    type Error = String;
    fn try_from(value: Value) -> Result<Self, String> {
        Template::compile(&value).map_err(|(pointer, message)| format!("{pointer}: {message}"))
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Template::try_from(value).map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Expr::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for JsonPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        JsonPath::parse(&text).map_err(serde::de::Error::custom)
    }
}
