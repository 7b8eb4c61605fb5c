//! Executions in SQLite, in tables prefixed `sfn_` so the file can be shared with the rest
//! of Sluice's local state (`.sluice/sluice.db`).

use super::{
    ChildState, ExecutionRecord, ExecutionStatus, ExecutionStore, ExecutionSummary, Lease, MapRunRecord, ReplayLog,
    StoreError, is_answered, is_parked,
};
use crate::history::HistoryEvent;
use crate::model::ExecutionType;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
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
CREATE TABLE IF NOT EXISTS sfn_map_runs (
    map_run_arn TEXT PRIMARY KEY,
    execution_arn TEXT NOT NULL,
    start_date TEXT NOT NULL,
    record_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sfn_map_runs_by_execution ON sfn_map_runs (execution_arn);
";

/// Columns added after the first release: a database made before them gains them on open.
const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("map_run_arn", "TEXT"),
    ("child_index", "INTEGER"),
    ("lease_owner", "TEXT"),
    ("lease_expires", "TEXT"),
    ("progress_json", "TEXT"),
    ("wakeup", "INTEGER"),
];

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
        conn.busy_timeout(Duration::from_secs(30))?;
        // One writer at a time: two processes opening a file of an older layout would both see
        // a column missing and both add it, and the second would fail.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let migrated = Self::migrate(&conn);
        conn.execute_batch(if migrated.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
        migrated?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn migrate(conn: &Connection) -> Result<(), StoreError> {
        conn.execute_batch(SCHEMA)?;
        let existing: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('sfn_executions')")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        for (column, kind) in ADDED_COLUMNS {
            if !existing.iter().any(|c| c == column) {
                conn.execute_batch(&format!("ALTER TABLE sfn_executions ADD COLUMN {column} {kind}"))?;
            }
        }
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS sfn_executions_by_map_run ON sfn_executions (map_run_arn, child_index)",
        )?;
        Ok(())
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
    if !keeps_history(record) {
        return Ok(());
    }
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
    ExecutionStatus::from_name(text).unwrap_or(ExecutionStatus::Running)
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(serde::de::Error::custom(e)))
}

/// An execution's row, for `INSERT ...` (followed by a conflict clause where one is needed).
const INSERT_ROW: &str = "INTO sfn_executions
     (execution_arn, name, state_machine_name, status, start_date, stop_date, version, record_json,
      map_run_arn, child_index)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// Inserts `record`'s row with a statement made from [`INSERT_ROW`]; the rows it changed.
fn insert_row(statement: &mut rusqlite::CachedStatement<'_>, record: &ExecutionRecord) -> Result<usize, StoreError> {
    Ok(statement.execute(params![
        record.execution_arn,
        record.name,
        record.state_machine_name,
        record.status.as_str(),
        record.start_date.to_rfc3339(),
        record.stop_date.map(|d| d.to_rfc3339()),
        record.version as i64,
        serde_json::to_string(record)?,
        record.parent.as_ref().map(|p| p.map_run_arn.as_str()),
        record.parent.as_ref().map(|p| p.index as i64),
    ])?)
}

/// Express children keep no history rows.
fn keeps_history(record: &ExecutionRecord) -> bool {
    !(record.parent.is_some() && record.execution_type == ExecutionType::Express)
}

impl ExecutionStore for SqliteExecutionStore {
    fn create(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = insert_row(
            &mut tx.prepare_cached(&format!("INSERT OR IGNORE {INSERT_ROW}"))?,
            record,
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
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let updated = tx.execute(
            "UPDATE sfn_executions SET status = ?2, stop_date = ?3, version = ?4, record_json = ?5,
             progress_json = NULL
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
        let row: Option<(String, Option<String>)> = self
            .conn()
            .query_row(
                "SELECT record_json, progress_json FROM sfn_executions WHERE execution_arn = ?1",
                params![execution_arn],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((json, progress)) = row else { return Ok(None) };
        let mut record: ExecutionRecord = serde_json::from_str(&json)?;
        if let Some(progress) = progress {
            record.replay = serde_json::from_str(&progress)?;
        }
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
             FROM sfn_executions WHERE map_run_arn IS NULL ORDER BY start_date DESC, name",
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
            out.push(ExecutionSummary {
                execution_arn,
                name,
                state_machine_name,
                status: status_from(&status),
                start_date: parse_time(&start)?,
                stop_date: stop.as_deref().map(parse_time).transpose()?,
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

    fn save_children(&self, records: Vec<ExecutionRecord>) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut upsert = tx.prepare_cached(&format!(
                "INSERT {INSERT_ROW}
                 ON CONFLICT (execution_arn) DO UPDATE SET status = excluded.status,
                   stop_date = excluded.stop_date, version = excluded.version,
                   record_json = excluded.record_json, progress_json = NULL"
            ))?;
            for record in &records {
                insert_row(&mut upsert, record)?;
            }
        }
        for record in &records {
            write_details(&tx, record)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn child_states(&self, map_run_arn: &str) -> Result<Vec<ChildState>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT child_index, execution_arn, status,
                    CASE WHEN status = 'RUNNING' THEN record_json END
             FROM sfn_executions WHERE map_run_arn = ?1 ORDER BY child_index",
        )?;
        let rows = stmt.query_map(params![map_run_arn], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (index, execution_arn, status, running) = row?;
            let (parked, answered) = match running {
                Some(json) => {
                    let record = serde_json::from_str::<ExecutionRecord>(&json)?;
                    (is_parked(&record), is_answered(&record))
                }
                None => (false, false),
            };
            out.push(ChildState {
                index: index as u64,
                execution_arn,
                status: status_from(&status),
                parked,
                answered,
            });
        }
        Ok(out)
    }

    fn children(&self, map_run_arn: &str, from_index: u64, limit: usize) -> Result<Vec<ExecutionRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT record_json FROM sfn_executions
             WHERE map_run_arn = ?1 AND child_index >= ?2 ORDER BY child_index LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![map_run_arn, from_index as i64, limit as i64], |row| {
            row.get::<_, String>(0)
        })?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }

    fn put_map_run(&self, map_run: &MapRunRecord) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO sfn_map_runs (map_run_arn, execution_arn, start_date, record_json) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (map_run_arn) DO UPDATE SET record_json = excluded.record_json",
            params![
                map_run.map_run_arn,
                map_run.execution_arn,
                map_run.start_date.to_rfc3339(),
                serde_json::to_string(map_run)?
            ],
        )?;
        Ok(())
    }

