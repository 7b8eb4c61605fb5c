//! The Choice state: evaluating rules. A type mismatch makes a comparison false; a Variable
//! that does not exist is a `States.Runtime` error (except for `IsPresent`).

use super::{apply_vars, assign, select, select_input};
use crate::env::{Env, EvalError};
use crate::errors::{StateFailure, names};
use crate::executor::run::{Run, Step, Thread, Visit};
use crate::model::{BranchTest, ChoiceRule, ChoiceState, Comparison, Operand, Operator, parse_timestamp};
use serde_json::Value;
use std::cmp::Ordering;

pub(super) fn run<'a>(
    run: &Run,
    state: &'a ChoiceState,
    visit: &Visit<'_>,
    input: Value,
    thread: &mut Thread,
) -> Result<Step<'a>, StateFailure> {
    let effective = select_input(run, visit, thread, &state.input_path, input)?;
    let mut chosen = None;
    for branch in &state.choices {
        // A JSONata rule only appears in a JSONata state, which `super::jsonata` runs.
        let BranchTest::Rule { rule, assign } = &branch.test else {
            continue;
        };
        let holds = run
            .with_env(visit, thread, &effective, None, |env| evaluate(rule, env))
            .map_err(|e| visit.runtime(e))?;
        if holds {
            chosen = Some((branch.next.as_str(), assign.as_ref()));
            break;
        }
    }
    let (next, template) = match chosen {
        Some(found) => found,
        None => match &state.default {
            Some(default) => (default.as_str(), state.assign.as_ref()),
            None => {
                return Err(StateFailure::new(
                    names::NO_CHOICE_MATCHED,
                    format!("No Matches! (state '{}')", visit.name),
                ));
            }
        },
    };
    let vars = assign(run, visit, thread, template, &effective)?;
    let output = select(run, visit, thread, &state.output_path, effective)?;
    apply_vars(thread, vars);
    Ok(Step::Next(next, output))
}

/// Evaluates a rule against `env` (its `$` is the state's effective input).
pub fn evaluate(rule: &ChoiceRule, env: &Env<'_>) -> Result<bool, EvalError> {
    match rule {
        ChoiceRule::And(rules) => {
            for r in rules {
                if !evaluate(r, env)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        ChoiceRule::Or(rules) => {
            for r in rules {
                if evaluate(r, env)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        ChoiceRule::Not(r) => Ok(!evaluate(r, env)?),
        ChoiceRule::Compare(c) => compare(c, env),
    }
}

fn compare(c: &Comparison, env: &Env<'_>) -> Result<bool, EvalError> {
    let variable = env.resolve(&c.variable);
    if c.operator == Operator::IsPresent {
        let present = variable.is_some();
        return Ok(c.operand_bool() == Some(present));
    }
    let Some(variable) = variable else {
        return Err(EvalError(format!(
            "Invalid path '{}': The choice state's condition path references an invalid value.",
            c.variable.text()
        )));
    };
    let operand = match &c.operand {
        Operand::Literal(v) => std::borrow::Cow::Borrowed(v),
        Operand::Path(p) => env.resolve(p).ok_or_else(|| {
            EvalError(format!(
                "Invalid path '{}': The choice state's condition path references an invalid value.",
                p.text()
            ))
        })?,
    };
    Ok(test(c.operator, &variable, &operand))
}

impl Comparison {
    fn operand_bool(&self) -> Option<bool> {
        match &self.operand {
            Operand::Literal(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }
}

fn test(op: Operator, value: &Value, operand: &Value) -> bool {
    use Operator::*;
    let expect = || operand.as_bool();
    match op {
        IsNull => expect() == Some(value.is_null()),
        IsNumeric => expect() == Some(value.is_number()),
        IsString => expect() == Some(value.is_string()),
        IsBoolean => expect() == Some(value.is_boolean()),
        IsTimestamp => expect() == Some(value.as_str().and_then(parse_timestamp).is_some()),
        IsPresent => expect() == Some(true),
        BooleanEquals => matches!((value, operand), (Value::Bool(a), Value::Bool(b)) if a == b),
        StringMatches => match (value, operand) {
            (Value::String(s), Value::String(pattern)) => string_matches(s, pattern),
            _ => false,
        },
        StringEquals | StringLessThan | StringGreaterThan | StringLessThanEquals | StringGreaterThanEquals => {
            match (value, operand) {
                (Value::String(a), Value::String(b)) => ordered(op, a.as_str().cmp(b.as_str())),
                _ => false,
            }
        }
        NumericEquals | NumericLessThan | NumericGreaterThan | NumericLessThanEquals | NumericGreaterThanEquals => {
            match (value, operand) {
                (Value::Number(a), Value::Number(b)) => {
                    let ordering = match (a.as_i64(), b.as_i64()) {
                        (Some(x), Some(y)) => Some(x.cmp(&y)),
                        _ => a.as_f64().partial_cmp(&b.as_f64()),
                    };
                    ordering.is_some_and(|o| ordered(op, o))
                }
                _ => false,
            }
        }
        TimestampEquals
        | TimestampLessThan
        | TimestampGreaterThan
        | TimestampLessThanEquals
        | TimestampGreaterThanEquals => {
            match (
                value.as_str().and_then(parse_timestamp),
                operand.as_str().and_then(parse_timestamp),
            ) {
                (Some(a), Some(b)) => ordered(op, a.cmp(&b)),
                _ => false,
            }
        }
    }
}

fn ordered(op: Operator, ordering: Ordering) -> bool {
    use Operator::*;
    match op {
        StringEquals | NumericEquals | TimestampEquals => ordering == Ordering::Equal,
        StringLessThan | NumericLessThan | TimestampLessThan => ordering == Ordering::Less,
        StringGreaterThan | NumericGreaterThan | TimestampGreaterThan => ordering == Ordering::Greater,
        StringLessThanEquals | NumericLessThanEquals | TimestampLessThanEquals => ordering != Ordering::Greater,
        _ => ordering != Ordering::Less,
    }
}

/// `StringMatches`: `*` matches any run of characters; `\*` and `\\` are literal.
pub fn string_matches(text: &str, pattern: &str) -> bool {
    #[derive(PartialEq)]
    enum Token {
        Star,
        Char(char),
    }
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => tokens.push(Token::Char(escaped)),
                None => tokens.push(Token::Char('\\')),
            },
            '*' => tokens.push(Token::Star),
            c => tokens.push(Token::Char(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // Greedy wildcard matching with backtracking to the last star: linear in practice.
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Token::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(Token::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(|tok| *tok == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_matches_handles_wildcards_and_escapes() {
        assert!(string_matches("log-2024.txt", "log-*.txt"));
        assert!(string_matches("anything", "*"));
        assert!(string_matches("a*b", r"a\*b"));
        assert!(!string_matches("axb", r"a\*b"));
        assert!(string_matches(r"a\b", r"a\\b"));
        assert!(!string_matches("log.csv", "log-*"));
        assert!(string_matches("", "*"));
    }

    #[test]
    fn numeric_comparisons_ignore_other_types() {
        assert!(test(
            Operator::NumericEquals,
            &serde_json::json!(1),
            &serde_json::json!(1.0)
        ));
        assert!(!test(
            Operator::NumericEquals,
            &serde_json::json!("1"),
            &serde_json::json!(1)
        ));
        assert!(test(
            Operator::StringLessThanEquals,
            &serde_json::json!("A"),
            &serde_json::json!("AB")
        ));
    }
}
