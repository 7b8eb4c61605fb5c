//! How a conformance case's output is judged where exact equality cannot hold (see
//! `asl-conformance/README.md`): `placeholders` inside expected strings, and
//! `project-sort(fields=F1,F2; sort=K)` for arrays whose order or extra fields vary.

use regex::Regex;
use serde_json::{Map, Value};
use sluice_statemachine::json::{numbers_equal, to_compact};
use std::collections::HashMap;

/// The comparison rules a case names.
#[derive(Debug, Default)]
struct Rules {
    placeholders: bool,
    project: Option<(Vec<String>, String)>,
}

fn rules(compare: Option<&Value>) -> Result<Rules, String> {
    let mut rules = Rules::default();
    let names: Vec<&str> = match compare {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        Some(Value::Object(map)) => map.keys().map(String::as_str).collect(),
        Some(other) => return Err(format!("unknown compare rule {}", to_compact(other))),
    };
    for name in names {
        let name = name.trim();
        if name == "placeholders" {
            rules.placeholders = true;
        } else if let Some(args) = name.strip_prefix("project-sort(").and_then(|a| a.strip_suffix(')')) {
            let mut fields = Vec::new();
            let mut sort = None;
            for part in args.split(';') {
                let part = part.trim();
                if let Some(f) = part.strip_prefix("fields=") {
                    fields = f.split(',').map(|s| s.trim().to_string()).collect();
                } else if let Some(k) = part.strip_prefix("sort=") {
                    sort = Some(k.trim().to_string());
                }
            }
            let sort = sort.ok_or_else(|| format!("compare rule '{name}' has no sort key"))?;
            rules.project = Some((fields, sort));
        } else {
            return Err(format!("unknown compare rule '{name}'"));
        }
    }
    Ok(rules)
}

/// Whether `actual` matches `expected` under the case's rules; `Err` when the rules cannot
/// be applied (a projected field is missing, an unknown rule).
pub fn matches(actual: &Value, expected: &Value, compare: Option<&Value>) -> Result<bool, String> {
    let rules = rules(compare)?;
    let projected;
    let actual = match &rules.project {
        Some((fields, sort)) => {
            projected = project_sort(actual, fields, sort)?;
            &projected
        }
        None => actual,
    };
    if rules.placeholders {
        let mut bound = HashMap::new();
        Ok(with_placeholders(actual, expected, &mut bound))
    } else {
        Ok(numbers_equal(actual, expected))
    }
}

fn project_sort(actual: &Value, fields: &[String], sort: &str) -> Result<Value, String> {
    let Value::Array(items) = actual else {
        return Err(format!("expected an array to project, got {}", to_compact(actual)));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let mut projected = Map::new();
        for field in fields {
            let value = item
                .get(field)
                .ok_or_else(|| format!("an output element has no '{field}': {}", to_compact(item)))?;
            projected.insert(field.clone(), value.clone());
        }
        out.push(Value::Object(projected));
    }
    out.sort_by_key(|v| v.get(sort).map(sort_key).unwrap_or_default());
    Ok(Value::Array(out))
}

fn sort_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => to_compact(other),
    }
}

fn with_placeholders(actual: &Value, expected: &Value, bound: &mut HashMap<String, String>) -> bool {
    match (actual, expected) {
        (Value::String(a), Value::String(e)) => string_matches(a, e, bound),
        (Value::Array(a), Value::Array(e)) => {
            a.len() == e.len() && a.iter().zip(e).all(|(a, e)| with_placeholders(a, e, bound))
        }
        (Value::Object(a), Value::Object(e)) => {
            a.len() == e.len()
                && e.iter()
                    .all(|(k, ev)| a.get(k).is_some_and(|av| with_placeholders(av, ev, bound)))
        }
        _ => numbers_equal(actual, expected),
    }
}

const ACCOUNT: &str = "111111111111";

