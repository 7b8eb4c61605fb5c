//! Reading records: one by id, up to 100 by id (BatchGetItem, `UnprocessedKeys` retried with
//! backoff), or a page of a dataset. A record is `{"id": <sort key>, ...columns}`.

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde::Deserialize;
use serde_json::{Map, Value};
use sluice_core::dataset::DatasetName;
use sluice_core::item::{DATA_ATTRIBUTE, EXPIRES_AT, PARTITION_KEY, SORT_KEY};
use sluice_core::retry::Backoff;
use sluice_core::tables::{BatchError, MAX_BATCH_GET, get_batch_fully};
use sluice_core::{AttrValue, Item, ItemKey, PageRequest};

use crate::auth::Principal;
use crate::auth::credentials::query_parameter;
use crate::error::ApiError;
use crate::routes::Operation;
use crate::state::ApiState;

const MAX_ID_BYTES: usize = 1024;

/// `{"id": sk, ...data}`; items written without a `data` map show their other attributes.
pub fn record_json(item: &Item) -> Value {
    let mut record = Map::new();
    if let Some(AttrValue::S(id)) = item.get(SORT_KEY) {
        record.insert("id".into(), Value::String(id.clone()));
    }
    match item.get(DATA_ATTRIBUTE) {
        Some(AttrValue::M(columns)) => {
            for (name, value) in columns {
                record.entry(name.clone()).or_insert_with(|| value.to_json());
            }
        }
        _ => {
            for (name, value) in item {
                if ![PARTITION_KEY, SORT_KEY, EXPIRES_AT].contains(&name.as_str()) {
                    record.entry(name.clone()).or_insert_with(|| value.to_json());
                }
            }
        }
    }
    Value::Object(record)
}

/// Checks the dataset in the path and the caller's right to `operation` on it (404 either way).
fn allowed_on_dataset(principal: &Principal, operation: Operation, dataset: &str) -> Result<(), ApiError> {
    if !DatasetName::is_valid(dataset) {
        return Err(ApiError::not_found());
    }
    match operation.scope() {
        Some(scope) => principal.require(scope, Some(dataset)),
        None => Ok(()),
    }
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(ApiError::invalid_request(format!(
            "a record id must be 1 to {MAX_ID_BYTES} bytes"
        )));
    }
    Ok(())
}

/// One record by id
#[utoipa::path(get, path = "/datasets/{dataset}/records/{id}", operation_id = "getRecord", tag = "records",
    params(crate::schema::RecordPath),
    responses(
        (status = 200, description = "The record", body = crate::schema::Record),
        (status = 404, description = "No such record or dataset (`not_found`)", body = crate::error::ErrorBody),
        crate::schema::CommonErrors,
    ))]
pub async fn get_record(
    State(state): State<ApiState>,
    principal: Principal,
    Path((dataset, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let item = read_record(&state, &principal, Operation::GetRecord, &dataset, &id).await?;
    Ok(Json(record_json(&item)))
}

/// The record `id` of `dataset`, once the caller may do `operation` there (404 otherwise,
/// and for a missing record).
pub(crate) async fn read_record(
    state: &ApiState,
    principal: &Principal,
    operation: Operation,
    dataset: &str,
    id: &str,
) -> Result<Item, ApiError> {
    allowed_on_dataset(principal, operation, dataset)?;
    check_id(id)?;
    state
        .records()
        .get(&ItemKey::new(dataset, id))
        .await?
        .ok_or_else(ApiError::not_found)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchGetRequest {
    /// The ids to read, 1 to 100 (repeats answered once).
    #[schema(min_items = 1, max_items = 100)]
    ids: Vec<String>,
}

/// The records found, in request order, and the ids not found.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct BatchGetAnswer {
    #[schema(value_type = Vec<crate::schema::Record>)]
    records: Vec<Value>,
    missing: Vec<String>,
}

/// One page of records in id order.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RecordPage {
    #[schema(value_type = Vec<crate::schema::Record>)]
    records: Vec<Value>,
    /// Pass unchanged as `cursor` for the next page; null after the last one.
    next_cursor: Option<String>,
}

/// Up to 100 records by id
#[utoipa::path(post, path = "/datasets/{dataset}/records:batchGet", operation_id = "batchGetRecords", tag = "records",
    params(crate::schema::DatasetPath),
    request_body = BatchGetRequest,
    responses(
        (status = 200, description = "Found records in request order, and the ids not found", body = BatchGetAnswer),
        (status = 400, description = "Malformed body or too many ids (`invalid_request`)", body = crate::error::ErrorBody),
        (status = 404, description = "No such dataset (`not_found`)", body = crate::error::ErrorBody),
        crate::schema::CommonErrors,
    ))]
