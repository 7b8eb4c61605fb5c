//! API keys as the control table holds them: only the SHA-256, keyed `apikey#<sha256 hex>`,
//! with the consumer, scopes, validity and revocation. Last use lives in a sibling item so that
//! recording a use never races with a rotation rewriting the key item.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sluice_core::item::EXPIRES_AT;
use sluice_core::{AttrValue, BackendError, Item, ItemKey, PutCondition, Table};

use crate::api_key::KeyHash;

const KEY_SK: &str = "key";
const LAST_USED_SK: &str = "last-used";
/// How long key records stay in the table after they stop being valid (for audits).
const RETENTION_SECS: i64 = 30 * 24 * 3600;

/// One issued key, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredApiKey {
    pub hash: KeyHash,
    pub dataset: String,
    pub consumer: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub revoked: bool,
}

impl StoredApiKey {
    pub fn key_id(&self) -> String {
        self.hash.key_id()
    }

    /// Whether the key authenticates at `now`.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        !self.revoked && now < self.valid_until
    }

    fn partition(hash: &KeyHash) -> String {
        format!("apikey#{}", hash.to_hex())
    }

    fn to_item(&self) -> Item {
        let mut item = ItemKey::new(Self::partition(&self.hash), KEY_SK).to_item();
        item.insert("dataset".into(), AttrValue::S(self.dataset.clone()));
        item.insert("consumer".into(), AttrValue::S(self.consumer.clone()));
        item.insert(
            "scopes".into(),
            AttrValue::L(self.scopes.iter().cloned().map(AttrValue::S).collect()),
        );
        item.insert("created_at".into(), epoch(self.created_at));
        item.insert("valid_until".into(), epoch(self.valid_until));
        item.insert("revoked".into(), AttrValue::Bool(self.revoked));
        item.insert(
            EXPIRES_AT.into(),
            AttrValue::N((self.valid_until.timestamp() + RETENTION_SECS).to_string()),
        );
        item
    }

    fn from_item(hash: KeyHash, item: &Item) -> Result<StoredApiKey, BackendError> {
        let corrupt = |reason: &str| BackendError::Corrupt {
            location: format!("control item {}", Self::partition(&hash)),
            reason: reason.to_string(),
        };
        let text = |name: &str| {
            item.get(name)
                .and_then(AttrValue::as_str)
                .map(str::to_string)
                .ok_or_else(|| corrupt(&format!("{name} is missing or not a string")))
        };
        let time = |name: &str| {
            item.get(name)
                .and_then(AttrValue::as_i64)
                .and_then(|secs| DateTime::from_timestamp(secs, 0))
                .ok_or_else(|| corrupt(&format!("{name} is missing or not epoch seconds")))
        };
        let scopes = match item.get("scopes") {
            Some(AttrValue::L(values)) => values
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| corrupt("scopes holds a non-string"))?,
            _ => return Err(corrupt("scopes is missing or not a list")),
        };
        Ok(StoredApiKey {
            hash,
            dataset: text("dataset")?,
            consumer: text("consumer")?,
            scopes,
            created_at: time("created_at")?,
            valid_until: time("valid_until")?,
            revoked: matches!(item.get("revoked"), Some(AttrValue::Bool(true))),
        })
    }
}

fn epoch(at: DateTime<Utc>) -> AttrValue {
    AttrValue::N(at.timestamp().to_string())
}

/// Key records in the control table.
#[derive(Clone)]
pub struct ApiKeyStore {
    control: Arc<dyn Table>,
}

impl ApiKeyStore {
    pub fn new(control: Arc<dyn Table>) -> ApiKeyStore {
        ApiKeyStore { control }
    }

