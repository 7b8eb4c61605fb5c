//! Where executions live between runs: a parked execution is saved with everything needed
//! to resume it, so another process can answer its task token.

mod memory;
mod sqlite;
mod tasks;

pub use memory::MemoryExecutionStore;
pub use sqlite::SqliteExecutionStore;
pub use tasks::{PendingTask, Recorded, ReplayLog};

use crate::history::{HistoryEvent, HistorySplice};
use crate::mock::MockedTestCase;
use crate::model::ExecutionType;
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
    /// Stopped from outside, or found abandoned: its process died while running it.
    Aborted,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
            ExecutionStatus::Aborted => "ABORTED",
        }
    }

    pub fn from_name(text: &str) -> Option<Self> {
        Some(match text {
            "RUNNING" => ExecutionStatus::Running,
            "SUCCEEDED" => ExecutionStatus::Succeeded,
            "FAILED" => ExecutionStatus::Failed,
            "TIMED_OUT" => ExecutionStatus::TimedOut,
            "ABORTED" => ExecutionStatus::Aborted,
            _ => return None,
        })
    }

    /// FAILED, TIMED_OUT and ABORTED executions can be redriven.
    pub fn is_redrivable(self) -> bool {
        matches!(
            self,
            ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted
        )
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
    /// Set on a Distributed Map's child executions.
    #[serde(default)]
    pub parent: Option<ParentLink>,
    /// Express children keep no history (as on AWS, where it goes to CloudWatch Logs).
    #[serde(default)]
    pub execution_type: ExecutionType,
    #[serde(default)]
    pub redrive_count: u32,
    #[serde(default)]
    pub redrive_date: Option<DateTime<Utc>>,
    /// Events of earlier runs that a redrive keeps, and where they go in the replayed history.
    #[serde(default)]
    pub(crate) history_splices: Vec<HistorySplice>,
    /// The top-level state visit whose failure ended the execution: a redrive reruns it.
    #[serde(default)]
    pub(crate) failure_point: Option<FailurePoint>,
    /// Bumped on every save; a save based on an older version is refused.
    pub version: u64,
    /// Shared, so saving a record with a long history does not copy it.
    #[serde(skip)]
    pub history: Arc<Vec<HistoryEvent>>,
}

/// Where a child execution of a Distributed Map belongs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentLink {
    pub execution_arn: String,
    pub map_run_arn: String,
    /// The child's place among its map run's items (or batches).
    pub index: u64,
}

/// Where an execution failed: the replay key of the top-level state visit, and the event
/// that entered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FailurePoint {
    pub call: String,
    pub entered_event: u64,
}

/// A process's claim to run an execution; it expires unless renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub expires_at: DateTime<Utc>,
}

/// The state of one map run's child, as a redrive needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildState {
    pub index: u64,
    pub execution_arn: String,
    pub status: ExecutionStatus,
    /// Running and waiting for a task token.
    pub parked: bool,
    /// Running with a token answered: its resume is under way (or was cut short).
    pub answered: bool,
}

/// A Distributed Map's run: its children, counts and where its results went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MapRunRecord {
    pub map_run_arn: String,
    pub execution_arn: String,
    pub state_name: String,
    pub status: MapRunStatus,
    pub start_date: DateTime<Utc>,
    pub stop_date: Option<DateTime<Utc>>,
    pub max_concurrency: u64,
    pub tolerated_failure_count: u64,
    pub tolerated_failure_percentage: f64,
    pub execution_type: ExecutionType,
    pub item_counts: MapRunCounts,
    pub execution_counts: MapRunCounts,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub result_writer_details: Option<Value>,
    pub redrive_count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MapRunStatus {
    Running,
    Succeeded,
    Failed,
    Aborted,
}

/// DescribeMapRun's `itemCounts` / `executionCounts`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MapRunCounts {
    pub pending: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub aborted: u64,
    pub total: u64,
    pub results_written: u64,
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

/// Whether a running execution waits for a task token.
pub(crate) fn is_parked(record: &ExecutionRecord) -> bool {
    record.status == ExecutionStatus::Running && record.pending_tasks.iter().any(|p| p.answer.is_none())
}

/// Whether a running execution has a task token answered and not yet taken up by a resume.
pub(crate) fn is_answered(record: &ExecutionRecord) -> bool {
    record.status == ExecutionStatus::Running && record.pending_tasks.iter().any(|p| p.answer.is_some())
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

    /// Stores finished (or parked) children of a map run in one go, replacing earlier
    /// versions: only the process holding the parent's lease writes them.
    fn save_children(&self, records: Vec<ExecutionRecord>) -> Result<(), StoreError>;

    /// Every stored child of a map run, by index.
    fn child_states(&self, map_run_arn: &str) -> Result<Vec<ChildState>, StoreError>;

    /// Up to `limit` children from `from_index` on, in index order, without their history.
    fn children(&self, map_run_arn: &str, from_index: u64, limit: usize) -> Result<Vec<ExecutionRecord>, StoreError>;

    fn put_map_run(&self, map_run: &MapRunRecord) -> Result<(), StoreError>;

    fn map_run(&self, map_run_arn: &str) -> Result<Option<MapRunRecord>, StoreError>;

    /// The map runs an execution started, oldest first.
    fn map_runs(&self, execution_arn: &str) -> Result<Vec<MapRunRecord>, StoreError>;

    /// Claims the execution for `owner` until `until`, when no one else holds an unexpired
    /// lease on it; false when someone does.
    fn acquire_lease(
        &self,
        execution_arn: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Extends `owner`'s lease; false when it is no longer `owner`'s.
    fn renew_lease(&self, execution_arn: &str, owner: &str, until: DateTime<Utc>) -> Result<bool, StoreError>;

    fn release_lease(&self, execution_arn: &str, owner: &str) -> Result<(), StoreError>;

    fn lease(&self, execution_arn: &str) -> Result<Option<Lease>, StoreError>;

    /// Asks whoever holds the execution's lease to run it once more before letting go (a child
    /// of its map run ended while it was busy).
    fn request_wakeup(&self, execution_arn: &str) -> Result<(), StoreError>;

    /// Takes a pending wake-up request; true when there was one.
    fn take_wakeup(&self, execution_arn: &str) -> Result<bool, StoreError>;

    /// Keeps a running execution's replay log and its newest history events (`events`, in id
    /// order, replacing stored events with the same ids), so that a crash loses at most the
    /// work since. A later `save` supersedes it; `load` returns it in the record.
    fn checkpoint(&self, execution_arn: &str, replay: &ReplayLog, events: &[HistoryEvent]) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests;
