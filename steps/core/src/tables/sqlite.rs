//! The SQLite backend: one file (`.sluice/sluice.db`), one `items` table holding every logical
//! table, items stored as DynamoDB JSON. WAL mode, so readers (the API) and a writer (ingest)
//! work at once.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    BatchGet, DeleteCondition, MAX_BATCH_GET, Page, PageRequest, PutCondition, Table, key_of, now_epoch_seconds,
};
use crate::BackendError;
use crate::item::{AttrValue, Item, ItemKey, PARTITION_KEY, SORT_KEY, expires_at, is_expired};

const UPSERT: &str = "INSERT OR REPLACE INTO items (tbl, pk, sk, item, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)";

/// Items one SQLite transaction takes: a commit costs far more than a row, so the embedded
/// backend writes in bigger batches than DynamoDB's 25.
const SQLITE_MAX_BATCH_PUT: usize = 2000;

/// The shared SQLite connection behind every local table.
#[derive(Clone)]
pub struct SqliteDatabase {
    connection: Arc<Mutex<Connection>>,
}

impl SqliteDatabase {
    pub fn open(path: &Path) -> Result<SqliteDatabase, BackendError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private::private_dir(dir)?;
        }
        crate::private::private_database(path)?;
        let connection = Connection::open(path).map_err(BackendError::sqlite("open"))?;
        Self::prepare(connection)
    }

    pub fn open_in_memory() -> Result<SqliteDatabase, BackendError> {
        Self::prepare(Connection::open_in_memory().map_err(BackendError::sqlite("open"))?)
    }

    fn prepare(connection: Connection) -> Result<SqliteDatabase, BackendError> {
        // First of all, so that even switching to WAL waits for another process opening the
        // same file instead of failing "database is locked".
        connection
            .busy_timeout(std::time::Duration::from_secs(30))
            .map_err(BackendError::sqlite("set the busy timeout"))?;
        // Switching to WAL needs the file to itself and, while another process opens it, can
        // fail busy without waiting: try again for a while.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match connection.execute_batch("PRAGMA journal_mode = WAL;") {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(BackendError::sqlite("switch to WAL")(e)),
            }
        }
        connection
            .execute_batch(
                // Write transactions begin IMMEDIATE (see `put`): a deferred one that reads
                // first cannot wait for another process's writer and fails "database is locked".
                // Bulk writes (an ingest, a vault) check the WAL back into the file every
                // 10,000 pages rather than 1,000: a tenth less time per million rows, for a WAL
                // of at most about 40 MB.
                "PRAGMA synchronous = NORMAL;
                 PRAGMA wal_autocheckpoint = 10000;
                 CREATE TABLE IF NOT EXISTS items (
                     tbl TEXT NOT NULL,
                     pk TEXT NOT NULL,
                     sk TEXT NOT NULL,
                     item TEXT NOT NULL,
                     expires_at INTEGER,
                     PRIMARY KEY (tbl, pk, sk)
                 ) WITHOUT ROWID;",
            )
            .map_err(BackendError::sqlite("create schema"))?;
        Ok(SqliteDatabase {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// The logical table `name` inside this file.
    pub fn table(&self, name: &str) -> SqliteTable {
        SqliteTable {
            database: self.clone(),
            name: name.to_string(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back), so a poisoned lock is still usable.
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub struct SqliteTable {
    database: SqliteDatabase,
    name: String,
}

impl SqliteTable {
    fn decode(&self, text: &str) -> Result<Item, BackendError> {
        serde_json::from_str(text).map_err(|e| BackendError::Corrupt {
            location: format!("SQLite table {}", self.name),
            reason: e.to_string(),
        })
    }

    fn encode(&self, item: &Item) -> Result<String, BackendError> {
        serde_json::to_string(item).map_err(|e| BackendError::InvalidItem {
            table: self.name.clone(),
            reason: e.to_string(),
        })
    }

    fn read(&self, connection: &Connection, key: &ItemKey) -> Result<Option<Item>, BackendError> {
        let text: Option<String> = connection
            .prepare_cached("SELECT item FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3")
            .and_then(|mut statement| {
                statement
                    .query_row(params![self.name, key.pk, key.sk], |row| row.get(0))
                    .optional()
            })
            .map_err(BackendError::sqlite("get"))?;
        text.map(|text| self.decode(&text)).transpose()
    }

    fn write(&self, connection: &Connection, key: &ItemKey, item: &Item) -> Result<(), BackendError> {
        let text = self.encode(item)?;
        connection
            .prepare_cached(UPSERT)
            .and_then(|mut statement| statement.execute(params![self.name, key.pk, key.sk, text, expires_at(item)]))
            .map_err(BackendError::sqlite("put"))?;
        Ok(())
    }

    fn condition_failed(&self, condition: &'static str) -> BackendError {
        BackendError::ConditionFailed {
            table: self.name.clone(),
            condition,
        }
    }
}

#[async_trait]
impl Table for SqliteTable {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, BackendError> {
        let connection = self.database.lock();
        let now = now_epoch_seconds();
        Ok(self.read(&connection, key)?.filter(|item| !is_expired(item, now)))
    }

    async fn put(&self, item: Item, condition: PutCondition<'_>) -> Result<(), BackendError> {
        let key = key_of(&self.name, &item)?;
        let mut connection = self.database.lock();
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(BackendError::sqlite("begin"))?;
        let allowed = match condition {
            PutCondition::Always => true,
            PutCondition::IfAbsent => self.read(&transaction, &key)?.is_none(),
            PutCondition::IfAbsentOrExpired { now } => {
                self.read(&transaction, &key)?.is_none_or(|old| is_expired(&old, now))
            }
            PutCondition::IfFieldIn { field, values } => self.read(&transaction, &key)?.is_some_and(|old| {
                !is_expired(&old, now_epoch_seconds())
                    && old
                        .get(field)
                        .and_then(AttrValue::as_str)
                        .is_some_and(|v| values.contains(&v))
            }),
        };
        if !allowed {
            return Err(self.condition_failed(match condition {
                PutCondition::IfFieldIn { .. } => "item must exist with the expected field value",
                _ => "item must not exist",
            }));
        }
        self.write(&transaction, &key, &item)?;
        transaction.commit().map_err(BackendError::sqlite("commit"))
    }

    async fn delete(&self, key: &ItemKey, condition: DeleteCondition) -> Result<Option<Item>, BackendError> {
        let mut connection = self.database.lock();
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(BackendError::sqlite("begin"))?;
        let old = self.read(&transaction, key)?;
        if let DeleteCondition::IfExists { now } = condition
            && old.as_ref().is_none_or(|item| is_expired(item, now))
        {
            return Err(self.condition_failed("item must exist"));
        }
        transaction
            .execute(
                "DELETE FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3",
                params![self.name, key.pk, key.sk],
            )
            .map_err(BackendError::sqlite("delete"))?;
        transaction.commit().map_err(BackendError::sqlite("commit"))?;
        Ok(old)
    }

    async fn batch_put(&self, items: &[Item]) -> Result<Vec<Item>, BackendError> {
        if items.len() > SQLITE_MAX_BATCH_PUT {
            return Err(BackendError::InvalidItem {
                table: self.name.clone(),
                reason: format!(
                    "a batch holds at most {SQLITE_MAX_BATCH_PUT} items, got {}",
                    items.len()
                ),
            });
        }
        // Encode before taking the lock, and run one prepared statement for the whole batch.
        let rows = items
            .iter()
            .map(|item| {
                let (Some(AttrValue::S(pk)), Some(AttrValue::S(sk))) = (item.get(PARTITION_KEY), item.get(SORT_KEY))
                else {
                    return Err(BackendError::InvalidItem {
                        table: self.name.clone(),
                        reason: "item has no string pk and sk".into(),
                    });
                };
                Ok((pk, sk, self.encode(item)?, expires_at(item)))
            })
            .collect::<Result<Vec<_>, BackendError>>()?;
        let mut connection = self.database.lock();
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(BackendError::sqlite("begin"))?;
        {
            let mut statement = transaction
                .prepare_cached(UPSERT)
                .map_err(BackendError::sqlite("put"))?;
            for (pk, sk, text, expires) in &rows {
                statement
                    .execute(params![self.name, pk, sk, text, expires])
                    .map_err(BackendError::sqlite("put"))?;
            }
        }
        transaction.commit().map_err(BackendError::sqlite("commit"))?;
        Ok(Vec::new())
    }

    fn max_batch_put(&self) -> usize {
        SQLITE_MAX_BATCH_PUT
    }

    async fn batch_get(&self, keys: Vec<ItemKey>) -> Result<BatchGet, BackendError> {
        if keys.len() > MAX_BATCH_GET {
            return Err(BackendError::InvalidItem {
                table: self.name.clone(),
                reason: format!("a batch read holds at most {MAX_BATCH_GET} keys, got {}", keys.len()),
            });
        }
        let connection = self.database.lock();
        let now = now_epoch_seconds();
        let mut items = Vec::with_capacity(keys.len());
        for key in &keys {
            if let Some(item) = self.read(&connection, key)?.filter(|item| !is_expired(item, now)) {
                items.push(item);
            }
        }
        Ok(BatchGet {
            items,
            unprocessed: Vec::new(),
        })
    }

    async fn query(&self, pk: &str, request: &PageRequest) -> Result<Page, BackendError> {
        let connection = self.database.lock();
        let now = now_epoch_seconds();
        let limit = request.limit.max(1);
        let prefix = request.sk_prefix.clone().unwrap_or_default();
        let after = request.start_after.clone().unwrap_or_default();
        let rows: Vec<(String, String)> = connection
            .prepare_cached(
                "SELECT sk, item FROM items WHERE tbl = ?1 AND pk = ?2 AND sk > ?3 AND substr(sk, 1, length(?4)) = ?4
                 AND (expires_at IS NULL OR expires_at > ?5) ORDER BY sk LIMIT ?6",
            )
            .and_then(|mut statement| {
                statement
                    .query_map(params![self.name, pk, after, prefix, now, (limit + 1) as i64], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })?
                    .collect()
            })
            .map_err(BackendError::sqlite("query"))?;
        let more = rows.len() > limit;
        let mut items = Vec::with_capacity(limit);
        let mut last_sk = None;
        for (sk, text) in rows.into_iter().take(limit) {
            items.push(self.decode(&text)?);
            last_sk = Some(sk);
        }
        Ok(Page {
            items,
            last_sk: if more { last_sk } else { None },
        })
    }
}