    fn map_run(&self, map_run_arn: &str) -> Result<Option<MapRunRecord>, StoreError> {
        let json: Option<String> = self
            .conn()
            .query_row(
                "SELECT record_json FROM sfn_map_runs WHERE map_run_arn = ?1",
                params![map_run_arn],
                |row| row.get(0),
            )
            .optional()?;
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    fn map_runs(&self, execution_arn: &str) -> Result<Vec<MapRunRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT record_json FROM sfn_map_runs WHERE execution_arn = ?1 ORDER BY start_date, map_run_arn",
        )?;
        let rows = stmt.query_map(params![execution_arn], |row| row.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }

    fn acquire_lease(
        &self,
        execution_arn: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // RFC 3339 in UTC with a fixed format compares correctly as text.
        let updated = self.conn().execute(
            "UPDATE sfn_executions SET lease_owner = ?2, lease_expires = ?3
             WHERE execution_arn = ?1 AND (lease_owner IS NULL OR lease_owner = ?2 OR lease_expires < ?4)",
            params![execution_arn, owner, lease_time(until), lease_time(now)],
        )?;
        Ok(updated == 1)
    }

    fn renew_lease(&self, execution_arn: &str, owner: &str, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let updated = self.conn().execute(
            "UPDATE sfn_executions SET lease_expires = ?3 WHERE execution_arn = ?1 AND lease_owner = ?2",
            params![execution_arn, owner, lease_time(until)],
        )?;
        Ok(updated == 1)
    }

    fn release_lease(&self, execution_arn: &str, owner: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE sfn_executions SET lease_owner = NULL, lease_expires = NULL
             WHERE execution_arn = ?1 AND lease_owner = ?2",
            params![execution_arn, owner],
        )?;
        Ok(())
    }

    fn lease(&self, execution_arn: &str) -> Result<Option<Lease>, StoreError> {
        let row: Option<(Option<String>, Option<String>)> = self
            .conn()
            .query_row(
                "SELECT lease_owner, lease_expires FROM sfn_executions WHERE execution_arn = ?1",
                params![execution_arn],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        match row {
            Some((Some(owner), Some(expires))) => Ok(Some(Lease {
                owner,
                expires_at: parse_time(&expires)?,
            })),
            _ => Ok(None),
        }
    }

    fn request_wakeup(&self, execution_arn: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE sfn_executions SET wakeup = 1 WHERE execution_arn = ?1",
            params![execution_arn],
        )?;
        Ok(())
    }

    fn take_wakeup(&self, execution_arn: &str) -> Result<bool, StoreError> {
        let taken = self.conn().execute(
            "UPDATE sfn_executions SET wakeup = NULL WHERE execution_arn = ?1 AND wakeup = 1",
            params![execution_arn],
        )?;
        Ok(taken == 1)
    }

    fn checkpoint(&self, execution_arn: &str, replay: &ReplayLog, events: &[HistoryEvent]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE sfn_executions SET progress_json = ?2 WHERE execution_arn = ?1",
            params![execution_arn, serde_json::to_string(replay)?],
        )?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO sfn_history (execution_arn, event_id, event_json) VALUES (?1, ?2, ?3)",
            )?;
            for event in events {
                insert.execute(params![execution_arn, event.id as i64, serde_json::to_string(event)?])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// A fixed-width UTC timestamp, so that leases compare as text.
fn lease_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
