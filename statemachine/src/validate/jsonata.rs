//! The checks of a state whose query language is JSONata: AWS's field set for each type (the
//! JSONPath fields are refused), every `{% %}` expression compiled, and the fields that take a
//! number or a timestamp holding one (or an expression).

use serde_json::{Map, Value};

use super::state_check::{StateCheck, Targets};
use crate::jsonata::{Template, is_expression};
use crate::model::jsonata::JSONATA_FIELDS;

const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage", "Output", "Assign"];
const FLOW: &[&str] = &["Next", "End"];

/// The fields a JSONata state of type `kind` may have.
pub(super) fn allowed(kind: &str) -> Option<Vec<&'static str>> {
    let mut fields: Vec<&'static str> = COMMON.to_vec();
    match kind {
        "Pass" => fields.extend(FLOW),
        "Task" => fields.extend(FLOW.iter().chain(&[
            "Resource",
            "Arguments",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "HeartbeatSeconds",
            "Credentials",
        ])),
        "Choice" => fields.extend(["Choices", "Default"]),
        "Wait" => fields.extend(FLOW.iter().chain(&["Seconds", "Timestamp"])),
        "Succeed" => {}
        "Fail" => {
            fields.retain(|f| !matches!(*f, "Output" | "Assign"));
            fields.extend(["Error", "Cause"]);
        }
        "Parallel" => fields.extend(FLOW.iter().chain(&["Branches", "Arguments", "Retry", "Catch"])),
        "Map" => fields.extend(FLOW.iter().chain(&[
            "ItemProcessor",
            "Iterator",
            "Items",
            "ItemSelector",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "MaxConcurrency",
            "ToleratedFailureCount",
            "ToleratedFailurePercentage",
            "Label",
            "Retry",
            "Catch",
        ])),
        _ => return None,
    }
    Some(fields)
}

/// Compiles `field` of `map` (reported under `at`), if present.
fn compiles(c: &mut StateCheck<'_, '_>, map: &Map<String, Value>, at: &str, field: &str) {
    let Some(value) = map.get(field) else { return };
    if let Err((pointer, message)) = Template::compile(value) {
        c.problem(&format!("{at}{field}{pointer}"), message);
    }
    if field == "Assign" && !value.is_object() {
        c.problem(&format!("{at}{field}"), "Assign must be a JSON object");
    }
}

/// A field that is a literal of the right kind or an expression giving one at run time.
fn literal_or_expression(c: &mut StateCheck<'_, '_>, field: &str, literal_ok: impl Fn(&Value) -> bool, what: &str) {
    let Some(value) = c.map.get(field) else { return };
    let expression = value.as_str().is_some_and(is_expression);
    if !expression && !literal_ok(value) {
        c.problem(
            field,
            format!("{field} must be {what}, or a JSONata expression ({{% ... %}}) giving one"),
        );
    }
}

pub(super) fn check_fields(c: &mut StateCheck<'_, '_>, kind: &str, targets: &mut Targets) {
    let map = c.map;
    // A field that is not allowed in this type was reported already; compiling it is harmless.
    for field in JSONATA_FIELDS {
        compiles(c, map, "", field);
    }
    if let Some(value) = map.get("Catch") {
        catchers(c, value, targets);
    }
    let positive = |v: &Value| crate::model::is_positive_integer(v);
    let non_negative = |v: &Value| crate::model::is_non_negative_integer(v);
    match kind {
        "Task" => {
            if c.string("Resource").is_none() && !map.contains_key("Resource") {
                c.problem("Resource", "a Task state needs a Resource");
            }
            literal_or_expression(c, "TimeoutSeconds", positive, "a positive integer");
            literal_or_expression(c, "HeartbeatSeconds", positive, "a positive integer");
        }
        "Choice" => choices(c, targets),
        "Wait" => {
            let present = ["Seconds", "Timestamp"]
                .iter()
                .filter(|f| map.contains_key(**f))
                .count();
            if present != 1 {
                c.problem("", "a Wait state needs exactly one of Seconds and Timestamp");
            }
            literal_or_expression(c, "Seconds", non_negative, "a non-negative integer");
            literal_or_expression(
                c,
                "Timestamp",
                |v| v.as_str().and_then(crate::model::parse_timestamp).is_some(),
                "an RFC 3339 timestamp",
            );
        }
        "Fail" => {
            literal_or_expression(c, "Error", Value::is_string, "a string");
            literal_or_expression(c, "Cause", Value::is_string, "a string");
        }
        "Parallel" => match map.get("Branches") {
            Some(Value::Array(branches)) if !branches.is_empty() => {
                for (i, branch) in branches.iter().enumerate() {
                    let here = format!("{}/Branches/{i}", c.at);
                    match branch.as_object() {
                        Some(b) => c.checker.scope(b, &here),
                        None => c.problem(
                            &format!("Branches/{i}"),
                            "a branch must be an object with StartAt and States",
                        ),
                    }
                }
            }
            _ => c.problem("Branches", "a Parallel state needs a non-empty Branches array"),
        },
        "Map" => map_fields(c),
        _ => {}
    }
}