    /// The key whose SHA-256 is `hash`. The stored hash is compared to the presented one in
    /// constant time as well, so a look-up never short-circuits on partial matches.
    pub async fn find(&self, hash: &KeyHash) -> Result<Option<StoredApiKey>, BackendError> {
        let key = ItemKey::new(StoredApiKey::partition(hash), KEY_SK);
        let Some(item) = self.control.get(&key).await? else {
            return Ok(None);
        };
        let stored_hash = item
            .get("pk")
            .and_then(AttrValue::as_str)
            .and_then(|pk| pk.strip_prefix("apikey#"))
            .and_then(KeyHash::from_hex);
        match stored_hash {
            Some(stored) if stored.ct_eq(hash) => StoredApiKey::from_item(*hash, &item).map(Some),
            _ => Ok(None),
        }
    }

    /// Creates a key record; fails if one with this hash exists (never overwrite a key).
    pub async fn create(&self, key: &StoredApiKey) -> Result<(), BackendError> {
        self.control.put(key.to_item(), PutCondition::IfAbsent).await
    }

    /// Rewrites a key record (scopes, validity, revocation).
    pub async fn update(&self, key: &StoredApiKey) -> Result<(), BackendError> {
        self.control.put(key.to_item(), PutCondition::Always).await
    }

    /// Records that the key was used at `at` (callers throttle how often).
    pub async fn record_use(&self, key: &StoredApiKey, at: DateTime<Utc>) -> Result<(), BackendError> {
        let mut item = ItemKey::new(StoredApiKey::partition(&key.hash), LAST_USED_SK).to_item();
        item.insert("at".into(), epoch(at));
        item.insert(
            EXPIRES_AT.into(),
            AttrValue::N((key.valid_until.timestamp() + RETENTION_SECS).to_string()),
        );
        self.control.put(item, PutCondition::Always).await
    }

    /// When the key was last used, if ever recorded.
    pub async fn last_used(&self, hash: &KeyHash) -> Result<Option<DateTime<Utc>>, BackendError> {
        let key = ItemKey::new(StoredApiKey::partition(hash), LAST_USED_SK);
        Ok(self
            .control
            .get(&key)
            .await?
            .and_then(|item| item.get("at").and_then(AttrValue::as_i64))
            .and_then(|secs| DateTime::from_timestamp(secs, 0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_key::ApiKey;
    use sluice_core::tables::SqliteDatabase;

    fn sample(hash: KeyHash) -> StoredApiKey {
        StoredApiKey {
            hash,
            dataset: "orders".into(),
            consumer: "analytics".into(),
            scopes: vec!["records:read".into()],
            created_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            valid_until: DateTime::from_timestamp(Utc::now().timestamp() + 86_400, 0).unwrap(),
            revoked: false,
        }
    }

    #[tokio::test]
    async fn stored_keys_round_trip_and_never_hold_the_plain_key() {
        let table: Arc<dyn Table> = Arc::new(SqliteDatabase::open_in_memory().unwrap().table("control"));
        let store = ApiKeyStore::new(table.clone());
        let key = ApiKey::generate();
        let stored = sample(key.hash());
        store.create(&stored).await.unwrap();
        assert_eq!(store.find(&key.hash()).await.unwrap(), Some(stored.clone()));
        let page = table
            .query(&format!("apikey#{}", key.hash().to_hex()), &Default::default())
            .await
            .unwrap();
        let everything = serde_json::to_string(&page.items).unwrap();
        assert!(!everything.contains(key.expose()));
        assert!(
            store.create(&stored).await.is_err(),
            "a key record is never overwritten by create"
        );
    }

    #[tokio::test]
    async fn corrupt_records_are_reported_not_trusted() {
        let table: Arc<dyn Table> = Arc::new(SqliteDatabase::open_in_memory().unwrap().table("control"));
        let hash = ApiKey::generate().hash();
        let mut item = ItemKey::new(StoredApiKey::partition(&hash), KEY_SK).to_item();
        item.insert("dataset".into(), AttrValue::S("orders".into()));
        table.put(item, PutCondition::Always).await.unwrap();
        let err = ApiKeyStore::new(table).find(&hash).await.unwrap_err();
        assert!(err.to_string().contains("is missing"), "{err}");
    }
}
