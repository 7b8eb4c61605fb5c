//! JSONata as Step Functions runs it (`QueryLanguage: "JSONata"`): in a JSONata state's fields,
//! a string that begins with `{%` and ends with `%}` is an expression and everything else is a
//! literal, at any depth of objects and arrays. Expressions see `$states` (`input`, `result`,
//! `errorOutput`, `context`) and the workflow variables as bindings (never pasted into the
//! text), and AWS's own functions ([`functions`]). The language is JSONata 2.0.6, evaluated by
//! the `jlens-core` crate; the operators added after 2.0.6 (`??`, `?:`) are refused, as AWS
//! refuses them.

mod functions;

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::env::RandomSource;

/// A compiled JSONata expression with the text AWS quotes in its errors.
#[derive(Debug, Clone)]
pub struct Expression {
    text: Arc<str>,
    compiled: jlens_core::Expression,
}

/// Whether `text` is an expression (`{% ... %}`, no space outside the braces).
pub fn is_expression(text: &str) -> bool {
    text.len() >= 4 && text.starts_with("{%") && text.ends_with("%}")
}

impl Expression {
    /// Compiles the inside of `{% ... %}`.
    pub fn compile(inner: &str) -> Result<Expression, String> {
        let text = inner.trim();
        let compiled = jlens_core::Expression::compile(text)
            .map_err(|err| format!("the JSONata expression '{text}' does not compile: {}", describe(&err)))?;
        let mut newer = None;
        compiled.ast().root.walk(&mut |node| {
            if let jlens_core::ast::NodeKind::Fallback { op, .. } = &node.kind {
                newer.get_or_insert(op.symbol());
            }
        });
        if let Some(operator) = newer {
            return Err(format!(
                "the JSONata expression '{text}' uses the operator '{operator}', which is newer than JSONata 2.0.6 (what Step Functions runs)"
            ));
        }
        Ok(Expression {
            text: Arc::from(text),
            compiled,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The value, or the reason AWS gives (undefined, or the error the evaluation threw).
    pub fn evaluate(&self, bound: &Bound) -> Result<Value, Failure> {
        match self.compiled.evaluate_with(None, &bound.bindings, &bound.options) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(Failure::Undefined),
            Err(err) => Err(Failure::Threw(describe(&err))),
        }
    }
}

/// `CODE: message`, as AWS quotes a JSONata error.
fn describe(err: &jlens_core::Error) -> String {
    let code = err.code();
    let message = err.message();
    if code.is_empty() || message.starts_with(code) {
        message
    } else {
        format!("{code}: {message}")
    }
}

/// Why an expression gave no value.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    Undefined,
    Threw(String),
}

/// An evaluation that failed in a field, worded as AWS words `States.QueryEvaluationError`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryError {
    pub field: String,
    pub expression: String,
    pub failure: Failure,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (expression, field) = (&self.expression, &self.field);
        match &self.failure {
            Failure::Undefined => write!(
                f,
                "The JSONata expression '{expression}' specified for the field '{field}' returned nothing (undefined)."
            ),
            Failure::Threw(reason) => write!(
                f,
                "The JSONata expression '{expression}' specified for the field '{field}' threw an error during evaluation. {reason}"
            ),
        }
    }
}

/// A JSON value whose `{% %}` strings are compiled expressions.
#[derive(Debug, Clone)]
pub struct Template {
    node: Node,
    /// The value as written: two templates are equal when they were written the same.
    source: Value,
}

impl PartialEq for Template {
    fn eq(&self, other: &Template) -> bool {
        self.source == other.source
    }
}

