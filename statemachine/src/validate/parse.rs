//! A definition's text becomes a [`StateMachine`]: bounded in size, parsed as JSON, checked
//! with every problem reported together, and only then deserialized into the model.

use super::{ValidationProblem, validate_value};
use crate::model::StateMachine;
use serde_json::Value;

/// AWS rejects definitions over 1 MiB; the same bound keeps hostile input cheap to refuse.
pub const MAX_DEFINITION_BYTES: usize = 1_048_576;

/// Why a definition could not become a [`StateMachine`].
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the definition is not valid JSON (line {line}, column {column}): {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("the definition is {bytes} bytes; the limit is {MAX_DEFINITION_BYTES} bytes")]
    TooLarge { bytes: usize },
    #[error("the definition has {} problem(s): {}", .0.len(), join_problems(.0))]
    Invalid(Vec<ValidationProblem>),
}

fn join_problems(problems: &[ValidationProblem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl StateMachine {
    /// Parses and validates a definition; every validation problem is reported together.
    pub fn from_json(text: &str) -> Result<Self, ParseError> {
        if text.len() > MAX_DEFINITION_BYTES {
            return Err(ParseError::TooLarge { bytes: text.len() });
        }
        let value: Value = serde_json::from_str(text).map_err(|e| ParseError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        let problems = validate_value(&value);
        if !problems.is_empty() {
            return Err(ParseError::Invalid(problems));
        }
        Self::from_validated(value, text)
            .map_err(|e| ParseError::Invalid(vec![ValidationProblem::new(None, "", e.to_string())]))
    }
}
