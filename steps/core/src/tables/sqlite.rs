//! The SQLite backend: one file (`.sluice/sluice.db`), one `items` table holding every logical
//! table. WAL mode, so readers (the API) and a writer (ingest) work at once.
//!
//! An item is stored as a BLOB: a format byte, then the item without its `pk` and `sk` (they are
//! columns already) in postcard's binary form, about half the bytes of DynamoDB JSON and so half
//! the writing for a bulk load. TEXT values, DynamoDB JSON with the keys, are what older versions
//! wrote: still read.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, TransactionBehavior, params};
use serde::ser::{SerializeMap, Serializer};

use super::{
    BatchGet, DeleteCondition, MAX_BATCH_GET, Page, PageRequest, PutCondition, Table, key_of, now_epoch_seconds,
};
use crate::BackendError;
use crate::item::{AttrValue, Item, ItemKey, PARTITION_KEY, SORT_KEY, expires_at, is_expired};

const UPSERT: &str = "INSERT OR REPLACE INTO items (tbl, pk, sk, item, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)";

/// Items one SQLite transaction takes: a commit costs far more than a row, so the embedded
/// backend writes in bigger batches than DynamoDB's 25.
const SQLITE_MAX_BATCH_PUT: usize = 2000;

/// The first byte of a stored item: postcard, keys left out.
const FORMAT_POSTCARD: u8 = 1;

/// The page size of a new database file. 16 KiB pages take a bulk load of a million records
/// in about two thirds of the time 4 KiB pages do (fewer pages to split, write and check back
/// in). An existing file keeps the size it was made with.
const PAGE_SIZE: u32 = 16 * 1024;

/// WAL pages written before they are checked back into the file: about 40 MB.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 40 * 1024 * 1024 / PAGE_SIZE;

/// The item, less the two attributes the key columns hold.
struct WithoutKeys<'a>(&'a Item);

impl serde::Serialize for WithoutKeys<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let is_key = |name: &str| name == PARTITION_KEY || name == SORT_KEY;
        let kept = self.0.keys().filter(|name| !is_key(name)).count();
        let mut map = serializer.serialize_map(Some(kept))?;
        for (name, value) in self.0.iter().filter(|(name, _)| !is_key(name)) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// The stored form of `item` (see the module's comment).
fn encode_item(item: &Item) -> Result<Vec<u8>, postcard::Error> {
    // Room for a typical record, so that encoding rarely grows the buffer.
    let mut stored = Vec::with_capacity(256);
    stored.push(FORMAT_POSTCARD);
    // Through `io::Write`, each piece is one slice copy (`to_extend` pushes byte by byte).
    postcard::to_io(&WithoutKeys(item), stored)
}

