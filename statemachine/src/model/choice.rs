//! Choice rules: comparison operators (and their `...Path` forms), `And`/`Or`/`Not`.

use crate::path::JsonPath;
use crate::payload::Template;
use serde::Deserialize;
use serde_json::Value;

/// Every comparison operator, without its `Path` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    StringEquals,
    StringLessThan,
    StringGreaterThan,
    StringLessThanEquals,
    StringGreaterThanEquals,
    StringMatches,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
    BooleanEquals,
    TimestampEquals,
    TimestampLessThan,
    TimestampGreaterThan,
    TimestampLessThanEquals,
    TimestampGreaterThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

const OPERATORS: &[(&str, Operator)] = &[
    ("StringEquals", Operator::StringEquals),
    ("StringLessThan", Operator::StringLessThan),
    ("StringGreaterThan", Operator::StringGreaterThan),
    ("StringLessThanEquals", Operator::StringLessThanEquals),
    ("StringGreaterThanEquals", Operator::StringGreaterThanEquals),
    ("StringMatches", Operator::StringMatches),
    ("NumericEquals", Operator::NumericEquals),
    ("NumericLessThan", Operator::NumericLessThan),
    ("NumericGreaterThan", Operator::NumericGreaterThan),
    ("NumericLessThanEquals", Operator::NumericLessThanEquals),
    ("NumericGreaterThanEquals", Operator::NumericGreaterThanEquals),
    ("BooleanEquals", Operator::BooleanEquals),
    ("TimestampEquals", Operator::TimestampEquals),
    ("TimestampLessThan", Operator::TimestampLessThan),
    ("TimestampGreaterThan", Operator::TimestampGreaterThan),
    ("TimestampLessThanEquals", Operator::TimestampLessThanEquals),
    ("TimestampGreaterThanEquals", Operator::TimestampGreaterThanEquals),
    ("IsNull", Operator::IsNull),
    ("IsPresent", Operator::IsPresent),
    ("IsNumeric", Operator::IsNumeric),
    ("IsString", Operator::IsString),
    ("IsBoolean", Operator::IsBoolean),
    ("IsTimestamp", Operator::IsTimestamp),
];

impl Operator {
    fn is_type_test(self) -> bool {
        matches!(
            self,
            Operator::IsNull
                | Operator::IsPresent
                | Operator::IsNumeric
                | Operator::IsString
                | Operator::IsBoolean
                | Operator::IsTimestamp
        )
    }

    fn has_path_form(self) -> bool {
        !self.is_type_test() && self != Operator::StringMatches
    }

    /// Looks up a field name such as `NumericEqualsPath`: the operator and whether it is the
    /// `Path` form.
    pub fn from_field(field: &str) -> Option<(Operator, bool)> {
        if let Some((_, op)) = OPERATORS.iter().find(|(name, _)| *name == field) {
            return Some((*op, false));
        }
        let base = field.strip_suffix("Path")?;
        OPERATORS
            .iter()
            .find(|(name, op)| *name == base && op.has_path_form())
            .map(|(_, op)| (*op, true))
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Literal(Value),
    Path(JsonPath),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub variable: JsonPath,
    pub operator: Operator,
    pub operand: Operand,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChoiceRule {
    And(Vec<ChoiceRule>),
    Or(Vec<ChoiceRule>),
    Not(Box<ChoiceRule>),
    Compare(Comparison),
}

/// A top-level rule with where it leads.
#[derive(Debug, Clone)]
pub struct ChoiceBranch {
    pub test: BranchTest,
    pub next: String,
}

/// What decides a branch, and what it assigns (and, in JSONata, outputs).
// A definition holds a handful of branches, built once: their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum BranchTest {
    Rule {
        rule: ChoiceRule,
        assign: Option<Template>,
    },
    /// A JSONata rule: `Condition`, `Assign`, `Output`.
    Jsonata(super::jsonata::JsonataFields),
}

/// Nested rules are bounded so hostile definitions cannot exhaust the stack.
const MAX_RULE_DEPTH: usize = 64;

/// A problem in a rule, with the pointer (relative to the rule) where it was found.
pub type RuleProblem = (String, String);

impl ChoiceRule {
    /// Parses a rule, collecting every problem found in it and in its nested rules.
    pub fn parse(value: &Value, problems: &mut Vec<RuleProblem>) -> Option<ChoiceRule> {
        Self::parse_at(value, "", 0, problems)
    }

