//! Per-state-type field checks: which fields a type allows, and what each must hold.

use super::Checker;
use super::state_check::{StateCheck, Targets};
use crate::model::{ChoiceRule, is_non_negative_integer, is_positive_integer};
use crate::path::JsonPath;
use crate::payload::{Expr, Template};
use serde_json::{Map, Value};

const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage"];
const IO: &[&str] = &["InputPath", "OutputPath"];
const FLOW: &[&str] = &["Next", "End"];
const RESULT: &[&str] = &["ResultPath", "Parameters", "ResultSelector", "Retry", "Catch", "Assign"];

fn allowed(kind: &str) -> Option<Vec<&'static str>> {
    let mut fields: Vec<&'static str> = COMMON.to_vec();
    match kind {
        "Pass" => fields.extend(
            IO.iter()
                .chain(FLOW)
                .chain(&["ResultPath", "Parameters", "Result", "Assign"]),
        ),
        "Task" => fields.extend(IO.iter().chain(FLOW).chain(RESULT).chain(&[
            "Resource",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Credentials",
        ])),
        "Choice" => fields.extend(IO.iter().chain(&["Choices", "Default", "Assign"])),
        "Wait" => fields.extend(IO.iter().chain(FLOW).chain(&[
            "Seconds",
            "Timestamp",
            "SecondsPath",
            "TimestampPath",
            "Assign",
        ])),
        "Succeed" => fields.extend(IO),
        "Fail" => fields.extend(&["Error", "Cause", "ErrorPath", "CausePath"]),
        "Parallel" => fields.extend(IO.iter().chain(FLOW).chain(RESULT).chain(&["Branches"])),
        "Map" => fields.extend(IO.iter().chain(FLOW).chain(RESULT).chain(&[
            "ItemProcessor",
            "Iterator",
            "ItemsPath",
            "ItemSelector",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "Label",
        ])),
        _ => return None,
    }
    Some(fields)
}

impl<'a> StateCheck<'a, '_> {
    fn path(&mut self, field: &str, nullable: bool, reference: bool) {
        match self.map.get(field) {
            None => {}
            Some(Value::Null) if nullable => {}
            Some(Value::String(text)) => match JsonPath::parse(text) {
                Ok(p) if reference && !p.is_reference_path() => self.problem(
                    field,
                    format!("{field} must be a reference path ('$' followed by names and indices only), not '{text}'"),
                ),
                Ok(_) => {}
                Err(e) => self.problem(field, e.to_string()),
            },
            Some(_) => self.problem(
                field,
                format!(
                    "{field} must be a path string{}",
                    if nullable { " or null" } else { "" }
                ),
            ),
        }
    }

    fn expr(&mut self, field: &str) {
        match self.map.get(field) {
            None => {}
            Some(Value::String(text)) => {
                if let Err(e) = Expr::parse(text) {
                    self.problem(field, e);
                }
            }
            Some(_) => self.problem(field, format!("{field} must be a path or intrinsic function string")),
        }
    }

    fn template(&mut self, field: &str, must_be_object: bool) {
        let Some(value) = self.map.get(field) else { return };
        if must_be_object && !value.is_object() {
            self.problem(field, format!("{field} must be a JSON object"));
            return;
        }
        if let Err((pointer, message)) = Template::compile(value) {
            let at = format!("{field}{pointer}");
            self.problem(&at, message);
        }
    }

    fn exclusive(&mut self, a: &str, b: &str) {
        if self.map.contains_key(a) && self.map.contains_key(b) {
            self.problem(b, format!("{a} and {b} cannot both be set"));
        }
    }

    fn integer(&mut self, field: &str, positive: bool) -> Option<u64> {
        let v = self.map.get(field)?;
        let ok = if positive {
            is_positive_integer(v)
        } else {
            is_non_negative_integer(v)
        };
        if !ok {
            self.problem(
                field,
                format!(
                    "{field} must be a {} integer",
                    if positive { "positive" } else { "non-negative" }
                ),
            );
            return None;
        }
        crate::model::whole_seconds_of(v)
    }
}

pub(super) fn check_state(checker: &mut Checker, name: &str, map: &Map<String, Value>, at: &str) -> Targets {
    // The state's own language is the default of the scopes inside it.
    let inherited = checker.language;
    checker.language = crate::model::jsonata::language_of(map, inherited);
    let targets = check_state_in_language(checker, name, map, at);
    checker.language = inherited;
    targets
}

