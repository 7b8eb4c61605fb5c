//! `GET /datasets/{dataset}/records/{id}/reidentified`: one record with its tokenized values
//! restored from the dataset's vault, for holders of `records:reidentify` on that dataset.
//!
//! Tokens are looked up in the record's own dataset's vault only: another dataset's token
//! stays as it is. Every answer is written to the audit log (who, which dataset, which record,
//! how many values were restored), never a value.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;
use sluice_core::vault::{VaultReadError, VaultReader, token_spans};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::records::{read_record, record_json};
use crate::routes::Operation;
use crate::state::ApiState;

/// The target of the audit log's events (`RUST_LOG=sluice::audit=info` keeps them).
pub const AUDIT_LOG_TARGET: &str = "sluice::audit";

fn vault_error(err: VaultReadError) -> ApiError {
    match err {
        VaultReadError::Backend { source, .. } => ApiError::from(source),
        VaultReadError::Busy { .. } => ApiError::unavailable("the data store is busy; retry shortly"),
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
    params(crate::schema::RecordPath),
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
    let item = read_record(&state, &principal, Operation::GetReidentifiedRecord, &dataset, &id).await?;
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
/// original (a column may be a token or hold several inside masked text). The distinct tokens
/// are read from the vault together, in batches.
async fn restore(vault: &VaultReader<'_>, record: &mut Value) -> Result<Restored, ApiError> {
    let mut restored = Restored::default();
    let Some(columns) = record.as_object_mut() else {
        return Ok(restored);
    };
    // Iterative over nested lists and maps, so a deep value cannot exhaust the stack.
    let mut strings: Vec<&mut String> = Vec::new();
    let mut pending: Vec<&mut Value> = columns
        .iter_mut()
        .filter(|(name, _)| name.as_str() != "id")
        .map(|(_, value)| value)
        .collect();
    while let Some(value) = pending.pop() {
        match value {
            Value::String(text) => strings.push(text),
            Value::Array(values) => pending.extend(values.iter_mut()),
            Value::Object(fields) => pending.extend(fields.values_mut()),
            _ => {}
        }
    }
    let found: Vec<(usize, Vec<std::ops::Range<usize>>)> = strings
        .iter()
        .enumerate()
        .map(|(index, text)| (index, token_spans(text)))
        .filter(|(_, spans)| !spans.is_empty())
        .collect();
    let mut tokens: Vec<&str> = Vec::new();
    for (index, spans) in &found {
        tokens.extend(spans.iter().map(|span| &strings[*index][span.clone()]));
    }
    let originals = vault.reidentify_all(tokens).await.map_err(vault_error)?;
    for (index, spans) in found {
        let text = &mut strings[index];
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for span in spans {
            let token = &text[span.clone()];
            out.push_str(&text[copied..span.start]);
            match originals.get(token) {
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
        **text = out;
    }
    Ok(restored)
}