#[derive(Debug, Clone)]
enum Node {
    Literal(Value),
    Expression(Expression),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Template {
    /// Compiles every expression in `value`; the first that does not compile is reported with
    /// its JSON pointer below `value`.
    pub fn compile(value: &Value) -> Result<Template, (String, String)> {
        Ok(Template {
            node: compile_node(value, "")?,
            source: value.clone(),
        })
    }

    /// A template that is one literal value.
    pub fn literal(value: Value) -> Template {
        Template {
            node: Node::Literal(value.clone()),
            source: value,
        }
    }

    /// The value, every expression evaluated. `field` names the field in errors
    /// (`Output`, `Assign`), extended with the keys below it (`Assign/result`).
    pub fn evaluate(&self, field: &str, bound: &Bound) -> Result<Value, QueryError> {
        evaluate_node(&self.node, field, bound)
    }

    /// The value as written in the definition.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// Whether the template is an object literal at its top (what `Assign` must be).
    pub fn is_object(&self) -> bool {
        match &self.node {
            Node::Object(_) => true,
            Node::Literal(value) => value.is_object(),
            _ => false,
        }
    }
}

fn compile_node(value: &Value, pointer: &str) -> Result<Node, (String, String)> {
    let literal = |node: &Node| matches!(node, Node::Literal(_));
    Ok(match value {
        Value::String(text) if is_expression(text) => {
            let inner = &text[2..text.len() - 2];
            Node::Expression(Expression::compile(inner).map_err(|message| (pointer.to_string(), message))?)
        }
        Value::Array(items) => {
            let nodes = items
                .iter()
                .enumerate()
                .map(|(index, item)| compile_node(item, &format!("{pointer}/{index}")))
                .collect::<Result<Vec<_>, _>>()?;
            if nodes.iter().all(literal) {
                Node::Literal(value.clone())
            } else {
                Node::Array(nodes)
            }
        }
        Value::Object(map) => {
            let nodes = map
                .iter()
                .map(|(key, item)| {
                    let pointer = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                    Ok((key.clone(), compile_node(item, &pointer)?))
                })
                .collect::<Result<Vec<_>, (String, String)>>()?;
            if nodes.iter().all(|(_, node)| literal(node)) {
                Node::Literal(value.clone())
            } else {
                Node::Object(nodes)
            }
        }
        other => Node::Literal(other.clone()),
    })
}

fn evaluate_node(node: &Node, field: &str, bound: &Bound) -> Result<Value, QueryError> {
    match node {
        Node::Literal(value) => Ok(value.clone()),
        Node::Expression(expression) => expression.evaluate(bound).map_err(|failure| QueryError {
            field: field.to_string(),
            expression: expression.text().to_string(),
            failure,
        }),
        Node::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| evaluate_node(item, &format!("{field}[{index}]"), bound))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Node::Object(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (key, item) in entries {
                map.insert(key.clone(), evaluate_node(item, &format!("{field}/{key}"), bound)?);
            }
            Ok(Value::Object(map))
        }
    }
}

/// What `$states` holds for one evaluation.
pub struct States<'a> {
    pub input: &'a Value,
    pub result: Option<&'a Value>,
    pub error_output: Option<&'a Value>,
    pub context: Value,
}

/// The bindings of one evaluation: `$states`, the workflow variables, AWS's functions, the
/// engine's clock (`$now`, `$millis`) and its random source (`$random`, `$uuid`).
pub struct Bound {
    bindings: jlens_core::Bindings,
    options: jlens_core::Options,
}

impl Bound {
    pub fn new(states: States<'_>, vars: &Map<String, Value>, now_millis: i64, random: &RandomSource) -> Bound {
        let mut object = Map::with_capacity(4);
        object.insert("input".into(), states.input.clone());
        if let Some(result) = states.result {
            object.insert("result".into(), result.clone());
        }
        if let Some(error_output) = states.error_output {
            object.insert("errorOutput".into(), error_output.clone());
        }
        object.insert("context".into(), states.context);
        let mut bindings = functions::register(jlens_core::Bindings::new(), random.next_u64());
        for (name, value) in vars {
            bindings = bindings.var(name.clone(), value.clone());
        }
        bindings = bindings.var("states", Value::Object(object));
        Bound {
            bindings,
            options: jlens_core::Options::new().now(now_millis).seed(random.next_u64()),
        }
    }
}

#[cfg(test)]
mod tests;
