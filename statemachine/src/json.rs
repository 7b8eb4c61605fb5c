//! Small JSON helpers shared by the engine: equality with numeric tolerance, sizes, and the
//! Java-style rendering AWS uses when it formats values into strings.

use serde_json::Value;

/// Step Functions' payload limit (256 KiB), beyond which `States.DataLimitExceeded` is raised.
pub const PAYLOAD_LIMIT_BYTES: usize = 262_144;

/// Deep equality where numbers compare by value (`1` equals `1.0`).
pub fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| numbers_equal(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| numbers_equal(v, w)))
        }
        _ => a == b,
    }
}

/// Compact JSON text of a value (serializing a `Value` cannot fail).
pub fn to_compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The size of a value's compact JSON text, without building the text.
pub fn serialized_len(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        _ => {
            let mut counter = ByteCounter(0);
            let _ = serde_json::to_writer(&mut counter, value);
            counter.0
        }
    }
}

/// Renders a value the way Java's `toString` does on the parsed JSON (what AWS prints in
/// `States.Format`): strings bare, objects as `{a=1, b=[]}`, arrays as `[1, 2]`.
pub fn java_string(value: &Value) -> String {
    let mut out = String::new();
    write_java(value, &mut out);
    out
}

fn write_java(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_java(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                write_java(v, out);
            }
            out.push('}');
        }
        other => out.push_str(&to_compact(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value() {
        assert!(numbers_equal(&json!({"a": [1]}), &json!({"a": [1.0]})));
        assert!(!numbers_equal(&json!(1), &json!("1")));
    }

    #[test]
    fn serialized_len_matches_text() {
        let v = json!({"a": "é", "b": [1, 2.5, null]});
        assert_eq!(serialized_len(&v), to_compact(&v).len());
    }

    #[test]
    fn java_string_renders_like_aws() {
        assert_eq!(java_string(&json!({"Arg1": 1, "Arg2": []})), "{Arg1=1, Arg2=[]}");
        assert_eq!(java_string(&json!(null)), "null");
        assert_eq!(java_string(&json!(1.1)), "1.1");
    }
}