    fn parse_at(value: &Value, at: &str, depth: usize, problems: &mut Vec<RuleProblem>) -> Option<ChoiceRule> {
        if depth > MAX_RULE_DEPTH {
            problems.push((at.to_string(), "choice rules are nested too deeply".into()));
            return None;
        }
        let Some(map) = value.as_object() else {
            problems.push((at.to_string(), "a choice rule must be an object".into()));
            return None;
        };
        let known = |k: &str| matches!(k, "Next" | "Assign" | "Comment" | "Variable" | "And" | "Or" | "Not");
        let operators: Vec<(&String, Operator, bool)> = map
            .keys()
            .filter_map(|k| Operator::from_field(k).map(|(op, path)| (k, op, path)))
            .collect();
        for key in map.keys() {
            if !known(key) && Operator::from_field(key).is_none() {
                problems.push((format!("{at}/{key}"), format!("'{key}' is not a choice rule field")));
            }
        }
        let combinators: Vec<&str> = ["And", "Or", "Not"]
            .into_iter()
            .filter(|k| map.contains_key(*k))
            .collect();
        if operators.len() + combinators.len() != 1 {
            problems.push((
                at.to_string(),
                "a choice rule needs exactly one comparison operator or one of And, Or, Not".into(),
            ));
            return None;
        }
        if let Some(&combinator) = combinators.first() {
            let inner = &map[combinator];
            if combinator == "Not" {
                return Self::parse_at(inner, &format!("{at}/Not"), depth + 1, problems)
                    .map(|r| ChoiceRule::Not(Box::new(r)));
            }
            let Some(items) = inner.as_array().filter(|a| !a.is_empty()) else {
                problems.push((
                    format!("{at}/{combinator}"),
                    format!("{combinator} must be a non-empty array of rules"),
                ));
                return None;
            };
            let mut rules = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                rules.push(Self::parse_at(
                    item,
                    &format!("{at}/{combinator}/{i}"),
                    depth + 1,
                    problems,
                ));
            }
            let rules: Option<Vec<_>> = rules.into_iter().collect();
            return rules.map(|r| {
                if combinator == "And" {
                    ChoiceRule::And(r)
                } else {
                    ChoiceRule::Or(r)
                }
            });
        }
        let (field, operator, is_path) = operators[0];
        let variable = match map.get("Variable") {
            Some(Value::String(text)) => match JsonPath::parse(text) {
                Ok(p) => Some(p),
                Err(e) => {
                    problems.push((format!("{at}/Variable"), e.to_string()));
                    None
                }
            },
            _ => {
                problems.push((
                    format!("{at}/Variable"),
                    "a comparison needs a Variable path (string)".into(),
                ));
                None
            }
        };
        let raw = &map[field.as_str()];
        let here = format!("{at}/{field}");
        let operand = if is_path {
            match raw.as_str().map(JsonPath::parse) {
                Some(Ok(p)) => Some(Operand::Path(p)),
                Some(Err(e)) => {
                    problems.push((here, e.to_string()));
                    None
                }
                None => {
                    problems.push((here, format!("{field} must be a path string")));
                    None
                }
            }
        } else {
            match literal_problem(operator, raw) {
                Some(message) => {
                    problems.push((here, format!("{field} {message}")));
                    None
                }
                None => Some(Operand::Literal(raw.clone())),
            }
        };
        Some(ChoiceRule::Compare(Comparison {
            variable: variable?,
            operator,
            operand: operand?,
        }))
    }
}

/// What is wrong with a literal operand for `operator`, if anything.
fn literal_problem(operator: Operator, value: &Value) -> Option<&'static str> {
    use Operator::*;
    match operator {
        StringEquals
        | StringLessThan
        | StringGreaterThan
        | StringLessThanEquals
        | StringGreaterThanEquals
        | StringMatches => (!value.is_string()).then_some("must be a string"),
        NumericEquals | NumericLessThan | NumericGreaterThan | NumericLessThanEquals | NumericGreaterThanEquals => {
            (!value.is_number()).then_some("must be a number")
        }
        BooleanEquals | IsNull | IsPresent | IsNumeric | IsString | IsBoolean | IsTimestamp => {
            (!value.is_boolean()).then_some("must be a boolean")
        }
        TimestampEquals
        | TimestampLessThan
        | TimestampGreaterThan
        | TimestampLessThanEquals
        | TimestampGreaterThanEquals => match value.as_str() {
            Some(s) if crate::model::parse_timestamp(s).is_some() => None,
            _ => Some("must be an RFC 3339 timestamp string"),
        },
    }
}

impl<'de> Deserialize<'de> for ChoiceBranch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut value = Value::deserialize(d)?;
        let next = value.get("Next").and_then(Value::as_str).map(str::to_string);
        if let Some(fields) = value
            .as_object_mut()
            .and_then(|rule| rule.remove(super::jsonata::JSONATA_KEY))
        {
            let fields = serde_json::from_value(fields).map_err(D::Error::custom)?;
            let next = next.ok_or_else(|| D::Error::custom("a choice rule needs Next"))?;
            return Ok(ChoiceBranch {
                test: BranchTest::Jsonata(fields),
                next,
            });
        }
        let mut problems = Vec::new();
        let rule = ChoiceRule::parse(&value, &mut problems);
        let assign = match value.get("Assign") {
            Some(v) => Some(Template::try_from(v.clone()).map_err(D::Error::custom)?),
            None => None,
        };
        match (rule, next) {
            (Some(rule), Some(next)) if problems.is_empty() => Ok(ChoiceBranch {
                test: BranchTest::Rule { rule, assign },
                next,
            }),
            _ => Err(D::Error::custom(
                problems
                    .into_iter()
                    .map(|(at, m)| format!("{at}: {m}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }
}
