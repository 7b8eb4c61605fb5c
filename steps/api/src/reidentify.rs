//! `GET /datasets/{dataset}/records/{id}/reidentified`: one record with its tokenized values
//! restored from the dataset's vault, for holders of `records:reidentify` on that dataset.
//!
//! Tokens are looked up in the record's own dataset's vault only: another dataset's token
//! stays as it is. Every answer is written to the audit log (who, which dataset, which record,
//! how many values were restored), never a value.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;
use sluice_core::ItemKey;
use sluice_core::vault::{VaultReadError, VaultReader, token_spans};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::records::{allowed_on_dataset, check_id, record_json};
use crate::routes::Operation;
use crate::state::ApiState;

/// The target of the audit log's events (`RUST_LOG=sluice::audit=info` keeps them).
pub const AUDIT_LOG_TARGET: &str = "sluice::audit";

fn vault_error(err: VaultReadError) -> ApiError {
    match err {
        VaultReadError::Backend { source, .. } => ApiError::from(source),
        other => {
            // The entry is damaged or was moved: an operator's problem, never the caller's.
            tracing::error!(error = %other, "vault entry unreadable");
            ApiError::internal()
        }
    }
}

/// One record with its tokenized values restored from the dataset's vault (audited)
///
/// Tokens this dataset's vault does not hold (another dataset's, say) are left as they are.
/// Every call is written to the audit log: who, which dataset, which record, how many values;
/// never a value.
#[utoipa::path(get, path = "/datasets/{dataset}/records/{id}/reidentified", operation_id = "getReidentifiedRecord", tag = "records",
    params(("dataset" = String, Path, description = "The dataset", pattern = "^[A-Za-z0-9._-]{1,64}$"), ("id" = String, Path, description = "The record's key", max_length = 1024)),
    responses(
        (status = 200, description = "The record, re-identified", body = crate::schema::Record),
        (status = 404, description = "No such record or dataset (`not_found`)", body = crate::error::ErrorBody),
        crate::schema::CommonErrors,
    ))]
pub async fn get_reidentified_record(
    State(state): State<ApiState>,
    principal: Principal,
    Path((dataset, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    allowed_on_dataset(&principal, Operation::GetReidentifiedRecord, &dataset)?;
    check_id(&id)?;
    let item = state
        .records()
        .get(&ItemKey::new(dataset.clone(), id.clone()))
        .await?
        .ok_or_else(ApiError::not_found)?;
    let mut record = record_json(&item);
    let restored = match state.vault_cipher(&dataset).await.map_err(vault_error)? {
        Some(cipher) => restore(&VaultReader::new(state.control(), cipher), &mut record).await?,
        None => Restored::default(),
    };
    tracing::info!(
        target: AUDIT_LOG_TARGET,
        principal = %principal.subject,
        dataset = %dataset,
        record = %id,
        restored = restored.values,
        unknown_tokens = restored.unknown,
        "record re-identified"
    );
    Ok(Json(record))
}

#[derive(Default)]
struct Restored {
    /// Token occurrences replaced by their originals.
    values: usize,
    /// Token-shaped text this dataset's vault does not hold (left as it is).
    unknown: usize,
}

/// Replaces, in every string of `record` but its `id`, each token the vault holds by its
/// original (a column may be a token or hold several inside masked text).
async fn restore(vault: &VaultReader<'_>, record: &mut Value) -> Result<Restored, ApiError> {
    let mut originals: HashMap<String, Option<String>> = HashMap::new();
    let mut restored = Restored::default();
    let Some(columns) = record.as_object_mut() else {
        return Ok(restored);
    };
    for (name, value) in columns.iter_mut() {
        if name != "id" {
            restore_value(vault, value, &mut originals, &mut restored).await?;
        }
    }
    Ok(restored)
}

async fn restore_value(
    vault: &VaultReader<'_>,
    value: &mut Value,
    originals: &mut HashMap<String, Option<String>>,
    restored: &mut Restored,
) -> Result<(), ApiError> {
    // Iterative over nested lists and maps, so a deep value cannot exhaust the stack.
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            Value::String(text) => {
                let spans = token_spans(text);
                if spans.is_empty() {
                    continue;
                }
                let mut out = String::with_capacity(text.len());
                let mut copied = 0;
                for span in spans {
                    let token = &text[span.clone()];
                    if !originals.contains_key(token) {
                        let original = vault.reidentify(token).await.map_err(vault_error)?;
                        originals.insert(token.to_string(), original);
                    }
                    out.push_str(&text[copied..span.start]);
                    match originals.get(token).and_then(Option::as_deref) {
                        Some(original) => {
                            out.push_str(original);
                            restored.values += 1;
                        }
                        None => {
                            out.push_str(token);
                            restored.unknown += 1;
                        }
                    }
                    copied = span.end;
                }
                out.push_str(&text[copied..]);
                *text = out;
            }
            Value::Array(values) => pending.extend(values.iter_mut()),
            Value::Object(fields) => pending.extend(fields.values_mut()),
            _ => {}
        }
    }
    Ok(())
}
