//! What a state did with its input, step by step, for TestState's `DEBUG` inspection data:
//! the value after InputPath, after ResultSelector and after ResultPath, and the variables
//! after Assign. Only an engine given an [`Inspector`] records them; the others pay one branch.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value};

/// Intermediate values by state name, then by TestState's field name (`afterInputPath`...).
#[derive(Debug, Default)]
pub struct Inspector {
    states: Mutex<HashMap<String, Map<String, Value>>>,
}

impl Inspector {
    pub(crate) fn record(&self, state: &str, field: &str, value: &Value) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        states
            .entry(state.to_string())
            .or_default()
            .insert(field.to_string(), value.clone());
    }

    /// What `state` recorded (the last time it ran).
    pub fn of(&self, state: &str) -> Map<String, Value> {
        let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        states.get(state).cloned().unwrap_or_default()
    }
}
