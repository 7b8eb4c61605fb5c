//! What a run records so that a later run of the same execution (after a task token is
//! answered, possibly in another process) replays the past instead of redoing it.

use crate::errors::StateFailure;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// One remembered fact, keyed by a deterministic call id (thread path, state visit, attempt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Recorded {
    /// A task attempt's result (or a token's answer).
    Succeeded(Value),
    /// A task attempt's failure (or a token's failure answer).
    Failed(StateFailure),
    /// A `.waitForTaskToken` handler was called with this token.
    Token(String),
    /// A Wait state or retry back-off ends at this time.
    WakeAt(DateTime<Utc>),
}

pub type ReplayLog = HashMap<String, Recorded>;
