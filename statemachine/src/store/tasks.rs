//! What a run records for later runs of the same execution: the tasks parked on their tokens,
//! and the replay log, so that a run after a token is answered (possibly in another process)
//! replays the past instead of redoing it.

use crate::errors::{StateFailure, names};
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

/// A task parked on its token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingTask {
    pub token: String,
    pub(crate) answer_key: String,
    pub state_name: String,
    pub resource: String,
    pub scheduled_at: DateTime<Utc>,
    pub last_heartbeat: DateTime<Utc>,
    pub heartbeat_seconds: Option<u64>,
    pub timeout_seconds: Option<u64>,
    pub(crate) answer: Option<Recorded>,
}

impl PendingTask {
    /// The reason the task has timed out at `now`, if it has.
    pub(crate) fn timed_out(&self, now: DateTime<Utc>) -> Option<StateFailure> {
        if let Some(h) = self.heartbeat_seconds
            && now > self.last_heartbeat + chrono::Duration::seconds(h as i64)
        {
            return Some(StateFailure::new(
                names::TIMEOUT,
                format!("The task '{}' sent no heartbeat for {h} seconds.", self.state_name),
            ));
        }
        if let Some(t) = self.timeout_seconds
            && now > self.scheduled_at + chrono::Duration::seconds(t.min(i64::MAX as u64 / 1000) as i64)
        {
            return Some(StateFailure::new(
                names::TIMEOUT,
                format!("The task '{}' timed out after {t} seconds.", self.state_name),
            ));
        }
        None
    }
}
