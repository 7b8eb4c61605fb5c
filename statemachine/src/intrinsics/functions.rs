//! The intrinsic functions themselves, each checking its argument types as AWS does.

use super::{Arg, Function, IntrinsicCall};
use crate::env::{Env, EvalError};
use crate::json::{java_string, numbers_equal, to_compact};
use base64::Engine as _;
use serde_json::{Map, Value};

/// AWS caps ArrayRange results and Base64 inputs.
const BASE64_INPUT_LIMIT: usize = 10_000;

fn fail(function: &str, reason: impl std::fmt::Display) -> EvalError {
    EvalError(format!("The intrinsic function States.{function} failed: {reason}"))
}

fn string_arg<'v>(f: &str, v: &'v Value, position: usize) -> Result<&'v str, EvalError> {
    v.as_str().ok_or_else(|| {
        fail(
            f,
            format!("argument {position} must be a string, got {}", to_compact(v)),
        )
    })
}

fn array_arg<'v>(f: &str, v: &'v Value, position: usize) -> Result<&'v Vec<Value>, EvalError> {
    v.as_array().ok_or_else(|| {
        fail(
            f,
            format!("argument {position} must be an array, got {}", to_compact(v)),
        )
    })
}

fn integer_arg(f: &str, v: &Value, position: usize) -> Result<i64, EvalError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i64))
            .ok_or_else(|| fail(f, format!("argument {position} must be an integer, got {n}"))),
        other => Err(fail(
            f,
            format!("argument {position} must be an integer, got {}", to_compact(other)),
        )),
    }
}

/// A number rounded to the nearest integer as Step Functions (Java's `Math.round`) rounds it:
/// halves go up (1.5 to 2, -1.5 to -1). MathAdd and MathRandom take decimals this way.
fn rounded_arg(f: &str, v: &Value, position: usize) -> Result<i64, EvalError> {
    if let Some(n) = v.as_i64() {
        return Ok(n);
    }
    match v.as_f64() {
        Some(x) if x.is_finite() && x.abs() < 9.2e18 => Ok((x + 0.5).floor() as i64),
        _ => Err(fail(
            f,
            format!("argument {position} must be a number, got {}", to_compact(v)),
        )),
    }
}

