//! The DynamoDB backend.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes, PutRequest,
    ReturnValue, ScalarAttributeType, TimeToLiveSpecification, WriteRequest,
};

use super::{
    BatchGet, DeleteCondition, MAX_BATCH_GET, MAX_BATCH_WRITE, Page, PageRequest, PutCondition, Table, key_of,
    now_epoch_seconds,
};
use crate::BackendError;
use crate::aws::sdk_error;
use crate::item::{AttrValue, EXPIRES_AT, Item, ItemKey, PARTITION_KEY, SORT_KEY, is_expired};

const SERVICE: &str = "DynamoDB";

pub struct DynamoTable {
    client: Client,
    name: String,
}

impl DynamoTable {
    pub fn new(client: Client, name: &str) -> DynamoTable {
        DynamoTable {
            client,
            name: name.to_string(),
        }
    }

    /// Creates the table (pay per request, `pk`/`sk` strings, TTL on `expires_at`) if missing.
    pub async fn create_if_missing(&self) -> Result<(), BackendError> {
        if self.client.describe_table().table_name(&self.name).send().await.is_ok() {
            return Ok(());
        }
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, key_type| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
        };
        let built = (|| {
            Ok::<_, aws_sdk_dynamodb::error::BuildError>((
                vec![attribute(PARTITION_KEY)?, attribute(SORT_KEY)?],
                vec![key(PARTITION_KEY, KeyType::Hash)?, key(SORT_KEY, KeyType::Range)?],
            ))
        })();
        let (attributes, schema) = built.map_err(|e| BackendError::Aws {
            service: SERVICE,
            operation: "CreateTable",
            message: e.to_string(),
        })?;
        match self
            .client
            .create_table()
            .table_name(&self.name)
            .set_attribute_definitions(Some(attributes))
            .set_key_schema(Some(schema))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
        {
            Ok(_) => {}
            Err(err) if matches!(err.as_service_error(), Some(e) if e.is_resource_in_use_exception()) => return Ok(()),
            Err(err) => return Err(sdk_error(SERVICE, "CreateTable", err)),
        }
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(EXPIRES_AT)
            .build()
            .map_err(|e| BackendError::Aws {
                service: SERVICE,
                operation: "UpdateTimeToLive",
                message: e.to_string(),
            })?;
        self.client
            .update_time_to_live()
            .table_name(&self.name)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "UpdateTimeToLive", e))?;
        Ok(())
    }

    fn condition_failed(&self, condition: &'static str) -> BackendError {
        BackendError::ConditionFailed {
            table: self.name.clone(),
            condition,
        }
    }

    fn decode_item(&self, item: &HashMap<String, AttributeValue>) -> Result<Item, BackendError> {
        item.iter()
            .map(|(name, value)| from_attribute(value).map(|v| (name.clone(), v)))
            .collect::<Option<Item>>()
            .ok_or_else(|| BackendError::Corrupt {
                location: format!("DynamoDB table {}", self.name),
                reason: "item holds an attribute type Sluice does not store (sets)".into(),
            })
    }
}

fn key_map(key: &ItemKey) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PARTITION_KEY.to_string(), AttributeValue::S(key.pk.clone())),
        (SORT_KEY.to_string(), AttributeValue::S(key.sk.clone())),
    ])
}

fn to_wire(item: &Item) -> HashMap<String, AttributeValue> {
    item.iter()
        .map(|(name, value)| (name.clone(), to_attribute(value)))
        .collect()
}

pub(crate) fn to_attribute(value: &AttrValue) -> AttributeValue {
    match value {
        AttrValue::S(s) => AttributeValue::S(s.clone()),
        AttrValue::N(n) => AttributeValue::N(n.clone()),
        AttrValue::Bool(b) => AttributeValue::Bool(*b),
        AttrValue::Null(_) => AttributeValue::Null(true),
        AttrValue::M(m) => AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), to_attribute(v))).collect()),
        AttrValue::L(l) => AttributeValue::L(l.iter().map(to_attribute).collect()),
        AttrValue::B(b) => AttributeValue::B(Blob::new(b.clone())),
    }
}

