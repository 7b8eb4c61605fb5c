//! One state's checks in progress, shared by the JSONPath and the JSONata field checks: where
//! its problems go, and where it can go next.

use super::Checker;
use serde_json::{Map, Value};

/// Where a state can go next, and whether it can end its scope.
pub(super) struct Targets {
    pub next: Vec<(String, String)>,
    pub terminal: bool,
}

pub(super) struct StateCheck<'a, 'c> {
    pub checker: &'c mut Checker,
    pub name: &'a str,
    pub map: &'a Map<String, Value>,
    pub at: &'a str,
}

impl<'a> StateCheck<'a, '_> {
    pub fn problem(&mut self, field: &str, message: impl Into<String>) {
        let pointer = if field.is_empty() {
            self.at.to_string()
        } else {
            format!("{}/{field}", self.at)
        };
        self.checker.problem(Some(self.name), &pointer, message);
    }

    pub fn string(&mut self, field: &str) -> Option<&'a str> {
        match self.map.get(field) {
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.problem(field, format!("{field} must be a string"));
                None
            }
            None => None,
        }
    }
}