fn map_fields(c: &mut StateCheck<'_, '_>) {
    let map = c.map;
    let processor = match (map.get("ItemProcessor"), map.get("Iterator")) {
        (Some(_), Some(_)) => {
            c.problem("Iterator", "ItemProcessor and Iterator cannot both be set");
            None
        }
        (None, None) => {
            c.problem("", "a Map state needs an ItemProcessor (or the legacy Iterator)");
            None
        }
        (Some(p), None) => Some(("ItemProcessor", p)),
        (None, Some(p)) => Some(("Iterator", p)),
    };
    if let Some((field, processor)) = processor {
        let here = format!("{}/{field}", c.at);
        match processor.as_object() {
            Some(scope) => c.checker.scope(scope, &here),
            None => c.problem(field, format!("{field} must be an object with StartAt and States")),
        }
    }
    super::map::distributed_fields(c.checker, c.name, c.map, c.at, true);
    let non_negative = |v: &Value| crate::model::is_non_negative_integer(v);
    literal_or_expression(c, "MaxConcurrency", non_negative, "a non-negative integer");
    literal_or_expression(c, "ToleratedFailureCount", non_negative, "a non-negative integer");
    literal_or_expression(
        c,
        "ToleratedFailurePercentage",
        |v| v.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p)),
        "a number from 0 to 100",
    );
    if let Some(items) = map.get("Items")
        && !(items.is_array() || items.as_str().is_some_and(is_expression))
    {
        c.problem(
            "Items",
            "Items must be an array or a JSONata expression ({% ... %}) giving one",
        );
    }
}

fn catchers(c: &mut StateCheck<'_, '_>, value: &Value, targets: &mut Targets) {
    let Some(list) = value.as_array() else {
        c.problem("Catch", "Catch must be an array");
        return;
    };
    for (i, catcher) in list.iter().enumerate() {
        let at = format!("Catch/{i}");
        let Some(catcher) = catcher.as_object() else {
            c.problem(&at, "a catcher must be an object");
            continue;
        };
        for key in catcher.keys() {
            if !matches!(key.as_str(), "ErrorEquals" | "Next" | "Output" | "Assign" | "Comment") {
                c.problem(
                    &format!("{at}/{key}"),
                    format!("'{key}' is not allowed in a catcher of a JSONata state"),
                );
            }
        }
        match catcher.get("ErrorEquals") {
            Some(Value::Array(names)) if !names.is_empty() && names.iter().all(Value::is_string) => {}
            _ => c.problem(
                &format!("{at}/ErrorEquals"),
                "ErrorEquals must be a non-empty array of error names",
            ),
        }
        match catcher.get("Next") {
            Some(Value::String(next)) => targets.next.push((next.clone(), format!("{}/{at}/Next", c.at))),
            _ => c.problem(&format!("{at}/Next"), "a catcher needs Next (a state name)"),
        }
        compiles(c, catcher, &format!("{at}/"), "Output");
        compiles(c, catcher, &format!("{at}/"), "Assign");
    }
}

fn choices(c: &mut StateCheck<'_, '_>, targets: &mut Targets) {
    if let Some(default) = c.string("Default") {
        targets.next.push((default.to_string(), format!("{}/Default", c.at)));
    }
    let Some(list) = c.map.get("Choices").and_then(Value::as_array).filter(|l| !l.is_empty()) else {
        c.problem("Choices", "a Choice state needs a non-empty Choices array");
        return;
    };
    for (i, rule) in list.iter().enumerate() {
        let at = format!("Choices/{i}");
        let Some(rule) = rule.as_object() else {
            c.problem(&at, "a choice rule must be an object");
            continue;
        };
        for key in rule.keys() {
            if !matches!(key.as_str(), "Condition" | "Next" | "Output" | "Assign" | "Comment") {
                c.problem(
                    &format!("{at}/{key}"),
                    format!("'{key}' is not allowed in a choice rule of a JSONata state (use Condition)"),
                );
            }
        }
        match rule.get("Condition") {
            Some(Value::Bool(_)) => {}
            Some(Value::String(text)) if is_expression(text) => {}
            _ => c.problem(
                &format!("{at}/Condition"),
                "Condition must be true, false or a JSONata expression ({% ... %}) giving one",
            ),
        }
        match rule.get("Next") {
            Some(Value::String(next)) => targets.next.push((next.clone(), format!("{}/{at}/Next", c.at))),
            _ => c.problem(
                &format!("{at}/Next"),
                "a top-level choice rule needs Next (a state name)",
            ),
        }
        for field in ["Condition", "Output", "Assign"] {
            compiles(c, rule, &format!("{at}/"), field);
        }
    }
}
