//! The state machines the API was asked to create, kept in the engine's SQLite file (table
//! `sfn_state_machines`), with their tags: they outlive the server, as the executions do.

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
#[error("the state machine registry ({operation}): {source}")]
pub struct RegistryError {
    operation: &'static str,
    #[source]
    source: rusqlite::Error,
}

impl RegistryError {
    pub(crate) fn new(operation: &'static str, source: rusqlite::Error) -> RegistryError {
        RegistryError { operation, source }
    }
}

fn failed(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> RegistryError {
    move |source| RegistryError { operation, source }
}

/// One state machine as `DescribeStateMachine` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineRecord {
    pub arn: String,
    pub name: String,
    pub definition: String,
    pub role_arn: String,
    /// `STANDARD` or `EXPRESS`.
    pub kind: String,
    pub created: DateTime<Utc>,
    pub updated: Option<DateTime<Utc>>,
    /// A new id on every update (`revisionId`).
    pub revision: String,
    pub logging: Value,
    pub tracing: Value,
    pub description: String,
}

pub struct Registry {
    connection: Mutex<Connection>,
}

impl Registry {
    pub fn open(path: &Path) -> Result<Registry, RegistryError> {
        let connection = Connection::open(path).map_err(failed("open"))?;
        Self::prepare(connection)
    }

    pub fn in_memory() -> Result<Registry, RegistryError> {
        Self::prepare(Connection::open_in_memory().map_err(failed("open"))?)
    }

    fn prepare(connection: Connection) -> Result<Registry, RegistryError> {
        connection
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(failed("open"))?;
        connection
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS sfn_state_machines (
                     arn TEXT PRIMARY KEY,
                     name TEXT NOT NULL UNIQUE,
                     definition TEXT NOT NULL,
                     role_arn TEXT NOT NULL,
                     kind TEXT NOT NULL,
                     created_ms INTEGER NOT NULL,
                     updated_ms INTEGER,
                     revision TEXT NOT NULL,
                     logging TEXT NOT NULL,
                     tracing TEXT NOT NULL,
                     description TEXT NOT NULL DEFAULT ''
                 );
                 CREATE TABLE IF NOT EXISTS sfn_tags (
                     arn TEXT NOT NULL,
                     key TEXT NOT NULL,
                     value TEXT NOT NULL,
                     PRIMARY KEY (arn, key)
                 );",
            )
            .map_err(failed("create schema"))?;
        Ok(Registry {
            connection: Mutex::new(connection),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-done write (each is one statement).
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds `record`; `false` when its name is taken.
    pub fn create(&self, record: &MachineRecord) -> Result<bool, RegistryError> {
        let inserted = self
            .lock()
            .execute(
                "INSERT OR IGNORE INTO sfn_state_machines
                 (arn, name, definition, role_arn, kind, created_ms, updated_ms, revision, logging, tracing, description)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    record.arn,
                    record.name,
                    record.definition,
                    record.role_arn,
                    record.kind,
                    record.created.timestamp_millis(),
                    record.updated.map(|t| t.timestamp_millis()),
                    record.revision,
                    record.logging.to_string(),
                    record.tracing.to_string(),
                    record.description,
                ],
            )
            .map_err(failed("create"))?;
        Ok(inserted == 1)
    }

    pub fn replace(&self, record: &MachineRecord) -> Result<(), RegistryError> {
        self.lock()
            .execute(
                "UPDATE sfn_state_machines SET definition = ?2, role_arn = ?3, updated_ms = ?4, revision = ?5,
                 logging = ?6, tracing = ?7, description = ?8 WHERE arn = ?1",
                params![
                    record.arn,
                    record.definition,
                    record.role_arn,
                    record.updated.map(|t| t.timestamp_millis()),
                    record.revision,
                    record.logging.to_string(),
                    record.tracing.to_string(),
                    record.description,
                ],
            )
            .map_err(failed("update"))?;
        Ok(())
    }

    pub fn get(&self, arn: &str) -> Result<Option<MachineRecord>, RegistryError> {
        self.lock()
            .query_row(
                "SELECT arn, name, definition, role_arn, kind, created_ms, updated_ms, revision, logging, tracing, description
                 FROM sfn_state_machines WHERE arn = ?1",
                params![arn],
                row_to_record,
            )
            .optional()
            .map_err(failed("read"))
    }

    /// Every state machine, by name.
    pub fn list(&self) -> Result<Vec<MachineRecord>, RegistryError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(
                "SELECT arn, name, definition, role_arn, kind, created_ms, updated_ms, revision, logging, tracing, description
                 FROM sfn_state_machines ORDER BY name",
            )
            .map_err(failed("list"))?;
        let rows = statement.query_map([], row_to_record).map_err(failed("list"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(failed("list"))
    }

    pub fn delete(&self, arn: &str) -> Result<(), RegistryError> {
        let connection = self.lock();
        connection
            .execute("DELETE FROM sfn_state_machines WHERE arn = ?1", params![arn])
            .map_err(failed("delete"))?;
        connection
            .execute("DELETE FROM sfn_tags WHERE arn = ?1", params![arn])
            .map_err(failed("delete"))?;
        Ok(())
    }

    pub fn tag(&self, arn: &str, tags: &[(String, String)]) -> Result<(), RegistryError> {
        let connection = self.lock();
        for (key, value) in tags {
            connection
                .execute(
                    "INSERT OR REPLACE INTO sfn_tags (arn, key, value) VALUES (?1, ?2, ?3)",
                    params![arn, key, value],
                )
                .map_err(failed("tag"))?;
        }
        Ok(())
    }

    pub fn untag(&self, arn: &str, keys: &[String]) -> Result<(), RegistryError> {
        let connection = self.lock();
        for key in keys {
            connection
                .execute("DELETE FROM sfn_tags WHERE arn = ?1 AND key = ?2", params![arn, key])
                .map_err(failed("untag"))?;
        }
        Ok(())
    }

    pub fn tags(&self, arn: &str) -> Result<Vec<(String, String)>, RegistryError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT key, value FROM sfn_tags WHERE arn = ?1 ORDER BY key")
            .map_err(failed("tags"))?;
        let rows = statement
            .query_map(params![arn], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(failed("tags"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(failed("tags"))
    }
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<MachineRecord> {
    let json = |text: String| serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(MachineRecord {
        arn: row.get(0)?,
        name: row.get(1)?,
        definition: row.get(2)?,
        role_arn: row.get(3)?,
        kind: row.get(4)?,
        created: millis(row.get(5)?),
        updated: row.get::<_, Option<i64>>(6)?.map(millis),
        revision: row.get(7)?,
        logging: json(row.get(8)?),
        tracing: json(row.get(9)?),
        description: row.get(10)?,
    })
}