pub(super) fn apply(call: &IntrinsicCall, args: Vec<Value>, env: &Env<'_>) -> Result<Value, EvalError> {
    match call.function {
        Function::Format => format(call, &args),
        Function::StringToJson => {
            let s = string_arg("StringToJson", &args[0], 1)?;
            if s.trim().is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_str(s).map_err(|e| fail("StringToJson", format!("invalid JSON: {e}")))
        }
        Function::JsonToString => Ok(Value::String(to_compact(&args[0]))),
        Function::Array => Ok(Value::Array(args)),
        Function::ArrayPartition => {
            let items = array_arg("ArrayPartition", &args[0], 1)?;
            let size = integer_arg("ArrayPartition", &args[1], 2)?;
            if size <= 0 {
                return Err(fail("ArrayPartition", "the chunk size must be greater than 0"));
            }
            Ok(Value::Array(super::shared::partition(items, size as usize)))
        }
        Function::ArrayContains => {
            let items = array_arg("ArrayContains", &args[0], 1)?;
            Ok(Value::Bool(items.iter().any(|v| numbers_equal(v, &args[1]))))
        }
        Function::ArrayRange => {
            let start = integer_arg("ArrayRange", &args[0], 1)?;
            let end = integer_arg("ArrayRange", &args[1], 2)?;
            let step = integer_arg("ArrayRange", &args[2], 3)?;
            super::shared::range(start, end, step)
                .map(Value::Array)
                .map_err(|reason| fail("ArrayRange", reason))
        }
        Function::ArrayGetItem => {
            let items = array_arg("ArrayGetItem", &args[0], 1)?;
            let index = integer_arg("ArrayGetItem", &args[1], 2)?;
            usize::try_from(index)
                .ok()
                .and_then(|i| items.get(i))
                .cloned()
                .ok_or_else(|| fail("ArrayGetItem", format!("index {index} is out of bounds")))
        }
        Function::ArrayLength => Ok(Value::from(array_arg("ArrayLength", &args[0], 1)?.len())),
        Function::ArrayUnique => {
            let items = array_arg("ArrayUnique", &args[0], 1)?;
            let mut out: Vec<Value> = Vec::new();
            for item in items {
                if !out.iter().any(|seen| numbers_equal(seen, item)) {
                    out.push(item.clone());
                }
            }
            Ok(Value::Array(out))
        }
        Function::Base64Encode => {
            let s = string_arg("Base64Encode", &args[0], 1)?;
            if s.len() > BASE64_INPUT_LIMIT {
                return Err(fail("Base64Encode", "the input exceeds 10,000 characters"));
            }
            Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(s.as_bytes()),
            ))
        }
        Function::Base64Decode => {
            let s = string_arg("Base64Decode", &args[0], 1)?;
            if s.len() > BASE64_INPUT_LIMIT {
                return Err(fail("Base64Decode", "the input exceeds 10,000 characters"));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(|e| fail("Base64Decode", format!("invalid base64: {e}")))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| fail("Base64Decode", "the decoded bytes are not UTF-8"))
        }
        Function::Hash => {
            let data = match &args[0] {
                Value::String(s) => s.clone(),
                other => to_compact(other),
            };
            let algorithm = string_arg("Hash", &args[1], 2)?;
            hash(data.as_bytes(), algorithm).map(Value::String)
        }
        Function::JsonMerge => {
            let (Value::Object(a), Value::Object(b)) = (&args[0], &args[1]) else {
                return Err(fail("JsonMerge", "both arguments must be JSON objects"));
            };
            let deep = match &args[2] {
                Value::Bool(b) => *b,
                other => {
                    return Err(fail(
                        "JsonMerge",
                        format!("the third argument must be a boolean, got {}", to_compact(other)),
                    ));
                }
            };
            let mut merged = a.clone();
            merge(&mut merged, b, deep);
            Ok(Value::Object(merged))
        }
        Function::MathRandom => {
            let start = rounded_arg("MathRandom", &args[0], 1)?;
            let end = rounded_arg("MathRandom", &args[1], 2)?;
            if end <= start {
                return Err(fail("MathRandom", "the end must be greater than the start"));
            }
            let span = (end - start) as u64;
            let draw = match args.get(2) {
                Some(seed) => {
                    let seed = integer_arg("MathRandom", seed, 3)?;
                    crate::env::RandomSource::new(seed as u64).next_u64()
                }
                None => env.random.next_u64(),
            };
            Ok(Value::from(start + (draw % span) as i64))
        }
        Function::MathAdd => rounded_arg("MathAdd", &args[0], 1)?
            .checked_add(rounded_arg("MathAdd", &args[1], 2)?)
            .map(Value::from)
            .ok_or_else(|| fail("MathAdd", "the sum overflows")),
        Function::StringSplit => {
            let s = string_arg("StringSplit", &args[0], 1)?;
            let delimiters = string_arg("StringSplit", &args[1], 2)?;
            Ok(Value::Array(
                s.split(|c| delimiters.contains(c))
                    .filter(|part| !part.is_empty())
                    .map(|part| Value::String(part.to_string()))
                    .collect(),
            ))
        }
        Function::Uuid => Ok(Value::String(super::shared::uuid_v4(env.random))),
    }
}

fn format(call: &IntrinsicCall, args: &[Value]) -> Result<Value, EvalError> {
    // A literal template keeps its escapes so `\{` stays a brace, not a placeholder.
    let template: String = match &call.args[0] {
        Arg::Str { raw, .. } => raw.clone(),
        _ => string_arg("Format", &args[0], 1)?.replace('\\', "\\\\"),
    };
    let mut out = String::new();
    let mut next_arg = 1;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(escaped) = chars.next() {
                    out.push(escaped);
                }
            }
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                let value = args
                    .get(next_arg)
                    .ok_or_else(|| fail("Format", "the template has more placeholders than arguments"))?;
                out.push_str(&java_string(value));
                next_arg += 1;
            }
            c => out.push(c),
        }
    }
    if next_arg != args.len() {
        return Err(fail("Format", "the template has fewer placeholders than arguments"));
    }
    Ok(Value::String(out))
}

fn merge(into: &mut Map<String, Value>, from: &Map<String, Value>, deep: bool) {
    for (key, value) in from {
        match (into.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) if deep => merge(existing, incoming, true),
            _ => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

fn hash(data: &[u8], algorithm: &str) -> Result<String, EvalError> {
    super::shared::hash(data, algorithm).map_err(|reason| fail("Hash", reason))
}