pub(crate) fn from_attribute(value: &AttributeValue) -> Option<AttrValue> {
    Some(match value {
        AttributeValue::S(s) => AttrValue::S(s.clone()),
        AttributeValue::N(n) => AttrValue::N(n.clone()),
        AttributeValue::Bool(b) => AttrValue::Bool(*b),
        AttributeValue::Null(_) => AttrValue::Null(true),
        AttributeValue::M(m) => AttrValue::M(
            m.iter()
                .map(|(k, v)| from_attribute(v).map(|v| (k.clone(), v)))
                .collect::<Option<_>>()?,
        ),
        AttributeValue::L(l) => AttrValue::L(l.iter().map(from_attribute).collect::<Option<_>>()?),
        AttributeValue::B(b) => AttrValue::B(b.as_ref().to_vec()),
        _ => return None,
    })
}

#[async_trait]
impl Table for DynamoTable {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, BackendError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key_map(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "GetItem", e))?;
        let now = now_epoch_seconds();
        Ok(output
            .item()
            .map(|item| self.decode_item(item))
            .transpose()?
            .filter(|item| !is_expired(item, now)))
    }

    async fn put(&self, item: Item, condition: PutCondition<'_>) -> Result<(), BackendError> {
        key_of(&self.name, &item)?;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(to_wire(&item)));
        request = match condition {
            PutCondition::Always => request,
            PutCondition::IfAbsent => request.condition_expression("attribute_not_exists(pk)"),
            PutCondition::IfAbsentOrExpired { now } => request
                .condition_expression("attribute_not_exists(pk) OR #expires <= :now")
                .expression_attribute_names("#expires", EXPIRES_AT)
                .expression_attribute_values(":now", AttributeValue::N(now.to_string())),
            PutCondition::IfFieldIn { field, values } => {
                let placeholders: Vec<String> = (0..values.len()).map(|i| format!(":v{i}")).collect();
                let mut request = request
                    .condition_expression(format!(
                        "attribute_exists(pk) AND (attribute_not_exists(#expires) OR #expires > :now) AND #field IN ({})",
                        placeholders.join(", ")
                    ))
                    .expression_attribute_names("#expires", EXPIRES_AT)
                    .expression_attribute_names("#field", field)
                    .expression_attribute_values(":now", AttributeValue::N(now_epoch_seconds().to_string()));
                for (placeholder, value) in placeholders.iter().zip(values.iter()) {
                    request = request.expression_attribute_values(placeholder, AttributeValue::S((*value).to_string()));
                }
                request
            }
        };
        let failed_condition = match condition {
            PutCondition::IfFieldIn { .. } => "item must exist with the expected field value",
            _ => "item must not exist",
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(err) if matches!(err.as_service_error(), Some(e) if e.is_conditional_check_failed_exception()) => {
                Err(self.condition_failed(failed_condition))
            }
            Err(err) => Err(sdk_error(SERVICE, "PutItem", err)),
        }
    }

    async fn delete(&self, key: &ItemKey, condition: DeleteCondition) -> Result<Option<Item>, BackendError> {
        let mut request = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key_map(key)))
            .return_values(ReturnValue::AllOld);
        if let DeleteCondition::IfExists { now } = condition {
            request = request
                .condition_expression("attribute_exists(pk) AND (attribute_not_exists(#expires) OR #expires > :now)")
                .expression_attribute_names("#expires", EXPIRES_AT)
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()));
        }
        match request.send().await {
            Ok(output) => output.attributes().map(|item| self.decode_item(item)).transpose(),
            Err(err) if matches!(err.as_service_error(), Some(e) if e.is_conditional_check_failed_exception()) => {
                Err(self.condition_failed("item must exist"))
            }
            Err(err) => Err(sdk_error(SERVICE, "DeleteItem", err)),
        }
    }

    async fn batch_put(&self, items: &[Item]) -> Result<Vec<Item>, BackendError> {
        if items.len() > MAX_BATCH_WRITE {
            return Err(BackendError::InvalidItem {
                table: self.name.clone(),
                reason: format!("a batch holds at most {MAX_BATCH_WRITE} items, got {}", items.len()),
            });
        }
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut requests = Vec::with_capacity(items.len());
        for item in items {
            key_of(&self.name, item)?;
            let put = PutRequest::builder()
                .set_item(Some(to_wire(item)))
                .build()
                .map_err(|e| BackendError::InvalidItem {
                    table: self.name.clone(),
                    reason: e.to_string(),
                })?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        let output = self
            .client
            .batch_write_item()
            .request_items(&self.name, requests)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "BatchWriteItem", e))?;
        let mut unprocessed = Vec::new();
        if let Some(pending) = output.unprocessed_items().and_then(|all| all.get(&self.name)) {
            for request in pending {
                if let Some(put) = request.put_request() {
                    unprocessed.push(self.decode_item(put.item())?);
                }
            }
        }
        Ok(unprocessed)
    }

    async fn batch_get(&self, keys: Vec<ItemKey>) -> Result<BatchGet, BackendError> {
        if keys.len() > MAX_BATCH_GET {
            return Err(BackendError::InvalidItem {
                table: self.name.clone(),
                reason: format!("a batch read holds at most {MAX_BATCH_GET} keys, got {}", keys.len()),
            });
        }
        if keys.is_empty() {
            return Ok(BatchGet::default());
        }
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys.iter().map(key_map).collect()))
            .consistent_read(true)
            .build()
            .map_err(|e| BackendError::InvalidItem {
                table: self.name.clone(),
                reason: e.to_string(),
            })?;
        let output = self
            .client
            .batch_get_item()
            .request_items(&self.name, request)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "BatchGetItem", e))?;
        let now = now_epoch_seconds();
        let mut result = BatchGet::default();
        if let Some(found) = output.responses().and_then(|all| all.get(&self.name)) {
            for item in found {
                let item = self.decode_item(item)?;
                if !is_expired(&item, now) {
                    result.items.push(item);
                }
            }
        }
        if let Some(pending) = output.unprocessed_keys().and_then(|all| all.get(&self.name)) {
            for key in pending.keys() {
                if let Some(key) = self.decode_item(key).ok().as_ref().and_then(ItemKey::of) {
                    result.unprocessed.push(key);
                }
            }
        }
        Ok(result)
    }

    async fn query(&self, pk: &str, request: &PageRequest) -> Result<Page, BackendError> {
        let limit = request.limit.max(1);
        let now = now_epoch_seconds();
        let mut page = Page::default();
        let mut start = request
            .start_after
            .as_ref()
            .map(|sk| key_map(&ItemKey::new(pk, sk.clone())));
        // Expired items still count against DynamoDB's Limit, so read until the page is full.
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.name)
                .consistent_read(true)
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_string()))
                .limit(i32::try_from(limit - page.items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            query = match &request.sk_prefix {
                Some(prefix) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", AttributeValue::S(prefix.clone())),
                None => query.key_condition_expression("pk = :pk"),
            };
            let output = query.send().await.map_err(|e| sdk_error(SERVICE, "Query", e))?;
            for item in output.items() {
                let item = self.decode_item(item)?;
                if !is_expired(&item, now) {
                    page.items.push(item);
                }
            }
            match output.last_evaluated_key() {
                Some(last) if page.items.len() < limit => start = Some(last.clone()),
                Some(last) => {
                    page.last_sk = last.get(SORT_KEY).and_then(|v| v.as_s().ok()).cloned();
                    break;
                }
                None => break,
            }
        }
        Ok(page)
    }
}
