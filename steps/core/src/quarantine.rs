//! Quarantine: where a file goes when a stage refuses it, with a machine-readable reason
//! beside it (`quarantine/<dataset>/<id>/<name>` and `<name>.reason.json`).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::BackendError;
use crate::objects::{ObjectKey, ObjectStore, PutOptions, move_object};

/// Why a file was refused. Never holds cell values: only codes, line numbers and column names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineReason {
    /// The stage that refused it (`stage`, `ingest`, `pii`).
    pub stage: String,
    /// A stable code (`invalid_utf8`, `too_large`, `not_csv`, `bad_rows`, ...).
    pub code: String,
    /// One sentence a person can act on, naming the file and the line where there is one.
    pub message: String,
    /// Where the file came from (its key before it was moved).
    pub source_key: String,
    /// Line-level problems, first ones only (see `problems_truncated`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<LineProblem>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub problems_truncated: bool,
}

/// One problem on one line of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineProblem {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for LineProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(column) => write!(f, "line {}, column {column:?}: {}", self.line, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

/// The quarantine key for a file at `raw/...` or `staged/...`: the same path under `quarantine/`.
pub fn quarantine_key(source: &ObjectKey) -> Result<ObjectKey, BackendError> {
    let rest = source
        .as_str()
        .split_once('/')
        .map(|(_, rest)| rest)
        .unwrap_or(source.as_str());
    ObjectKey::new(format!("quarantine/{rest}"))
}

/// The key of the reason document beside a quarantined file.
pub fn reason_key(quarantined: &ObjectKey) -> Result<ObjectKey, BackendError> {
    ObjectKey::new(format!("{}.reason.json", quarantined.as_str()))
}

/// Moves `source` into quarantine and writes the reason beside it. Returns the new key.
pub async fn quarantine(
    store: &dyn ObjectStore,
    source: &ObjectKey,
    reason: &QuarantineReason,
) -> Result<ObjectKey, BackendError> {
    let target = quarantine_key(source)?;
    let body = serde_json::to_vec_pretty(reason).map_err(|e| BackendError::Corrupt {
        location: target.to_string(),
        reason: e.to_string(),
    })?;
    // The reason first: a crash between the two writes leaves the file where it was, with
    // its reason already recorded, and a rerun finishes the move.
    let options = PutOptions {
        metadata: BTreeMap::new(),
        content_type: Some("application/json".into()),
    };
    store
        .put_bytes(&reason_key(&target)?, Bytes::from(body), &options)
        .await?;
    let metadata = BTreeMap::from([
        ("quarantine-stage".to_string(), reason.stage.clone()),
        ("quarantine-code".to_string(), reason.code.clone()),
    ]);
    move_object(store, source, &target, &metadata).await?;
    Ok(target)
}

/// Records why `source` is refused without moving it (a file too large to be worth copying
/// again: it stays where it is, immutable). Returns its quarantine key, which holds no copy
/// but whose reason [`read_reason`] reads.
pub async fn record_reason_in_place(
    store: &dyn ObjectStore,
    source: &ObjectKey,
    reason: &QuarantineReason,
) -> Result<ObjectKey, BackendError> {
    let target = quarantine_key(source)?;
    let key = reason_key(&target)?;
    let body = serde_json::to_vec_pretty(reason).map_err(|e| BackendError::Corrupt {
        location: key.to_string(),
        reason: e.to_string(),
    })?;
    let options = PutOptions {
        metadata: BTreeMap::from([("original-left-at".to_string(), source.to_string())]),
        content_type: Some("application/json".into()),
    };
    store.put_bytes(&key, Bytes::from(body), &options).await?;
    Ok(target)
}

/// The reason a file was quarantined, if it was.
pub async fn read_reason(
    store: &dyn ObjectStore,
    quarantined: &ObjectKey,
) -> Result<Option<QuarantineReason>, BackendError> {
    let key = reason_key(quarantined)?;
    if store.head(&key).await?.is_none() {
        return Ok(None);
    }
    let bytes = store.get_bytes(&key, 16 * 1024 * 1024).await?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| BackendError::Corrupt {
            location: key.to_string(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantine_keeps_the_path_under_a_new_prefix() {
        let staged = ObjectKey::new("staged/orders/abc/orders.csv").unwrap();
        let target = quarantine_key(&staged).unwrap();
        assert_eq!(target.as_str(), "quarantine/orders/abc/orders.csv");
        assert_eq!(
            reason_key(&target).unwrap().as_str(),
            "quarantine/orders/abc/orders.csv.reason.json"
        );
    }

    #[test]
    fn problems_read_as_sentences() {
        let problem = LineProblem {
            line: 7,
            column: Some("price".into()),
            reason: "is not a number".into(),
        };
        assert_eq!(problem.to_string(), "line 7, column \"price\": is not a number");
    }
}
