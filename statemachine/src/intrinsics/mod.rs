//! Intrinsic functions (`States.Format(...)`, `States.Array(...)`, ...): parsing the call
//! syntax and evaluating it. The functions themselves live in [`functions`].

mod functions;
pub(crate) mod shared;

use crate::env::{Env, EvalError};
use crate::path::JsonPath;
use serde_json::{Number, Value};

/// A call that cannot be parsed, or names an unknown function or a wrong number of arguments.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid intrinsic function '{text}': {reason}")]
pub struct IntrinsicSyntaxError {
    pub text: String,
    pub reason: String,
}

/// Every intrinsic function of the JSONPath query language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

impl Function {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "States.Format" => Self::Format,
            "States.StringToJson" => Self::StringToJson,
            "States.JsonToString" => Self::JsonToString,
            "States.Array" => Self::Array,
            "States.ArrayPartition" => Self::ArrayPartition,
            "States.ArrayContains" => Self::ArrayContains,
            "States.ArrayRange" => Self::ArrayRange,
            "States.ArrayGetItem" => Self::ArrayGetItem,
            "States.ArrayLength" => Self::ArrayLength,
            "States.ArrayUnique" => Self::ArrayUnique,
            "States.Base64Encode" => Self::Base64Encode,
            "States.Base64Decode" => Self::Base64Decode,
            "States.Hash" => Self::Hash,
            "States.JsonMerge" => Self::JsonMerge,
            "States.MathRandom" => Self::MathRandom,
            "States.MathAdd" => Self::MathAdd,
            "States.StringSplit" => Self::StringSplit,
            "States.UUID" => Self::Uuid,
            _ => return None,
        })
    }

    /// The accepted argument counts (inclusive range; `usize::MAX` for "any").
    fn arity(self) -> (usize, usize) {
        match self {
            Self::Format => (1, usize::MAX),
            Self::Array => (0, usize::MAX),
            Self::StringToJson
            | Self::JsonToString
            | Self::ArrayLength
            | Self::ArrayUnique
            | Self::Base64Encode
            | Self::Base64Decode => (1, 1),
            Self::ArrayPartition
            | Self::ArrayContains
            | Self::ArrayGetItem
            | Self::Hash
            | Self::MathAdd
            | Self::StringSplit => (2, 2),
            Self::ArrayRange | Self::JsonMerge => (3, 3),
            Self::MathRandom => (2, 3),
            Self::Uuid => (0, 0),
        }
    }
}

/// One argument of an intrinsic call.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A quoted string: `value` has escapes removed; `raw` keeps them (States.Format needs to
    /// tell `\{` from a placeholder).
    Str {
        value: String,
        raw: String,
    },
    Number(Number),
    Bool(bool),
    Null,
    Path(JsonPath),
    Call(IntrinsicCall),
}

/// A parsed intrinsic function call.
#[derive(Debug, Clone, PartialEq)]
pub struct IntrinsicCall {
    pub function: Function,
    pub args: Vec<Arg>,
}

const MAX_NESTING: usize = 16;

impl IntrinsicCall {
    pub fn parse(text: &str) -> Result<Self, IntrinsicSyntaxError> {
        let mut parser = CallParser { text, pos: 0, depth: 0 };
        let call = parser.call()?;
        parser.skip_spaces();
        if parser.pos != text.len() {
            return Err(parser.error("unexpected text after the closing parenthesis"));
        }
        Ok(call)
    }

    pub fn eval(&self, env: &Env<'_>) -> Result<Value, EvalError> {
        let mut values = Vec::with_capacity(self.args.len());
        for arg in &self.args {
            values.push(match arg {
                Arg::Str { value, .. } => Value::String(value.clone()),
                Arg::Number(n) => Value::Number(n.clone()),
                Arg::Bool(b) => Value::Bool(*b),
                Arg::Null => Value::Null,
                Arg::Path(p) => env.require(p)?.into_owned(),
                Arg::Call(c) => c.eval(env)?,
            });
        }
        functions::apply(self, values, env)
    }
}

