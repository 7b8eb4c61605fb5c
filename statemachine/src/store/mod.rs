//! Where executions live between runs: a parked execution is saved with everything needed
//! to resume it, so another process can answer its task token.

mod memory;
mod sqlite;

pub use memory::MemoryExecutionStore;
pub use sqlite::SqliteExecutionStore;

use crate::executor::PendingTask;
use crate::executor::replay::ReplayLog;
use crate::history::HistoryEvent;
use crate::mock::MockedTestCase;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("an execution named '{0}' already exists")]
    AlreadyExists(String),
    #[error("the execution '{0}' was changed by someone else meanwhile")]
    Conflict(String),
    #[error("execution store database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("execution store holds a record that cannot be read: {0}")]
    Corrupt(#[from] serde_json::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
        }
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything known about one execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub execution_arn: String,
    pub name: String,
    pub state_machine_name: String,
    pub state_machine_arn: String,
    /// The definition it runs, so any process can resume it.
    pub definition: String,
    pub input: Value,
    pub status: ExecutionStatus,
    pub start_date: DateTime<Utc>,
    pub stop_date: Option<DateTime<Utc>>,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// Tasks waiting for their token (answered ones wait for the next resume).
    pub pending_tasks: Vec<PendingTask>,
    pub(crate) replay: ReplayLog,
    pub(crate) mocks: Option<MockedTestCase>,
    pub(crate) seed: u64,
    pub history_limit: Option<usize>,
    /// Bumped on every save; a save based on an older version is refused.
    pub version: u64,
    /// Shared, so saving a record with a long history does not copy it.
    #[serde(skip)]
    pub history: Arc<Vec<HistoryEvent>>,
}

/// One line of an execution listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionSummary {
    pub execution_arn: String,
    pub name: String,
    pub state_machine_name: String,
    pub status: ExecutionStatus,
    pub start_date: DateTime<Utc>,
    pub stop_date: Option<DateTime<Utc>>,
}

impl From<&ExecutionRecord> for ExecutionSummary {
    fn from(r: &ExecutionRecord) -> Self {
        Self {
            execution_arn: r.execution_arn.clone(),
            name: r.name.clone(),
            state_machine_name: r.state_machine_name.clone(),
            status: r.status,
            start_date: r.start_date,
            stop_date: r.stop_date,
        }
    }
}

/// Durable (or in-memory) storage of executions. Calls are short and synchronous.
pub trait ExecutionStore: Send + Sync {
    /// Stores a new execution; fails with `AlreadyExists` when the ARN is taken.
    fn create(&self, record: &ExecutionRecord) -> Result<(), StoreError>;

    /// Replaces an execution whose stored version is still `record.version - 1`. Takes the
    /// record by value: an in-memory store keeps it without copying a large output.
    fn save(&self, record: ExecutionRecord) -> Result<(), StoreError>;

    fn load(&self, execution_arn: &str) -> Result<Option<ExecutionRecord>, StoreError>;

    /// The execution a task token belongs to.
    fn execution_for_token(&self, token: &str) -> Result<Option<String>, StoreError>;

    /// All executions, newest first.
    fn list(&self) -> Result<Vec<ExecutionSummary>, StoreError>;

    fn history(&self, execution_arn: &str) -> Result<Vec<HistoryEvent>, StoreError>;
}

#[cfg(test)]
mod tests;