pub async fn batch_get(
    State(state): State<ApiState>,
    principal: Principal,
    Path(dataset): Path<String>,
    body: Bytes,
) -> Result<Json<BatchGetAnswer>, ApiError> {
    allowed_on_dataset(&principal, Operation::BatchGetRecords, &dataset)?;
    let request: BatchGetRequest = serde_json::from_slice(&body).map_err(|err| {
        ApiError::invalid_request(format!(
            "the body must be {{\"ids\": [\"id\", ...]}}: {} at line {} column {}",
            describe_json_error(&err),
            err.line(),
            err.column()
        ))
    })?;
    if request.ids.is_empty() || request.ids.len() > MAX_BATCH_GET {
        return Err(ApiError::invalid_request(format!(
            "ids must hold 1 to {MAX_BATCH_GET} ids, got {}",
            request.ids.len()
        )));
    }
    for (index, id) in request.ids.iter().enumerate() {
        check_id(id)
            .map_err(|_| ApiError::invalid_request(format!("ids[{index}] must be 1 to {MAX_ID_BYTES} bytes")))?;
    }
    let mut seen = HashSet::new();
    let wanted: Vec<ItemKey> = request
        .ids
        .iter()
        .filter(|id| seen.insert(id.as_str()))
        .map(|id| ItemKey::new(dataset.clone(), id.clone()))
        .collect();

    let backoff = Backoff {
        max_attempts: state.settings().batch_get_retries,
        ..Backoff::default()
    };
    let items = get_batch_fully(state.records(), wanted, backoff)
        .await
        .map_err(|err| match err {
            BatchError::Backend(err) => ApiError::from(err),
            BatchError::Unprocessed { left, .. } => {
                tracing::warn!(unprocessed = left, "BatchGetItem kept keys unprocessed");
                ApiError::unavailable("the data store is busy; retry shortly")
            }
        })?;
    let mut found: HashMap<String, Item> = HashMap::with_capacity(items.len());
    for item in items {
        if let Some(AttrValue::S(id)) = item.get(SORT_KEY) {
            found.insert(id.clone(), item);
        }
    }

    let mut records = Vec::with_capacity(found.len());
    let mut missing = Vec::new();
    let mut answered = HashSet::new();
    for id in &request.ids {
        if !answered.insert(id.as_str()) {
            continue;
        }
        match found.get(id) {
            Some(item) => records.push(record_json(item)),
            None => missing.push(id.clone()),
        }
    }
    Ok(Json(BatchGetAnswer { records, missing }))
}

fn describe_json_error(err: &serde_json::Error) -> &'static str {
    match err.classify() {
        serde_json::error::Category::Io => "unreadable body",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "wrong shape",
        serde_json::error::Category::Eof => "truncated JSON",
    }
}

/// A page of records in id order
#[utoipa::path(get, path = "/datasets/{dataset}/records", operation_id = "listRecords", tag = "records",
    params(
        crate::schema::DatasetPath,
        ("limit" = Option<u32>, Query, description = "Records per page: 1 to `api.max_page_size` (1000 unless configured); `api.default_page_size` when absent", minimum = 1),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page, unchanged"),
    ),
    responses(
        (status = 200, description = "One page", body = RecordPage),
        (status = 400, description = "Bad limit (`invalid_request`) or a cursor this API did not issue for this dataset (`invalid_cursor`)", body = crate::error::ErrorBody),
        (status = 404, description = "No such dataset (`not_found`)", body = crate::error::ErrorBody),
        crate::schema::CommonErrors,
    ))]
pub async fn list_records(
    State(state): State<ApiState>,
    principal: Principal,
    Path(dataset): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<RecordPage>, ApiError> {
    allowed_on_dataset(&principal, Operation::ListRecords, &dataset)?;
    let query = query.unwrap_or_default();
    let settings = state.settings();
    let limit = match query_parameter(&query, "limit") {
        None => settings.default_page_size,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=settings.max_page_size).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_request(format!(
                    "limit must be a whole number from 1 to {}",
                    settings.max_page_size
                ))
            })?,
    };
    let start_after = match query_parameter(&query, "cursor") {
        None => None,
        Some(cursor) => Some(
            state
                .cursors()
                .open(&dataset, &cursor)
                .ok_or_else(ApiError::invalid_cursor)?,
        ),
    };
    let page = state
        .records()
        .query(
            &dataset,
            &PageRequest {
                sk_prefix: None,
                start_after,
                limit,
            },
        )
        .await?;
    let records: Vec<Value> = page.items.iter().map(record_json).collect();
    let next_cursor = page.last_sk.map(|last| state.cursors().issue(&dataset, &last));
    Ok(Json(RecordPage { records, next_cursor }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn records_render_as_id_plus_their_columns() {
        let mut item = ItemKey::new("orders", "0042").to_item();
        let mut data = std::collections::BTreeMap::new();
        data.insert("amount".to_string(), AttrValue::N("12.5".into()));
        data.insert("id".to_string(), AttrValue::S("column named id".into()));
        item.insert("data".into(), AttrValue::M(data));
        assert_eq!(record_json(&item), json!({"id": "0042", "amount": 12.5}));
    }
}
