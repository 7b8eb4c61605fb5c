//! Payload templates (`Parameters`, `ResultSelector`, `ItemSelector`, `Assign`) and the
//! expressions of their `"key.$"` fields, evaluated in an [`Env`].

use crate::env::{Env, EvalError};
use crate::intrinsics::IntrinsicCall;
use crate::path::JsonPath;
use serde_json::{Map, Value};

/// The right-hand side of a `"key.$"` field: a path or an intrinsic function call.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Path(JsonPath),
    Intrinsic(IntrinsicCall),
}

impl Expr {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.starts_with("States.") {
            IntrinsicCall::parse(text)
                .map(Expr::Intrinsic)
                .map_err(|e| e.to_string())
        } else {
            JsonPath::parse(text).map(Expr::Path).map_err(|e| e.to_string())
        }
    }

    pub fn eval(&self, env: &Env<'_>) -> Result<Value, EvalError> {
        match self {
            Expr::Path(p) => Ok(env.require(p)?.into_owned()),
            Expr::Intrinsic(call) => call.eval(env),
        }
    }
}

/// A compiled payload template.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    Literal(Value),
    Object(Vec<(String, TemplateField)>),
    Array(Vec<Template>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TemplateField {
    Static(Template),
    Dynamic { key: String, expr: Expr },
}

impl Template {
    /// Compiles a template; the error names the JSON pointer (relative to the template) of
    /// the first bad `.$` field.
    pub fn compile(value: &Value) -> Result<Self, (String, String)> {
        Self::compile_at(value, "")
    }

    fn compile_at(value: &Value, pointer: &str) -> Result<Self, (String, String)> {
        match value {
            Value::Object(map) => {
                if !map.keys().any(|k| k.ends_with(".$")) && !has_dynamic(value) {
                    return Ok(Template::Literal(value.clone()));
                }
                let mut fields = Vec::with_capacity(map.len());
                for (key, v) in map {
                    let here = format!("{pointer}/{}", escape_pointer(key));
                    if let Some(stripped) = key.strip_suffix(".$") {
                        let Value::String(text) = v else {
                            return Err((
                                here,
                                format!(
                                    "the value of '{key}' must be a string holding a path or an intrinsic function"
                                ),
                            ));
                        };
                        let expr = Expr::parse(text).map_err(|e| (here, e))?;
                        fields.push((stripped.to_string(), TemplateField::Dynamic { key: key.clone(), expr }));
                    } else {
                        fields.push((key.clone(), TemplateField::Static(Self::compile_at(v, &here)?)));
                    }
                }
                Ok(Template::Object(fields))
            }
            Value::Array(items) if has_dynamic(value) => items
                .iter()
                .enumerate()
                .map(|(i, v)| Self::compile_at(v, &format!("{pointer}/{i}")))
                .collect::<Result<Vec<_>, _>>()
                .map(Template::Array),
            other => Ok(Template::Literal(other.clone())),
        }
    }

    pub fn eval(&self, env: &Env<'_>) -> Result<Value, EvalError> {
        match self {
            Template::Literal(v) => Ok(v.clone()),
            Template::Array(items) => items
                .iter()
                .map(|t| t.eval(env))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Template::Object(fields) => {
                let mut out = Map::new();
                for (name, field) in fields {
                    let value = match field {
                        TemplateField::Static(t) => t.eval(env)?,
                        TemplateField::Dynamic { key, expr } => match expr {
                            Expr::Path(path) => env
                                .resolve(path)
                                .ok_or_else(|| {
                                    EvalError(format!(
                                        "The JSONPath '{}' specified for the field '{}' could not be found in the input '{}'",
                                        path.text(),
                                        key,
                                        crate::json::to_compact(env.input)
                                    ))
                                })?
                                .into_owned(),
                            Expr::Intrinsic(call) => call.eval(env)?,
                        },
                    };
                    out.insert(name.clone(), value);
                }
                Ok(Value::Object(out))
            }
        }
    }
}

fn has_dynamic(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| k.ends_with(".$") || has_dynamic(v)),
        Value::Array(items) => items.iter().any(has_dynamic),
        _ => false,
    }
}

/// Escapes a key for use in a JSON pointer (RFC 6901).
pub fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::RandomSource;
    use serde_json::json;

    fn eval(template: Value, input: Value) -> Result<Value, EvalError> {
        let vars = Map::new();
        let ctx = json!({"Execution": {"Name": "run-1"}});
        let random = RandomSource::new(7);
        let env = Env {
            input: &input,
            vars: &vars,
            context: &ctx,
            random: &random,
        };
        Template::compile(&template).unwrap().eval(&env)
    }

    #[test]
    fn dynamic_fields_are_evaluated_and_renamed() {
        let out = eval(
            json!({"a.$": "$.x", "nested": {"b.$": "$$.Execution.Name"}, "list": [{"c.$": "$.x"}], "keep": "$.x"}),
            json!({"x": 5}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"a": 5, "nested": {"b": "run-1"}, "list": [{"c": 5}], "keep": "$.x"})
        );
    }

    #[test]
    fn missing_path_in_a_dynamic_field_is_an_error() {
        let err = eval(json!({"a.$": "$.nope"}), json!({})).unwrap_err();
        assert!(err.0.contains("'$.nope'"), "{}", err.0);
    }

    #[test]
    fn non_string_dynamic_field_does_not_compile() {
        assert!(Template::compile(&json!({"a.$": 1})).is_err());
        assert!(Template::compile(&json!({"a.$": "not a path"})).is_err());
    }
}
