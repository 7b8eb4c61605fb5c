//! Executions in SQLite, in tables prefixed `sfn_` so the file can be shared with the rest
//! of Sluice's local state (`.sluice/sluice.db`).

use super::{ExecutionRecord, ExecutionStatus, ExecutionStore, ExecutionSummary, StoreError};
use crate::history::HistoryEvent;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sfn_executions (
    execution_arn TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    state_machine_name TEXT NOT NULL,
    status TEXT NOT NULL,
    start_date TEXT NOT NULL,
    stop_date TEXT,
    version INTEGER NOT NULL,
    record_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sfn_task_tokens (
    token TEXT PRIMARY KEY,
    execution_arn TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sfn_history (
    execution_arn TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    event_json TEXT NOT NULL,
    PRIMARY KEY (execution_arn, event_id)
);
";

pub struct SqliteExecutionStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteExecutionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteExecutionStore").finish_non_exhaustive()
    }
}

impl SqliteExecutionStore {
    /// Opens (creating if needed) the database file and its `sfn_` tables.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::from_connection(Connection::open(path)?)
    }

    /// An in-memory database, for tests.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(conn: Connection) -> Result<Self, StoreError> {
        // Other processes (a CLI resume, the callback server) may hold the file briefly.
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn write_details(tx: &rusqlite::Transaction<'_>, record: &ExecutionRecord) -> Result<(), StoreError> {
    for task in &record.pending_tasks {
        tx.execute(
            "INSERT OR IGNORE INTO sfn_task_tokens (token, execution_arn) VALUES (?1, ?2)",
            params![task.token, record.execution_arn],
        )?;
    }
    tx.execute(
        "DELETE FROM sfn_history WHERE execution_arn = ?1",
        params![record.execution_arn],
    )?;
    let mut insert =
        tx.prepare_cached("INSERT INTO sfn_history (execution_arn, event_id, event_json) VALUES (?1, ?2, ?3)")?;
    for event in record.history.iter() {
        insert.execute(params![
            record.execution_arn,
            event.id as i64,
            serde_json::to_string(event)?
        ])?;
    }
    Ok(())
}

fn status_from(text: &str) -> ExecutionStatus {
    match text {
        "SUCCEEDED" => ExecutionStatus::Succeeded,
        "FAILED" => ExecutionStatus::Failed,
        "TIMED_OUT" => ExecutionStatus::TimedOut,
        _ => ExecutionStatus::Running,
    }
}

impl ExecutionStore for SqliteExecutionStore {
    fn create(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO sfn_executions
             (execution_arn, name, state_machine_name, status, start_date, stop_date, version, record_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                record.execution_arn,
                record.name,
                record.state_machine_name,
                record.status.as_str(),
                record.start_date.to_rfc3339(),
                record.stop_date.map(|d| d.to_rfc3339()),
                record.version as i64,
                serde_json::to_string(record)?
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists(record.name.clone()));
        }
        write_details(&tx, record)?;
        tx.commit()?;
        Ok(())
    }

    fn save(&self, record: ExecutionRecord) -> Result<(), StoreError> {
        let record = &record;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let updated = tx.execute(
            "UPDATE sfn_executions SET status = ?2, stop_date = ?3, version = ?4, record_json = ?5
             WHERE execution_arn = ?1 AND version = ?6",
            params![
                record.execution_arn,
                record.status.as_str(),
                record.stop_date.map(|d| d.to_rfc3339()),
                record.version as i64,
                serde_json::to_string(record)?,
                record.version as i64 - 1
            ],
        )?;
        if updated == 0 {
            return Err(StoreError::Conflict(record.execution_arn.clone()));
        }
        write_details(&tx, record)?;
        tx.commit()?;
        Ok(())
    }

    fn load(&self, execution_arn: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        let json: Option<String> = self
            .conn()
            .query_row(
                "SELECT record_json FROM sfn_executions WHERE execution_arn = ?1",
                params![execution_arn],
                |row| row.get(0),
            )
            .optional()?;
        let Some(json) = json else { return Ok(None) };
        let mut record: ExecutionRecord = serde_json::from_str(&json)?;
        record.history = std::sync::Arc::new(self.history(execution_arn)?);
        Ok(Some(record))
    }

    fn execution_for_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT execution_arn FROM sfn_task_tokens WHERE token = ?1",
                params![token],
                |row| row.get(0),
            )
            .optional()?)
    }

    fn list(&self) -> Result<Vec<ExecutionSummary>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT execution_arn, name, state_machine_name, status, start_date, stop_date
             FROM sfn_executions ORDER BY start_date DESC, name",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, Option<String>>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (execution_arn, name, state_machine_name, status, start, stop) = row?;
            let parse = |s: &str| {
                chrono::DateTime::parse_from_rfc3339(s)
                    .map(|d| d.with_timezone(&chrono::Utc))
                    .map_err(|e| StoreError::Corrupt(serde::de::Error::custom(e)))
            };
            out.push(ExecutionSummary {
                execution_arn,
                name,
                state_machine_name,
                status: status_from(&status),
                start_date: parse(&start)?,
                stop_date: stop.as_deref().map(parse).transpose()?,
            });
        }
        Ok(out)
    }

    fn history(&self, execution_arn: &str) -> Result<Vec<HistoryEvent>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT event_json FROM sfn_history WHERE execution_arn = ?1 ORDER BY event_id")?;
        let rows = stmt.query_map(params![execution_arn], |row| row.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }
}
