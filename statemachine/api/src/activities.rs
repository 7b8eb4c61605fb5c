//! Activities: Task states whose resource is an activity ARN hand their input and task token
//! to a queue, and a worker takes them with `GetActivityTask` (a long poll of up to 60 s, as on
//! AWS) and answers with `SendTaskSuccess` / `SendTaskFailure` / `SendTaskHeartbeat`. Activities
//! and queued tasks live in the engine's SQLite file, so a worker polling after a restart still
//! finds the tasks parked executions wait on.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use sluice_statemachine::{TaskContext, TaskFailure, TaskHandler};
use tokio::sync::Notify;

use crate::registry::RegistryError;

/// How long `GetActivityTask` waits for a task before answering with none (AWS: 60 s).
pub const LONG_POLL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub arn: String,
    pub name: String,
    pub created: DateTime<Utc>,
}

/// A queued activity task: what the worker gets.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityTask {
    pub token: String,
    pub input: Value,
    /// Its place in the queue, kept when it is put back.
    seq: i64,
}

pub struct Activities {
    connection: Mutex<Connection>,
    queued: Notify,
}

fn failed(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> RegistryError {
    move |source| RegistryError::new(operation, source)
}

impl Activities {
    pub fn open(path: &Path) -> Result<Arc<Activities>, RegistryError> {
        Self::prepare(Connection::open(path).map_err(failed("open"))?)
    }

    pub fn in_memory() -> Result<Arc<Activities>, RegistryError> {
        Self::prepare(Connection::open_in_memory().map_err(failed("open"))?)
    }

    fn prepare(connection: Connection) -> Result<Arc<Activities>, RegistryError> {
        connection
            .busy_timeout(Duration::from_secs(10))
            .map_err(failed("open"))?;
        connection
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS sfn_activities (
                     arn TEXT PRIMARY KEY,
                     name TEXT NOT NULL UNIQUE,
                     created_ms INTEGER NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS sfn_activity_tasks (
                     seq INTEGER PRIMARY KEY AUTOINCREMENT,
                     activity_arn TEXT NOT NULL,
                     token TEXT NOT NULL UNIQUE,
                     input TEXT NOT NULL
                 );",
            )
            .map_err(failed("create schema"))?;
        Ok(Arc::new(Activities {
            connection: Mutex::new(connection),
            queued: Notify::new(),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates the activity (or finds it: `CreateActivity` is idempotent on AWS).
    pub fn create(&self, arn: &str, name: &str) -> Result<Activity, RegistryError> {
        let connection = self.lock();
        connection
            .execute(
                "INSERT OR IGNORE INTO sfn_activities (arn, name, created_ms) VALUES (?1, ?2, ?3)",
                params![arn, name, Utc::now().timestamp_millis()],
            )
            .map_err(failed("create activity"))?;
        drop(connection);
        self.get(arn)?
            .ok_or_else(|| RegistryError::new("create activity", rusqlite::Error::QueryReturnedNoRows))
    }

    pub fn get(&self, arn: &str) -> Result<Option<Activity>, RegistryError> {
        self.lock()
            .query_row(
                "SELECT arn, name, created_ms FROM sfn_activities WHERE arn = ?1",
                params![arn],
                row_to_activity,
            )
            .optional()
            .map_err(failed("read activity"))
    }

    pub fn list(&self) -> Result<Vec<Activity>, RegistryError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT arn, name, created_ms FROM sfn_activities ORDER BY name")
            .map_err(failed("list activities"))?;
        let rows = statement
            .query_map([], row_to_activity)
            .map_err(failed("list activities"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(failed("list activities"))
    }

    pub fn delete(&self, arn: &str) -> Result<(), RegistryError> {
        self.lock()
            .execute("DELETE FROM sfn_activities WHERE arn = ?1", params![arn])
            .map_err(failed("delete activity"))?;
        Ok(())
    }

    fn push(&self, activity_arn: &str, token: &str, input: &Value) -> Result<(), RegistryError> {
        self.lock()
            .execute(
                "INSERT OR IGNORE INTO sfn_activity_tasks (activity_arn, token, input) VALUES (?1, ?2, ?3)",
                params![activity_arn, token, input.to_string()],
            )
            .map_err(failed("queue activity task"))?;
        self.queued.notify_waiters();
        Ok(())
    }

    /// The oldest queued task of `activity_arn`, taken off the queue.
    fn pop(&self, activity_arn: &str) -> Result<Option<ActivityTask>, RegistryError> {
        let connection = self.lock();
        let taken: Option<(i64, String, String)> = connection
            .query_row(
                "SELECT seq, token, input FROM sfn_activity_tasks WHERE activity_arn = ?1 ORDER BY seq LIMIT 1",
                params![activity_arn],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
            .map_err(failed("take activity task"))?;
        let Some((seq, token, input)) = taken else {
            return Ok(None);
        };
        connection
            .execute("DELETE FROM sfn_activity_tasks WHERE seq = ?1", params![seq])
            .map_err(failed("take activity task"))?;
        Ok(Some(ActivityTask {
            token,
            input: serde_json::from_str(&input).unwrap_or(Value::Null),
            seq,
        }))
    }

    /// Puts a taken task back where it was in the queue (its execution had not parked on it yet).
    pub fn put_back(&self, activity_arn: &str, task: &ActivityTask) -> Result<(), RegistryError> {
        self.lock()
            .execute(
                "INSERT OR IGNORE INTO sfn_activity_tasks (seq, activity_arn, token, input) VALUES (?1, ?2, ?3, ?4)",
                params![task.seq, activity_arn, task.token, task.input.to_string()],
            )
            .map_err(failed("put back activity task"))?;
        self.queued.notify_waiters();
        Ok(())
    }

    /// `GetActivityTask`: a queued task, waiting up to `wait` for one.
    pub async fn take(&self, activity_arn: &str, wait: Duration) -> Result<Option<ActivityTask>, RegistryError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so a task queued in between still wakes this poll.
            let notified = self.queued.notified();
            if let Some(task) = self.pop(activity_arn)? {
                return Ok(Some(task));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(None);
            }
        }
    }
}

fn row_to_activity(row: &rusqlite::Row<'_>) -> rusqlite::Result<Activity> {
    Ok(Activity {
        arn: row.get(0)?,
        name: row.get(1)?,
        created: Utc.timestamp_millis_opt(row.get(2)?).single().unwrap_or_default(),
    })
}

/// The engine's handler for activity resources: queues the task for a worker.
pub struct ActivityHandler(pub Arc<Activities>);

#[async_trait]
impl TaskHandler for ActivityHandler {
    async fn invoke(&self, ctx: TaskContext, input: Value) -> Result<Value, TaskFailure> {
        let Some(token) = ctx.task_token else {
            return Err(TaskFailure::new("States.Runtime", "an activity task has no task token"));
        };
        if self.0.get(&ctx.resource).ok().flatten().is_none() {
            return Err(TaskFailure::new(
                "States.Runtime",
                format!("the activity '{}' does not exist (CreateActivity first)", ctx.resource),
            ));
        }
        self.0
            .push(&ctx.resource, &token, &input)
            .map_err(|e| TaskFailure::new("States.Runtime", e.to_string()))?;
        Ok(Value::Null)
    }
}