/// Splits an expected string into literal text and placeholder tokens.
fn tokens(expected: &str) -> Vec<(bool, &str)> {
    let mut out = Vec::new();
    let mut rest = expected;
    while !rest.is_empty() {
        let next_angle = rest.find('<').and_then(|start| {
            let end = rest[start..].find('>')? + start;
            let name = &rest[start + 1..end];
            let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            ok.then_some((start, end + 1))
        });
        let next_account = rest.find(ACCOUNT).map(|s| (s, s + ACCOUNT.len()));
        let next = match (next_angle, next_account) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
        match next {
            Some((start, end)) => {
                if start > 0 {
                    out.push((false, &rest[..start]));
                }
                out.push((true, &rest[start..end]));
                rest = &rest[end..];
            }
            None => {
                out.push((false, rest));
                break;
            }
        }
    }
    out
}

fn token_pattern(token: &str) -> &'static str {
    match token {
        "<partition>" => r"aws(?:-[a-z]+)*",
        "<region>" => r"[a-z]{2}(?:-[a-z]+)+-[0-9]+",
        ACCOUNT => r"[0-9]{12}",
        "<iso-timestamp>" => {
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
        }
        _ => r#"[^\s:/<>"]+"#,
    }
}

fn string_matches(actual: &str, expected: &str, bound: &mut HashMap<String, String>) -> bool {
    let parts = tokens(expected);
    if parts.iter().all(|(is_token, _)| !is_token) {
        return actual == expected;
    }
    let mut pattern = String::from("^");
    for (is_token, text) in &parts {
        if *is_token {
            pattern.push('(');
            pattern.push_str(token_pattern(text));
            pattern.push(')');
        } else {
            pattern.push_str(&regex::escape(text));
        }
    }
    pattern.push('$');
    let Ok(re) = Regex::new(&pattern) else { return false };
    let Some(captures) = re.captures(actual) else {
        return false;
    };
    let mut group = 1;
    for (is_token, text) in &parts {
        if !*is_token {
            continue;
        }
        let Some(found) = captures.get(group) else { return false };
        group += 1;
        match bound.get(*text) {
            Some(previous) if previous != found.as_str() => return false,
            Some(_) => {}
            None => {
                bound.insert(text.to_string(), found.as_str().to_string());
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_same_placeholder_must_match_the_same_text() {
        let expected = json!({
            "MapRunArn": "arn:<partition>:states:<region>:111111111111:mapRun:sm/Map:<map-run-id>",
            "ResultWriterDetails": {"Key": "out/<map-run-id>/manifest.json"}
        });
        let good = json!({
            "MapRunArn": "arn:aws:states:local:000000000000:mapRun:sm/Map:ab-12",
            "ResultWriterDetails": {"Key": "out/ab-12/manifest.json"}
        });
        let bad = json!({
            "MapRunArn": "arn:aws:states:us-east-1:000000000000:mapRun:sm/Map:ab-12",
            "ResultWriterDetails": {"Key": "out/other/manifest.json"}
        });
        let rule = json!("placeholders");
        // `local` is not a region: a region has a dash and a number.
        assert!(!matches(&good, &expected, Some(&rule)).unwrap());
        let good = json!({
            "MapRunArn": "arn:aws:states:us-east-1:000000000000:mapRun:sm/Map:ab-12",
            "ResultWriterDetails": {"Key": "out/ab-12/manifest.json"}
        });
        assert!(matches(&good, &expected, Some(&rule)).unwrap());
        assert!(!matches(&bad, &expected, Some(&rule)).unwrap());
    }

    #[test]
    fn project_sort_keeps_the_named_fields_in_key_order() {
        let actual = json!([{"k": "b", "x": 1, "t": "2"}, {"k": "a", "x": 2, "t": "1"}]);
        let expected = json!([{"k": "a", "x": 2}, {"k": "b", "x": 1}]);
        let rule = json!("project-sort(fields=k,x; sort=k)");
        assert!(matches(&actual, &expected, Some(&rule)).unwrap());
        let missing = json!([{"k": "a"}]);
        assert!(matches(&missing, &expected, Some(&rule)).is_err());
    }
}