struct CallParser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl CallParser<'_> {
    fn error(&self, reason: &str) -> IntrinsicSyntaxError {
        IntrinsicSyntaxError {
            text: self.text.to_string(),
            reason: format!("{reason} (at offset {})", self.pos),
        }
    }

    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n')) {
            self.pos += 1;
        }
    }

    fn call(&mut self) -> Result<IntrinsicCall, IntrinsicSyntaxError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error("intrinsic functions nested too deeply"));
        }
        let name_len = self
            .rest()
            .find('(')
            .ok_or_else(|| self.error("expected '(' after the function name"))?;
        let name = self.rest()[..name_len].trim().to_string();
        let function =
            Function::from_name(&name).ok_or_else(|| self.error(&format!("unknown intrinsic function '{name}'")))?;
        self.pos += name_len + 1;
        let mut args = Vec::new();
        self.skip_spaces();
        if self.peek() == Some(b')') {
            self.pos += 1;
        } else {
            loop {
                self.skip_spaces();
                args.push(self.arg()?);
                self.skip_spaces();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.error("expected ',' or ')'")),
                }
            }
        }
        let (min, max) = function.arity();
        if args.len() < min || args.len() > max {
            return Err(self.error(&format!(
                "{name} takes {} argument(s), got {}",
                if min == max {
                    min.to_string()
                } else if max == usize::MAX {
                    format!("at least {min}")
                } else {
                    format!("{min} to {max}")
                },
                args.len()
            )));
        }
        self.depth -= 1;
        Ok(IntrinsicCall { function, args })
    }

    fn arg(&mut self) -> Result<Arg, IntrinsicSyntaxError> {
        match self.peek() {
            Some(b'\'') => self.string(),
            Some(b'$') => {
                let start = self.pos;
                let end = self.path_end();
                self.pos = end;
                let text = self.text[start..end].trim_end();
                JsonPath::parse(text)
                    .map(Arg::Path)
                    .map_err(|e| self.error(&e.to_string()))
            }
            Some(b) if b == b'-' || b.is_ascii_digit() => {
                let start = self.pos;
                self.pos += 1;
                while matches!(self.peek(), Some(b) if b.is_ascii_digit() || b == b'.' || b == b'e' || b == b'E' || b == b'-' || b == b'+')
                {
                    self.pos += 1;
                }
                serde_json::from_str::<Number>(&self.text[start..self.pos])
                    .map(Arg::Number)
                    .map_err(|_| self.error("invalid number"))
            }
            _ if self.rest().starts_with("States.") => Ok(Arg::Call(self.call()?)),
            _ => {
                for (word, arg) in [
                    ("true", Arg::Bool(true)),
                    ("false", Arg::Bool(false)),
                    ("null", Arg::Null),
                ] {
                    if self.rest().starts_with(word) {
                        self.pos += word.len();
                        return Ok(arg);
                    }
                }
                Err(self.error("expected an argument"))
            }
        }
    }

    /// A path argument runs to the next ',' or ')' outside brackets and quotes.
    fn path_end(&self) -> usize {
        let bytes = self.text.as_bytes();
        let mut depth = 0usize;
        let mut quote: Option<u8> = None;
        let mut i = self.pos;
        while i < bytes.len() {
            let b = bytes[i];
            match quote {
                Some(q) => {
                    if b == b'\\' {
                        i += 1;
                    } else if b == q {
                        quote = None;
                    }
                }
                None => match b {
                    b'\'' | b'"' => quote = Some(b),
                    b'[' | b'(' => depth += 1,
                    b']' => depth = depth.saturating_sub(1),
                    b')' if depth == 0 => return i,
                    b')' => depth -= 1,
                    b',' if depth == 0 => return i,
                    _ => {}
                },
            }
            i += 1;
        }
        i
    }

    fn string(&mut self) -> Result<Arg, IntrinsicSyntaxError> {
        self.pos += 1;
        let start = self.pos;
        let mut value = String::new();
        let mut chars = self.text[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                },
                '\'' => {
                    let raw = self.text[start..start + i].to_string();
                    self.pos = start + i + 1;
                    return Ok(Arg::Str { value, raw });
                }
                c => value.push(c),
            }
        }
        Err(self.error("unterminated string literal"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::RandomSource;
    use serde_json::{Map, json};

    fn run(call: &str, input: Value) -> Result<Value, EvalError> {
        let vars = Map::new();
        let ctx = json!({});
        let random = RandomSource::new(1);
        let env = Env {
            input: &input,
            vars: &vars,
            context: &ctx,
            random: &random,
        };
        IntrinsicCall::parse(call).unwrap().eval(&env)
    }

    #[test]
    fn format_fills_placeholders_and_keeps_escaped_braces() {
        assert_eq!(
            run(r"States.Format('a {} \{\} {}', $.x, 'it\'s')", json!({"x": {"k": [1]}})).unwrap(),
            json!("a {k=[1]} {} it's")
        );
    }

    #[test]
    fn nested_calls_and_literals_parse() {
        assert_eq!(
            run(
                "States.MathAdd(States.ArrayLength(States.Array(1, 'a', null)), -1)",
                json!({})
            )
            .unwrap(),
            json!(2)
        );
    }

    #[test]
    fn array_functions_behave_like_aws() {
        assert_eq!(
            run("States.ArrayRange(1, 9, 2)", json!({})).unwrap(),
            json!([1, 3, 5, 7, 9])
        );
        assert_eq!(
            run("States.ArrayPartition($.a, 2)", json!({"a": [1, 2, 3]})).unwrap(),
            json!([[1, 2], [3]])
        );
        assert_eq!(
            run("States.ArrayUnique($.a)", json!({"a": [1, 2, 2, 1]})).unwrap(),
            json!([1, 2])
        );
        assert_eq!(
            run("States.ArrayContains($.a, 2)", json!({"a": [1, 2.0]})).unwrap(),
            json!(true)
        );
        assert_eq!(
            run("States.ArrayGetItem($.a, 1)", json!({"a": [1, 2]})).unwrap(),
            json!(2)
        );
    }

    #[test]
    fn hashes_and_encodings_match_known_digests() {
        assert_eq!(
            run("States.Hash('abc', 'SHA-256')", json!({})).unwrap(),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            run("States.Hash('abc', 'MD5')", json!({})).unwrap(),
            json!("900150983cd24fb0d6963f7d28e17f72")
        );
        assert_eq!(
            run("States.Hash('abc', 'SHA-1')", json!({})).unwrap(),
            json!("a9993e364706816aba3e25717850c26c9cd0d89d")
        );
        assert_eq!(run("States.Base64Encode('hi')", json!({})).unwrap(), json!("aGk="));
        assert_eq!(run("States.Base64Decode('aGk=')", json!({})).unwrap(), json!("hi"));
    }

    #[test]
    fn string_split_uses_every_delimiter_character_and_drops_empties() {
        assert_eq!(
            run(
                "States.StringSplit($.s, '.+,=')",
                json!({"s": "This.is+a,,test=string"})
            )
            .unwrap(),
            json!(["This", "is", "a", "test", "string"])
        );
    }

    #[test]
    fn bad_calls_are_rejected_when_parsed() {
        for bad in [
            "States.Nope()",
            "States.Format(",
            "States.UUID(1)",
            "States.Array('x)",
            "States.MathAdd(1)",
            "States.Array(1) trailing",
        ] {
            assert!(IntrinsicCall::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wrong_argument_types_fail_at_run_time() {
        assert!(run("States.ArrayLength($.a)", json!({"a": "x"})).is_err());
        assert!(run("States.MathAdd('a', 1)", json!({})).is_err());
        assert!(run("States.ArrayPartition($.a, 0)", json!({"a": [1]})).is_err());
    }

    /// AWS rounds decimal arguments as Java's `Math.round` does, then adds (the values were
    /// recorded against AWS by LocalStack's `test_math_add`).
    #[test]
    fn math_add_rounds_decimals_half_up_before_adding() {
        for (a, b, sum) in [
            (json!(-9), json!(3), -6),
            (json!(1.49), json!(1.5), 3),
            (json!(1.5), json!(1.51), 4),
            (json!(-1.49), json!(-1.5), -2),
            (json!(2.5), json!(0), 3),
            (json!(-2.5), json!(0), -2),
            (json!(-0.5), json!(0.5), 1),
        ] {
            let got = run("States.MathAdd($.a, $.b)", json!({"a": a, "b": b})).unwrap();
            assert_eq!(got, json!(sum), "{a} + {b}");
        }
        let r = run("States.MathRandom($.a, $.b)", json!({"a": 12.5, "b": 14.4})).unwrap();
        assert_eq!(r, json!(13), "12.5 and 14.4 round to 13 and 14; the end is exclusive");
    }

    #[test]
    fn uuid_and_random_are_deterministic_per_seed() {
        let a = run("States.UUID()", json!({})).unwrap();
        assert_eq!(a, run("States.UUID()", json!({})).unwrap());
        assert_eq!(a.as_str().unwrap().len(), 36);
        let r = run("States.MathRandom(1, 10)", json!({})).unwrap().as_i64().unwrap();
        assert!((1..10).contains(&r));
    }
}
