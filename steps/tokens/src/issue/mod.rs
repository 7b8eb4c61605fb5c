//! The token-issue step. For every consumer configured for a dataset it makes sure exactly one
//! current, delivered key exists (plus, during a rotation, the previous key for the overlap):
//!
//! - no key yet, the current key expires within `renew_before_days`, it was revoked, it never
//!   reached the consumer's secret, or the input asks for a rotation: a new key is issued and
//!   written once into the consumer's secret; the previous key stays valid for `overlap_hours`
//!   and any older key is revoked at once;
//! - scopes changed in the configuration: the current key's scopes are updated in place;
//! - otherwise nothing happens, so reruns add no keys.
//!
//! An interrupted run leaves a `pending` hash on the consumer; the next run either finishes the
//! rotation (the secret holds the pending key) or revokes the orphan. The plain key never
//! appears in the output, logs or errors.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sluice_core::{AttrValue, Backends, ItemKey, PutCondition, SecretStore, SecretValue, Table};

use crate::api_key::{self, ApiKey, KeyHash};
use crate::error::TokenError;
use crate::stored::{ApiKeyStore, StoredApiKey};

mod lock;
mod settings;

use lock::ConsumerLock;
pub use settings::{ConsumerSettings, TokenSettings};

/// What the state machine passes in. Other fields of the state are ignored.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct TokenIssueInput {
    /// The dataset whose consumers get keys; every configured dataset when absent.
    pub dataset: Option<String>,
    /// Rotate every key now, even fresh ones (e.g. after a suspected leak).
    pub rotate: bool,
}

/// What the step returns: key ids and actions, never a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenIssueOutput {
    pub consumers: Vec<IssuedConsumer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuedConsumer {
    pub dataset: String,
    pub consumer: String,
    /// A public handle of the current key (a prefix of its hash).
    pub key_id: String,
    pub action: IssueAction,
    pub valid_until: DateTime<Utc>,
    /// Where the consumer finds the key (a name in the secrets backend).
    pub secret_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueAction {
    Issued,
    Rotated,
    ScopesUpdated,
    Unchanged,
}

/// What the step needs from the backends.
#[derive(Clone)]
pub struct TokenIssueDeps {
    pub control: Arc<dyn Table>,
    pub secrets: Arc<dyn SecretStore>,
    pub settings: TokenSettings,
}

impl TokenIssueDeps {
    pub fn new(backends: &Backends, settings: TokenSettings) -> TokenIssueDeps {
        TokenIssueDeps {
            control: backends.control.clone(),
            secrets: backends.secrets.clone(),
            settings,
        }
    }
}

/// The secret a consumer's key is delivered into.
pub fn secret_name(dataset: &str, consumer: &str) -> String {
    format!("consumers/{dataset}/{consumer}/api-key")
}

/// The step: issue or rotate keys for the consumers of `input.dataset` (or of every dataset).
pub async fn run(input: TokenIssueInput, deps: &TokenIssueDeps) -> Result<TokenIssueOutput, TokenError> {
    run_at(input, deps, Utc::now()).await
}

/// [`run`] with an explicit clock, so rotation and overlap are testable.
pub async fn run_at(
    input: TokenIssueInput,
    deps: &TokenIssueDeps,
    now: DateTime<Utc>,
) -> Result<TokenIssueOutput, TokenError> {
    // The table keeps whole seconds; so does everything the step compares or returns.
    let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    let selected: Vec<(&String, &BTreeMap<String, ConsumerSettings>)> = match &input.dataset {
        Some(dataset) => {
            let consumers =
                deps.settings
                    .consumers
                    .get_key_value(dataset)
                    .ok_or_else(|| TokenError::UnknownDataset {
                        dataset: dataset.clone(),
                    })?;
            vec![consumers]
        }
        None => deps.settings.consumers.iter().collect(),
    };
    let mut issued = Vec::new();
    for (dataset, consumers) in selected {
        for (name, settings) in consumers {
            let consumer = ConsumerRef { dataset, name };
            let _lock = ConsumerLock::acquire(deps.control.clone(), &consumer, now).await?;
            let outcome = issue_for(&consumer, settings, input.rotate, deps, now).await;
            _lock.release().await;
            let outcome = outcome?;
            tracing::info!(
                dataset = %dataset,
                consumer = %name,
                key_id = %outcome.key_id,
                action = ?outcome.action,
                "consumer key checked"
            );
            issued.push(outcome);
        }
    }
    Ok(TokenIssueOutput { consumers: issued })
}

struct ConsumerRef<'a> {
    dataset: &'a str,
    name: &'a str,
}