fn check_state_in_language(checker: &mut Checker, name: &str, map: &Map<String, Value>, at: &str) -> Targets {
    let jsonata = checker.language == crate::model::jsonata::QueryLanguage::JSONata;
    let mut targets = Targets {
        next: Vec::new(),
        terminal: false,
    };
    let kind = match map.get("Type") {
        Some(Value::String(k)) => k.clone(),
        Some(_) => {
            checker.problem(Some(name), &format!("{at}/Type"), "Type must be a string");
            return targets;
        }
        None => {
            checker.problem(Some(name), &format!("{at}/Type"), "Type is missing");
            return targets;
        }
    };
    let allowed = if jsonata {
        super::jsonata::allowed(&kind)
    } else {
        allowed(&kind)
    };
    let Some(allowed) = allowed else {
        checker.problem(
            Some(name),
            &format!("{at}/Type"),
            format!("'{kind}' is not a state type (Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map)"),
        );
        return targets;
    };
    checker.query_language(Some(name), map, at);
    let mut c = StateCheck { checker, name, map, at };
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            c.problem(
                &crate::payload::escape_pointer(key),
                if jsonata {
                    format!("'{key}' is not allowed in a {kind} state whose QueryLanguage is JSONata")
                } else {
                    format!("'{key}' is not allowed in a {kind} state")
                },
            );
        }
    }
    c.string("Comment");
    if !jsonata {
        c.path("InputPath", true, false);
        c.path("OutputPath", true, false);
        c.path("ResultPath", true, true);
        c.template("Parameters", false);
        c.template("ResultSelector", true);
        c.template("Assign", true);
    }

    // Next / End
    let has_flow = allowed.contains(&"Next");
    if has_flow {
        let next = c.string("Next").map(str::to_string);
        let end = match map.get("End") {
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                c.problem("End", "End must be a boolean");
                false
            }
            None => false,
        };
        match (next, end) {
            (Some(_), true) => c.problem("End", "a state cannot have both Next and \"End\": true"),
            (Some(n), false) => targets.next.push((n, format!("{at}/Next"))),
            (None, true) => targets.terminal = true,
            (None, false) if !map.contains_key("Next") => {
                c.problem("", format!("a {kind} state needs Next or \"End\": true"))
            }
            (None, false) => {}
        }
    }
    if matches!(kind.as_str(), "Succeed" | "Fail") {
        targets.terminal = true;
    }
    if let Some(v) = map.get("Retry") {
        retriers(&mut c, v);
    }
    if jsonata {
        super::jsonata::check_fields(&mut c, &kind, &mut targets);
        return targets;
    }
    if let Some(v) = map.get("Catch") {
        catchers(&mut c, v, &mut targets);
    }

    match kind.as_str() {
        "Task" => {
            if c.string("Resource").is_none() && !map.contains_key("Resource") {
                c.problem("Resource", "a Task state needs a Resource");
            }
            c.exclusive("TimeoutSeconds", "TimeoutSecondsPath");
            c.exclusive("HeartbeatSeconds", "HeartbeatSecondsPath");
            let timeout = c.integer("TimeoutSeconds", true);
            let heartbeat = c.integer("HeartbeatSeconds", true);
            if let (Some(t), Some(h)) = (timeout, heartbeat)
                && h >= t
            {
                c.problem(
                    "HeartbeatSeconds",
                    "HeartbeatSeconds must be smaller than TimeoutSeconds",
                );
            }
            c.path("TimeoutSecondsPath", false, false);
            c.path("HeartbeatSecondsPath", false, false);
        }
        "Choice" => choices(&mut c, &mut targets),
        "Wait" => {
            let present: Vec<&str> = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"]
                .into_iter()
                .filter(|f| map.contains_key(*f))
                .collect();
            if present.len() != 1 {
                c.problem(
                    "",
                    format!(
                        "a Wait state needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath (found {})",
                        if present.is_empty() {
                            "none".to_string()
                        } else {
                            present.join(", ")
                        }
                    ),
                );
            }
            c.integer("Seconds", false);
            if let Some(ts) = c.string("Timestamp")
                && crate::model::parse_timestamp(ts).is_none()
            {
                c.problem("Timestamp", format!("'{ts}' is not an RFC 3339 timestamp"));
            }
            c.path("SecondsPath", false, false);
            c.path("TimestampPath", false, false);
        }
        "Fail" => {
            c.exclusive("Error", "ErrorPath");
            c.exclusive("Cause", "CausePath");
            c.string("Error");
            c.string("Cause");
            c.expr("ErrorPath");
            c.expr("CausePath");
        }
        "Parallel" => match map.get("Branches") {
            Some(Value::Array(branches)) if !branches.is_empty() => {
                for (i, branch) in branches.iter().enumerate() {
                    let here = format!("{at}/Branches/{i}");
                    match branch.as_object() {
                        Some(b) => c.checker.scope(b, &here),
                        None => {
                            c.checker
                                .problem(Some(name), &here, "a branch must be an object with StartAt and States")
                        }
                    }
                }
            }
            _ => c.problem("Branches", "a Parallel state needs a non-empty Branches array"),
        },
        "Map" => map_fields(&mut c),
        _ => {}
    }
    targets
}