/// An item from its stored form and its key columns; a description of the damage if it is not
/// one.
pub fn decode_stored_item(pk: &str, sk: &str, stored: ValueRef<'_>) -> Result<Item, String> {
    let mut item: Item = match stored {
        ValueRef::Text(json) => return serde_json::from_slice(json).map_err(|e| e.to_string()),
        ValueRef::Blob([FORMAT_POSTCARD, rest @ ..]) => postcard::from_bytes(rest).map_err(|e| e.to_string())?,
        ValueRef::Blob(_) => return Err("the stored item has an unknown format".into()),
        _ => return Err("the stored item is neither text nor a blob".into()),
    };
    item.insert(PARTITION_KEY.into(), AttrValue::S(pk.into()));
    item.insert(SORT_KEY.into(), AttrValue::S(sk.into()));
    Ok(item)
}

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
        connection
            .execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE};"))
            .map_err(BackendError::sqlite("set the page size"))?;
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
        // Write transactions begin IMMEDIATE (see `put`): a deferred one that reads first cannot
        // wait for another process's writer and fails "database is locked". Bulk writes (an
        // ingest, a vault) check the WAL back into the file every 40 MB rather than SQLite's
        // 4 MB: a tenth less time per million rows.
        connection
            .execute_batch(&format!(
                "PRAGMA synchronous = NORMAL;
                 PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};
                 CREATE TABLE IF NOT EXISTS items (
                     tbl TEXT NOT NULL,
                     pk TEXT NOT NULL,
                     sk TEXT NOT NULL,
                     item TEXT NOT NULL,
                     expires_at INTEGER,
                     PRIMARY KEY (tbl, pk, sk)
                 ) WITHOUT ROWID;"
            ))
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
    fn decode(&self, key: &ItemKey, stored: ValueRef<'_>) -> Result<Item, BackendError> {
        decode_stored_item(&key.pk, &key.sk, stored).map_err(|reason| BackendError::Corrupt {
            location: format!("SQLite table {}", self.name),
            reason,
        })
    }

    fn encode(&self, item: &Item) -> Result<Vec<u8>, BackendError> {
        encode_item(item).map_err(|e| BackendError::InvalidItem {
            table: self.name.clone(),
            reason: e.to_string(),
        })
    }

    fn read(&self, connection: &Connection, key: &ItemKey) -> Result<Option<Item>, BackendError> {
        let mut statement = connection
            .prepare_cached("SELECT item FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3")
            .map_err(BackendError::sqlite("get"))?;
        let mut rows = statement
            .query(params![self.name, key.pk, key.sk])
            .map_err(BackendError::sqlite("get"))?;
        match rows.next().map_err(BackendError::sqlite("get"))? {
            Some(row) => {
                let stored = row.get_ref(0).map_err(BackendError::sqlite("get"))?;
                self.decode(key, stored).map(Some)
            }
            None => Ok(None),
        }
    }

    fn write(&self, connection: &Connection, key: &ItemKey, item: &Item) -> Result<(), BackendError> {
        let stored = self.encode(item)?;
        connection
            .prepare_cached(UPSERT)
            .and_then(|mut statement| statement.execute(params![self.name, key.pk, key.sk, stored, expires_at(item)]))
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
            for (pk, sk, stored, expires) in &rows {
                statement
                    .execute(params![self.name, pk, sk, stored, expires])
                    .map_err(BackendError::sqlite("put"))?;
            }
        }
        transaction.commit().map_err(BackendError::sqlite("commit"))?;
        Ok(Vec::new())
    }

    fn max_batch_put(&self) -> usize {
        SQLITE_MAX_BATCH_PUT
    }

    fn prefers_key_order(&self) -> bool {
        true
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
        let mut statement = connection
            .prepare_cached(
                "SELECT sk, item FROM items WHERE tbl = ?1 AND pk = ?2 AND sk > ?3 AND substr(sk, 1, length(?4)) = ?4
                 AND (expires_at IS NULL OR expires_at > ?5) ORDER BY sk LIMIT ?6",
            )
            .map_err(BackendError::sqlite("query"))?;
        let mut rows = statement
            .query(params![self.name, pk, after, prefix, now, (limit + 1) as i64])
            .map_err(BackendError::sqlite("query"))?;
        let mut items = Vec::with_capacity(limit);
        let mut last_sk = None;
        let mut more = false;
        while let Some(row) = rows.next().map_err(BackendError::sqlite("query"))? {
            if items.len() == limit {
                more = true;
                break;
            }
            let sk: String = row.get(0).map_err(BackendError::sqlite("query"))?;
            let key = ItemKey::new(pk, sk);
            let stored = row.get_ref(1).map_err(BackendError::sqlite("query"))?;
            items.push(self.decode(&key, stored)?);
            last_sk = Some(key.sk);
        }
        Ok(Page {
            items,
            last_sk: if more { last_sk } else { None },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn sample() -> Item {
        let mut item = ItemKey::new("records#orders", "0042").to_item();
        item.insert("name".into(), AttrValue::S("Zoë \"quoted\"".into()));
        item.insert("amount".into(), AttrValue::N("-12.50".into()));
        item.insert("ok".into(), AttrValue::Bool(true));
        item.insert("none".into(), AttrValue::Null(true));
        item.insert("sealed".into(), AttrValue::B(vec![0, 255, 1, 254]));
        item.insert(
            "data".into(),
            AttrValue::M(BTreeMap::from([(
                "tags".to_string(),
                AttrValue::L(vec![AttrValue::S("a".into()), AttrValue::N("1".into())]),
            )])),
        );
        item
    }

    #[test]
    fn the_stored_form_round_trips_without_the_key_attributes() {
        let item = sample();
        let stored = encode_item(&item).unwrap();
        assert_eq!(stored[0], FORMAT_POSTCARD);
        let json = serde_json::to_vec(&item).unwrap();
        assert!(
            stored.len() * 2 < json.len(),
            "{} vs {} bytes",
            stored.len(),
            json.len()
        );
        assert!(
            !stored.windows(4).any(|w| w == b"0042"),
            "the sort key is a column, not in the blob"
        );
        let back = decode_stored_item("records#orders", "0042", ValueRef::Blob(&stored)).unwrap();
        assert_eq!(back, item);
    }

    #[test]
    fn items_an_older_version_stored_as_json_text_still_read() {
        let item = sample();
        let json = serde_json::to_string(&item).unwrap();
        let back = decode_stored_item("records#orders", "0042", ValueRef::Text(json.as_bytes())).unwrap();
        assert_eq!(back, item);
    }

    #[test]
    fn damaged_stored_items_are_described_not_guessed() {
        for damaged in [&[][..], &[9, 1, 2][..], &[FORMAT_POSTCARD, 200][..]] {
            assert!(
                decode_stored_item("p", "s", ValueRef::Blob(damaged)).is_err(),
                "{damaged:?}"
            );
        }
        assert!(decode_stored_item("p", "s", ValueRef::Integer(3)).is_err());
        assert!(decode_stored_item("p", "s", ValueRef::Text(b"{not json")).is_err());
    }

    #[tokio::test]
    async fn a_new_file_gets_16_kib_pages_and_mixed_forms_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.db");
        let database = SqliteDatabase::open(&path).unwrap();
        let page_size: u32 = database
            .lock()
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .unwrap();
        assert_eq!(page_size, PAGE_SIZE);
        let table = database.table("records");
        table.put(sample(), PutCondition::Always).await.unwrap();
        // A row as an older version wrote it, beside the new one.
        let mut old = sample();
        old.insert(SORT_KEY.into(), AttrValue::S("0001".into()));
        database
            .lock()
            .execute(
                UPSERT,
                params![
                    "records",
                    "records#orders",
                    "0001",
                    serde_json::to_string(&old).unwrap(),
                    None::<i64>
                ],
            )
            .unwrap();
        let page = table
            .query(
                "records#orders",
                &PageRequest {
                    sk_prefix: None,
                    start_after: None,
                    limit: 10,
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items, vec![old, sample()]);
    }
}