impl ConsumerRef<'_> {
    fn partition(&self) -> String {
        format!("consumer#{}#{}", self.dataset, self.name)
    }
}

/// Which keys a consumer has: the current one, the previous one (in its overlap), and one being
/// issued when a run stopped half-way.
#[derive(Debug, Default)]
struct ConsumerKeys {
    current: Option<KeyHash>,
    previous: Option<KeyHash>,
    pending: Option<KeyHash>,
}

const STATE_SK: &str = "state";

impl ConsumerKeys {
    async fn load(control: &dyn Table, consumer: &ConsumerRef<'_>) -> Result<ConsumerKeys, TokenError> {
        let key = ItemKey::new(consumer.partition(), STATE_SK);
        let Some(item) = control.get(&key).await? else {
            return Ok(ConsumerKeys::default());
        };
        let hash = |name: &str| -> Result<Option<KeyHash>, TokenError> {
            match item.get(name) {
                None | Some(AttrValue::Null(_)) => Ok(None),
                Some(AttrValue::S(text)) => KeyHash::from_hex(text).map(Some).ok_or_else(|| TokenError::Corrupt {
                    location: format!("{} {name}", consumer.partition()),
                    reason: "not a SHA-256 in hex".into(),
                }),
                Some(_) => Err(TokenError::Corrupt {
                    location: format!("{} {name}", consumer.partition()),
                    reason: "not a string".into(),
                }),
            }
        };
        Ok(ConsumerKeys {
            current: hash("current")?,
            previous: hash("previous")?,
            pending: hash("pending")?,
        })
    }

    async fn save(
        &self,
        control: &dyn Table,
        consumer: &ConsumerRef<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), TokenError> {
        let mut item = ItemKey::new(consumer.partition(), STATE_SK).to_item();
        for (name, hash) in [
            ("current", self.current),
            ("previous", self.previous),
            ("pending", self.pending),
        ] {
            if let Some(hash) = hash {
                item.insert(name.into(), AttrValue::S(hash.to_hex()));
            }
        }
        item.insert("updated_at".into(), AttrValue::N(now.timestamp().to_string()));
        control.put(item, PutCondition::Always).await?;
        Ok(())
    }
}

/// The JSON delivered into the consumer's secret.
#[derive(Serialize, Deserialize)]
struct DeliveredKey {
    api_key: String,
    key_id: String,
    dataset: String,
    consumer: String,
    scopes: Vec<String>,
    valid_until: DateTime<Utc>,
}

async fn delivered_hash(secrets: &dyn SecretStore, name: &str) -> Result<Option<KeyHash>, TokenError> {
    let Some(value) = secrets.get(name).await? else {
        return Ok(None);
    };
    // A secret edited by hand into something else counts as "not delivered": it is replaced.
    Ok(serde_json::from_str::<DeliveredKey>(value.expose())
        .ok()
        .and_then(|delivered| api_key::parse(&delivered.api_key).ok()))
}

fn same_hash(a: Option<KeyHash>, b: Option<KeyHash>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a.ct_eq(&b))
}

