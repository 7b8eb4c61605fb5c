//! Static validation of a definition: every problem at once, each with the state it is in and
//! a JSON pointer to the offending field.
//!
//! The structure checks (targets, reachability, terminal states) live here; the per-field
//! checks of each state type live in [`fields`].

mod fields;
mod jsonata;
mod map;
mod parse;
mod state_check;

pub use parse::{MAX_DEFINITION_BYTES, ParseError};

use crate::payload::escape_pointer;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;

/// One thing wrong with a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationProblem {
    /// The state the problem is in, when it is inside one.
    pub state: Option<String>,
    /// A JSON pointer (RFC 6901) to the offending field, e.g. `/States/Fetch/Next`.
    pub pointer: String,
    pub message: String,
}

impl ValidationProblem {
    pub fn new(state: Option<&str>, pointer: &str, message: impl Into<String>) -> Self {
        Self {
            state: state.map(str::to_string),
            pointer: if pointer.is_empty() {
                "/".to_string()
            } else {
                pointer.to_string()
            },
            message: message.into(),
        }
    }
}

impl fmt::Display for ValidationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            Some(state) => write!(f, "state '{state}' ({}): {}", self.pointer, self.message),
            None => write!(f, "{}: {}", self.pointer, self.message),
        }
    }
}

/// Validates definition text; JSON syntax errors come back as a single problem.
pub fn validate(definition: &str) -> Vec<ValidationProblem> {
    if definition.len() > MAX_DEFINITION_BYTES {
        return vec![ValidationProblem::new(
            None,
            "",
            format!(
                "the definition is {} bytes; the limit is {} bytes",
                definition.len(),
                MAX_DEFINITION_BYTES
            ),
        )];
    }
    match serde_json::from_str::<Value>(definition) {
        Ok(value) => validate_value(&value),
        Err(e) => vec![ValidationProblem::new(
            None,
            "",
            format!("not valid JSON (line {}, column {}): {e}", e.line(), e.column()),
        )],
    }
}

/// Validates a parsed definition.
pub fn validate_value(definition: &Value) -> Vec<ValidationProblem> {
    let mut checker = Checker::default();
    let Some(top) = definition.as_object() else {
        checker.problem(None, "", "the definition must be a JSON object");
        return checker.problems;
    };
    for key in top.keys() {
        if !matches!(
            key.as_str(),
            "Comment" | "StartAt" | "States" | "TimeoutSeconds" | "Version" | "QueryLanguage"
        ) {
            checker.problem(
                None,
                &format!("/{}", escape_pointer(key)),
                format!("'{key}' is not allowed at the top level"),
            );
        }
    }
    checker.query_language(None, top, "");
    checker.language = crate::model::jsonata::language_of(top, Default::default());
    if let Some(t) = top.get("TimeoutSeconds")
        && !crate::model::is_positive_integer(t)
    {
        checker.problem(None, "/TimeoutSeconds", "TimeoutSeconds must be a positive integer");
    }
    checker.scope(top, "");
    checker.problems
}

#[derive(Default)]
pub(crate) struct Checker {
    pub(crate) problems: Vec<ValidationProblem>,
    seen_names: HashSet<String>,
    /// The query language of the scope being checked (its states' default).
    pub(crate) language: crate::model::jsonata::QueryLanguage,
}

impl Checker {
    pub(crate) fn problem(&mut self, state: Option<&str>, pointer: &str, message: impl Into<String>) {
        self.problems.push(ValidationProblem::new(state, pointer, message));
    }

    fn query_language(&mut self, state: Option<&str>, map: &Map<String, Value>, at: &str) {
        match map.get("QueryLanguage") {
            None => {}
            Some(Value::String(s)) if s == "JSONPath" || s == "JSONata" => {}
            Some(other) => self.problem(
                state,
                &format!("{at}/QueryLanguage"),
                format!("QueryLanguage must be \"JSONPath\" or \"JSONata\", not {other}"),
            ),
        }
    }

