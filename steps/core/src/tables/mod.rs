//! The tables port: DynamoDB on AWS, SQLite locally. Both Sluice tables (`records` and
//! `control`) have a string partition key `pk` and a string sort key `sk`; the control table's
//! items may carry a TTL in `expires_at` (epoch seconds), and expired items are never returned.

mod batch;
mod dynamodb;
#[cfg(feature = "local")]
mod sqlite;

use async_trait::async_trait;

use crate::BackendError;
use crate::item::{Item, ItemKey};

pub use batch::{BatchError, get_batch_fully, put_batch_fully};
pub use dynamodb::DynamoTable;
#[cfg(feature = "local")]
pub use sqlite::{SqliteDatabase, SqliteTable, decode_stored_item};

/// DynamoDB's BatchWriteItem limit.
pub const MAX_BATCH_WRITE: usize = 25;
/// DynamoDB's BatchGetItem limit.
pub const MAX_BATCH_GET: usize = 100;

/// When a put may replace what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutCondition<'a> {
    Always,
    /// Only when no item has this key (a claim: exactly one concurrent writer wins).
    IfAbsent,
    /// Only when no item has this key or the stored one expired at or before `now` (a lease).
    IfAbsentOrExpired {
        now: i64,
    },
    /// The item exists (unexpired) and its string attribute `field` is one of `values`: a
    /// compare-and-set, so that a state can only move the ways its owner allows.
    IfFieldIn {
        field: &'a str,
        values: &'a [&'a str],
    },
}

/// When a delete may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteCondition {
    Always,
    /// Only when the item exists (and has not expired at `now`): claims it exactly once.
    IfExists {
        now: i64,
    },
}

/// Which part of a partition to read.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// Only sort keys that start with this.
    pub sk_prefix: Option<String>,
    /// Resume after this sort key (exclusive).
    pub start_after: Option<String>,
    pub limit: usize,
}

/// One page of a partition, in sort-key order.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// The last sort key read when more may follow.
    pub last_sk: Option<String>,
}

/// What a batch read returned and what it could not read this time.
#[derive(Debug, Clone, Default)]
pub struct BatchGet {
    pub items: Vec<Item>,
    pub unprocessed: Vec<ItemKey>,
}

#[async_trait]
pub trait Table: Send + Sync {
    /// The table's name, for messages.
    fn name(&self) -> &str;

    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, BackendError>;

    /// Writes `item` (which must hold `pk` and `sk`); [`BackendError::ConditionFailed`] when
    /// `condition` does not hold.
    async fn put(&self, item: Item, condition: PutCondition<'_>) -> Result<(), BackendError>;

    /// Deletes the item at `key`, returning what was stored.
    async fn delete(&self, key: &ItemKey, condition: DeleteCondition) -> Result<Option<Item>, BackendError>;

    /// Writes up to [`Table::max_batch_put`] items; returns the items the backend did not
    /// process this time (DynamoDB's `UnprocessedItems`), for the caller to retry. A key that
    /// appears twice must not be sent (DynamoDB refuses the batch).
    async fn batch_put(&self, items: &[Item]) -> Result<Vec<Item>, BackendError>;

    /// The most items one [`Table::batch_put`] takes: DynamoDB's 25, more where a backend
    /// writes a larger batch in one transaction for less.
    fn max_batch_put(&self) -> usize {
        MAX_BATCH_WRITE
    }

    /// Whether a bulk load should come in key order: true where writes in random order cost
    /// many times more (the embedded backend rewrites every page a commit touched).
    fn prefers_key_order(&self) -> bool {
        false
    }

    /// Reads up to [`MAX_BATCH_GET`] distinct keys; missing items are simply absent.
    async fn batch_get(&self, keys: Vec<ItemKey>) -> Result<BatchGet, BackendError>;

    /// Reads one page of the partition `pk`.
    async fn query(&self, pk: &str, request: &PageRequest) -> Result<Page, BackendError>;
}

pub(crate) fn now_epoch_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(crate) fn key_of(table: &str, item: &Item) -> Result<ItemKey, BackendError> {
    ItemKey::of(item).ok_or_else(|| BackendError::InvalidItem {
        table: table.to_string(),
        reason: "item has no string pk and sk".into(),
    })
}