async fn issue_for(
    consumer: &ConsumerRef<'_>,
    settings: &ConsumerSettings,
    force_rotation: bool,
    deps: &TokenIssueDeps,
    now: DateTime<Utc>,
) -> Result<IssuedConsumer, TokenError> {
    let control = deps.control.as_ref();
    let keys_store = ApiKeyStore::new(deps.control.clone());
    let secret = secret_name(consumer.dataset, consumer.name);
    let mut keys = ConsumerKeys::load(control, consumer).await?;
    let in_secret = delivered_hash(deps.secrets.as_ref(), &secret).await?;
    let overlap = Duration::hours(i64::from(deps.settings.overlap_hours));

    if let Some(pending) = keys.pending.take() {
        if same_hash(Some(pending), in_secret) {
            // The last run delivered the key but stopped before recording it: finish that rotation.
            promote(&keys_store, &mut keys, pending, now, overlap).await?;
        } else if let Some(mut orphan) = keys_store.find(&pending).await? {
            // Nobody ever received this key: it must not stay valid.
            orphan.revoked = true;
            keys_store.update(&orphan).await?;
        }
        keys.save(control, consumer, now).await?;
    }

    let current = match keys.current {
        Some(hash) => keys_store.find(&hash).await?,
        None => None,
    };
    let renew_before = Duration::days(i64::from(deps.settings.renew_before_days));
    let mut key = match current {
        None => {
            let fresh = issue_new(consumer, settings, deps, &keys_store, &mut keys, &secret, now, overlap).await?;
            return Ok(outcome(consumer, &fresh, IssueAction::Issued, secret));
        }
        Some(key) => key,
    };
    let needs_rotation = force_rotation
        || !key.is_usable(now)
        || !same_hash(Some(key.hash), in_secret)
        || key.valid_until - now <= renew_before;
    if needs_rotation {
        let fresh = issue_new(consumer, settings, deps, &keys_store, &mut keys, &secret, now, overlap).await?;
        return Ok(outcome(consumer, &fresh, IssueAction::Rotated, secret));
    }
    if key.scopes != settings.scopes {
        key.scopes = settings.scopes.clone();
        keys_store.update(&key).await?;
        return Ok(outcome(consumer, &key, IssueAction::ScopesUpdated, secret));
    }
    Ok(outcome(consumer, &key, IssueAction::Unchanged, secret))
}

fn outcome(consumer: &ConsumerRef<'_>, key: &StoredApiKey, action: IssueAction, secret_name: String) -> IssuedConsumer {
    IssuedConsumer {
        dataset: consumer.dataset.to_string(),
        consumer: consumer.name.to_string(),
        key_id: key.key_id(),
        action,
        valid_until: key.valid_until,
        secret_name,
    }
}

#[allow(clippy::too_many_arguments)]
async fn issue_new(
    consumer: &ConsumerRef<'_>,
    settings: &ConsumerSettings,
    deps: &TokenIssueDeps,
    keys_store: &ApiKeyStore,
    keys: &mut ConsumerKeys,
    secret: &str,
    now: DateTime<Utc>,
    overlap: Duration,
) -> Result<StoredApiKey, TokenError> {
    let key = ApiKey::generate();
    let stored = StoredApiKey {
        hash: key.hash(),
        dataset: consumer.dataset.to_string(),
        consumer: consumer.name.to_string(),
        scopes: settings.scopes.clone(),
        created_at: now,
        valid_until: now + Duration::days(i64::from(settings.lifetime_days)),
        revoked: false,
    };
    // Record the intent first, so a crash anywhere below is finished or cleaned up next run.
    keys.pending = Some(stored.hash);
    keys.save(deps.control.as_ref(), consumer, now).await?;
    keys_store.create(&stored).await?;
    let delivered = DeliveredKey {
        api_key: key.expose().to_string(),
        key_id: stored.key_id(),
        dataset: stored.dataset.clone(),
        consumer: stored.consumer.clone(),
        scopes: stored.scopes.clone(),
        valid_until: stored.valid_until,
    };
    let json = serde_json::to_string(&delivered).map_err(|err| TokenError::Corrupt {
        location: secret.to_string(),
        reason: format!(
            "cannot encode the delivered key: {}",
            sluice_core::error::json_error_kind(&err)
        ),
    })?;
    deps.secrets.put(secret, &SecretValue::new(json)).await?;
    keys.pending = None;
    promote(keys_store, keys, stored.hash, now, overlap).await?;
    keys.save(deps.control.as_ref(), consumer, now).await?;
    Ok(stored)
}

/// Makes `fresh` current: the old current key keeps working for the overlap only if the
/// consumer ever had it; anything older is revoked now.
async fn promote(
    keys_store: &ApiKeyStore,
    keys: &mut ConsumerKeys,
    fresh: KeyHash,
    now: DateTime<Utc>,
    overlap: Duration,
) -> Result<(), TokenError> {
    if same_hash(keys.current, Some(fresh)) {
        return Ok(());
    }
    if let Some(older) = keys.previous.take()
        && let Some(mut older) = keys_store.find(&older).await?
        && !older.revoked
    {
        older.revoked = true;
        keys_store.update(&older).await?;
    }
    if let Some(old_hash) = keys.current.take()
        && let Some(mut old) = keys_store.find(&old_hash).await?
        && old.is_usable(now)
    {
        old.valid_until = old.valid_until.min(now + overlap);
        keys_store.update(&old).await?;
        keys.previous = Some(old_hash);
    }
    keys.current = Some(fresh);
    Ok(())
}