fn map_fields(c: &mut StateCheck<'_, '_>) {
    let map = c.map;
    match (map.get("ItemProcessor"), map.get("Iterator")) {
        (Some(_), Some(_)) => c.problem("Iterator", "ItemProcessor and Iterator cannot both be set"),
        (None, None) => c.problem("", "a Map state needs an ItemProcessor (or the legacy Iterator)"),
        (Some(p), None) | (None, Some(p)) => {
            let field = if map.contains_key("ItemProcessor") {
                "ItemProcessor"
            } else {
                "Iterator"
            };
            let here = format!("{}/{field}", c.at);
            match p.as_object() {
                Some(scope) => c.checker.scope(scope, &here),
                None => c.checker.problem(
                    Some(c.name),
                    &here,
                    format!("{field} must be an object with StartAt and States"),
                ),
            }
        }
    }
    c.exclusive("ItemSelector", "Parameters");
    c.template("ItemSelector", true);
    c.path("ItemsPath", false, false);
    c.exclusive("MaxConcurrency", "MaxConcurrencyPath");
    c.exclusive("ToleratedFailureCount", "ToleratedFailureCountPath");
    c.exclusive("ToleratedFailurePercentage", "ToleratedFailurePercentagePath");
    c.integer("MaxConcurrency", false);
    c.integer("ToleratedFailureCount", false);
    if let Some(p) = map.get("ToleratedFailurePercentage")
        && !p.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p))
    {
        c.problem(
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentage must be a number from 0 to 100",
        );
    }
    for field in [
        "MaxConcurrencyPath",
        "ToleratedFailureCountPath",
        "ToleratedFailurePercentagePath",
    ] {
        c.path(field, false, false);
    }
    super::map::distributed_fields(c.checker, c.name, c.map, c.at, false);
}

fn retriers(c: &mut StateCheck<'_, '_>, value: &Value) {
    let mut problems = Vec::new();
    crate::model::retry::check_retry(value, &mut problems);
    for (pointer, message) in problems {
        c.problem(&pointer, message);
    }
}

fn catchers(c: &mut StateCheck<'_, '_>, value: &Value, targets: &mut Targets) {
    let mut problems = Vec::new();
    let mut nexts = Vec::new();
    crate::model::retry::check_catch(value, &mut problems, &mut nexts);
    for (pointer, message) in problems {
        c.problem(&pointer, message);
    }
    for (next, pointer) in nexts {
        targets.next.push((next, format!("{}/{pointer}", c.at)));
    }
}

fn choices(c: &mut StateCheck<'_, '_>, targets: &mut Targets) {
    if let Some(d) = c.string("Default") {
        targets.next.push((d.to_string(), format!("{}/Default", c.at)));
    }
    let Some(list) = c.map.get("Choices").and_then(Value::as_array).filter(|l| !l.is_empty()) else {
        c.problem("Choices", "a Choice state needs a non-empty Choices array");
        return;
    };
    for (i, rule) in list.iter().enumerate() {
        let at = format!("Choices/{i}");
        let mut problems = Vec::new();
        ChoiceRule::parse(rule, &mut problems);
        for (pointer, message) in problems {
            c.problem(&format!("{at}{pointer}"), message);
        }
        match rule.get("Next") {
            Some(Value::String(n)) => targets.next.push((n.clone(), format!("{}/{at}/Next", c.at))),
            _ => c.problem(
                &format!("{at}/Next"),
                "a top-level choice rule needs Next (a state name)",
            ),
        }
        if let Some(assign) = rule.get("Assign")
            && let Err((p, m)) = Template::compile(assign)
        {
            c.problem(&format!("{at}/Assign{p}"), m);
        }
    }
}
