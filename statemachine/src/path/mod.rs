//! JSONPath as the Amazon States Language uses it (Jayway semantics, which AWS runs).
//!
//! A path starts at the state input (`$`), the context object (`$$`) or a workflow variable
//! (`$name`). Paths made only of names and indices are *definite* and select one value (or
//! nothing); wildcards, slices, unions, deep scans and filters make a path *indefinite*, and it
//! then selects a list (possibly empty).

mod parse;
mod select;

use std::fmt;

pub use parse::PathSyntaxError;

/// Where a path starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Root {
    /// `$`: the state's input (or whatever value the field is evaluated against).
    Input,
    /// `$$`: the context object.
    Context,
    /// `$name`: a workflow variable set by `Assign`.
    Variable(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segment {
    Name(String),
    Index(i64),
    Wildcard,
    /// `..name` (Some) or `..*` (None).
    DeepScan(Option<String>),
    Names(Vec<String>),
    Indices(Vec<i64>),
    Slice {
        start: Option<i64>,
        end: Option<i64>,
        step: i64,
    },
    Filter(Box<FilterExpr>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FilterExpr {
    Or(Vec<FilterExpr>),
    And(Vec<FilterExpr>),
    Not(Box<FilterExpr>),
    Compare(Operand, CompareOp, Operand),
    Exists(Operand),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Current(Vec<Segment>),
    Root(Vec<Segment>),
    Literal(serde_json::Value),
}

/// A parsed JSONPath expression.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    text: String,
    root: Root,
    segments: Vec<Segment>,
}

impl JsonPath {
    /// Parses a path such as `$.detail.items[0]`, `$$.Map.Item.Value` or `$myVar.field`.
    pub fn parse(text: &str) -> Result<Self, PathSyntaxError> {
        let (root, segments) = parse::parse_path(text)?;
        Ok(Self {
            text: text.to_string(),
            root,
            segments,
        })
    }

    /// The path as written in the definition.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    /// True when the path is exactly `$`.
    pub fn is_identity(&self) -> bool {
        self.root == Root::Input && self.segments.is_empty()
    }

    /// A definite path selects at most one value.
    pub fn is_definite(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Name(_) | Segment::Index(_)))
    }

    /// A reference path (ResultPath) may only hold names and non-negative indices on `$`.
    pub fn is_reference_path(&self) -> bool {
        self.root == Root::Input
            && self.segments.iter().all(|s| match s {
                Segment::Name(_) => true,
                Segment::Index(i) => *i >= 0,
                _ => false,
            })
    }

    /// Applies the path's segments to `base` (the value its root names). A definite path
    /// yields the value or `None`; an indefinite path always yields a (possibly empty) array.
    pub fn select(&self, base: &serde_json::Value) -> Option<serde_json::Value> {
        select::select(&self.segments, base, self.is_definite())
    }

    /// Like [`JsonPath::select`] for definite paths, without cloning.
    pub fn select_ref<'v>(&self, base: &'v serde_json::Value) -> Option<&'v serde_json::Value> {
        select::select_definite(&self.segments, base)
    }

    /// Writes `value` at this reference path inside `target`, creating missing objects.
    pub fn write_into(&self, target: serde_json::Value, value: serde_json::Value) -> Result<serde_json::Value, String> {
        select::write_into(&self.segments, target, value, &self.text)
    }

    /// The path in Jayway's normalized form, as AWS prints it in error causes: `$['a'][0]`.
    pub fn normalized(&self) -> String {
        let mut out = match &self.root {
            Root::Input => "$".to_string(),
            Root::Context => "$$".to_string(),
            Root::Variable(name) => format!("${name}"),
        };
        for segment in &self.segments {
            match segment {
                Segment::Name(n) => out.push_str(&format!("['{n}']")),
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
                Segment::Wildcard => out.push_str("[*]"),
                Segment::DeepScan(Some(n)) => out.push_str(&format!("..['{n}']")),
                Segment::DeepScan(None) => out.push_str("..[*]"),
                Segment::Names(ns) => {
                    let parts: Vec<String> = ns.iter().map(|n| format!("'{n}'")).collect();
                    out.push_str(&format!("[{}]", parts.join(",")));
                }
                Segment::Indices(is) => {
                    let parts: Vec<String> = is.iter().map(i64::to_string).collect();
                    out.push_str(&format!("[{}]", parts.join(",")));
                }
                Segment::Slice { start, end, .. } => out.push_str(&format!(
                    "[{}:{}]",
                    start.map(|v| v.to_string()).unwrap_or_default(),
                    end.map(|v| v.to_string()).unwrap_or_default()
                )),
                Segment::Filter(_) => out.push_str("[?]"),
            }
        }
        out
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(path: &str, v: &serde_json::Value) -> Option<serde_json::Value> {
        JsonPath::parse(path).unwrap().select(v)
    }

    #[test]
    fn definite_paths_select_one_value_or_nothing() {
        let v = json!({"a": {"b": [1, 2, {"c": "x"}]}, "delivery-partner": "UQS"});
        assert_eq!(sel("$.a.b[2].c", &v), Some(json!("x")));
        assert_eq!(sel("$['a']['b'][0]", &v), Some(json!(1)));
        assert_eq!(sel("$.a.b[-1].c", &v), Some(json!("x")));
        assert_eq!(sel("$.delivery-partner", &v), Some(json!("UQS")));
        assert_eq!(sel("$.missing", &v), None);
        assert_eq!(sel("$", &v), Some(v.clone()));
    }

    #[test]
    fn indefinite_paths_select_lists() {
        let v = json!({"users": [{"year": 1997, "status": 0}, {"year": 1998, "status": 1}]});
        assert_eq!(
            sel("$.users[?(@.status == 0)]", &v),
            Some(json!([{"year": 1997, "status": 0}]))
        );
        assert_eq!(sel("$.users[*].year", &v), Some(json!([1997, 1998])));
        assert_eq!(sel("$..year", &v), Some(json!([1997, 1998])));
        assert_eq!(sel("$.users[0:1].year", &v), Some(json!([1997])));
        assert_eq!(sel("$.users[*].nothing", &v), Some(json!([])));
        assert_eq!(
            sel("$.users[?(@.year > 1997 && @.status != 0)].year", &v),
            Some(json!([1998]))
        );
    }

    #[test]
    fn quoted_names_keep_backslashes_that_escape_nothing() {
        let path = JsonPath::parse(r#"$['Test\""Name"']"#).unwrap();
        let v = json!({r#"Test\""Name""#: "found"});
        assert_eq!(path.select(&v), Some(json!("found")));
    }

    #[test]
    fn roots_are_recognised() {
        assert_eq!(JsonPath::parse("$$.Map.Item.Value").unwrap().root(), &Root::Context);
        assert_eq!(
            JsonPath::parse("$items").unwrap().root(),
            &Root::Variable("items".into())
        );
        assert_eq!(JsonPath::parse("$x.y").unwrap().normalized(), "$x['y']".to_string());
    }

    #[test]
    fn malformed_paths_are_rejected() {
        for bad in [
            "",
            "a.b",
            "$.",
            "$[",
            "$['a'",
            "$[?(@.a ==)]",
            "$..",
            "$.a[1:2:0]",
            "$ .a",
        ] {
            assert!(JsonPath::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn reference_paths_write_and_create_objects() {
        let p = JsonPath::parse("$.a.b").unwrap();
        assert_eq!(p.write_into(json!({}), json!(1)).unwrap(), json!({"a": {"b": 1}}));
        assert!(p.write_into(json!(42), json!(1)).is_err());
        assert!(!JsonPath::parse("$.a[*]").unwrap().is_reference_path());
    }
}