    /// Checks a scope (`StartAt` + `States`) found at `at`.
    pub(crate) fn scope(&mut self, map: &Map<String, Value>, at: &str) {
        let start_at = match map.get("StartAt") {
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.problem(None, &format!("{at}/StartAt"), "StartAt must be a string");
                None
            }
            None => {
                self.problem(None, &format!("{at}/StartAt"), "StartAt is missing");
                None
            }
        };
        let states = match map.get("States") {
            Some(Value::Object(states)) if !states.is_empty() => states,
            Some(Value::Object(_)) => {
                self.problem(None, &format!("{at}/States"), "States must hold at least one state");
                return;
            }
            Some(_) => {
                self.problem(None, &format!("{at}/States"), "States must be an object");
                return;
            }
            None => {
                self.problem(None, &format!("{at}/States"), "States is missing");
                return;
            }
        };
        if let Some(start) = start_at
            && !states.contains_key(start)
        {
            self.problem(
                None,
                &format!("{at}/StartAt"),
                format!("StartAt names '{start}', which is not a state in this scope"),
            );
        }
        let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut terminals: Vec<&str> = Vec::new();
        for (name, state) in states {
            let here = format!("{at}/States/{}", escape_pointer(name));
            if name.chars().count() > 80 {
                self.problem(Some(name), &here, "state names must be at most 80 characters");
            }
            if !self.seen_names.insert(name.clone()) {
                self.problem(
                    Some(name),
                    &here,
                    format!("the state name '{name}' is used more than once in the state machine"),
                );
            }
            let Some(state_map) = state.as_object() else {
                self.problem(Some(name), &here, "a state must be a JSON object");
                continue;
            };
            let targets = fields::check_state(self, name, state_map, &here);
            for (target, pointer) in &targets.next {
                if !states.contains_key(target.as_str()) {
                    self.problem(Some(name), pointer, format!("'{target}' is not a state in this scope"));
                }
            }
            if targets.terminal {
                terminals.push(name);
            }
            edges.insert(
                name,
                targets
                    .next
                    .iter()
                    .filter_map(|(t, _)| states.get_key_value(t.as_str()).map(|(k, _)| k.as_str()))
                    .collect(),
            );
        }
        self.reachability(states, start_at, &edges, &terminals, at);
    }

    fn reachability(
        &mut self,
        states: &Map<String, Value>,
        start_at: Option<&str>,
        edges: &HashMap<&str, Vec<&str>>,
        terminals: &[&str],
        at: &str,
    ) {
        let Some(start) = start_at.filter(|s| states.contains_key(*s)) else {
            return;
        };
        let reachable = walk(start, |n| edges.get(n).cloned().unwrap_or_default());
        for name in states.keys() {
            if !reachable.contains(name.as_str()) {
                self.problem(
                    Some(name),
                    &format!("{at}/States/{}", escape_pointer(name)),
                    "the state is unreachable from StartAt",
                );
            }
        }
        if terminals.is_empty() {
            self.problem(
                None,
                &format!("{at}/States"),
                "no terminal state: a scope needs a Succeed or Fail state or one with \"End\": true",
            );
            return;
        }
        let mut reverse: HashMap<&str, Vec<&str>> = HashMap::new();
        for (from, tos) in edges {
            for to in tos {
                reverse.entry(*to).or_default().push(*from);
            }
        }
        let mut can_finish = HashSet::new();
        for terminal in terminals {
            can_finish.extend(walk(terminal, |n| reverse.get(n).cloned().unwrap_or_default()));
        }
        let mut stuck: Vec<&str> = reachable.iter().copied().filter(|n| !can_finish.contains(n)).collect();
        stuck.sort_unstable();
        for name in stuck {
            self.problem(
                Some(name),
                &format!("{at}/States/{}", escape_pointer(name)),
                "no path leads from this state to a terminal state, so an execution entering it can never finish",
            );
        }
    }
}

fn walk<'a>(start: &'a str, neighbours: impl Fn(&'a str) -> Vec<&'a str>) -> HashSet<&'a str> {
    let mut seen = HashSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        for m in neighbours(n) {
            if seen.insert(m) {
                queue.push_back(m);
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests;
