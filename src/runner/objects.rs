//! The engine's S3 port bound to Sluice's object store (a directory locally, S3 on AWS), so a
//! Distributed Map's `ItemReader` and `ResultWriter` read and write the pipeline's bucket.

use async_trait::async_trait;
use sluice_core::{BackendError, ObjectKey, ObjectStore, PutOptions};
use sluice_statemachine::objects::{LIST_PAGE_SIZE, ObjectPage, ObjectSummary};
use sluice_statemachine::{ObjectError, ObjectStorage};
use std::sync::Arc;

/// A work list or result file is at most this big (a manifest of a very large mailbox).
const MAX_OBJECT_BYTES: u64 = 1 << 30;

/// The pipeline's one bucket, under the name the state machine uses for it.
pub struct PipelineObjects {
    bucket: String,
    store: Arc<dyn ObjectStore>,
}

impl PipelineObjects {
    pub fn new(bucket: impl Into<String>, store: Arc<dyn ObjectStore>) -> Self {
        Self {
            bucket: bucket.into(),
            store,
        }
    }

    fn key(&self, bucket: &str, key: &str) -> Result<ObjectKey, ObjectError> {
        if bucket != self.bucket {
            return Err(ObjectError::NoSuchBucket(bucket.to_string()));
        }
        ObjectKey::new(key).map_err(|_| ObjectError::InvalidName(key.to_string()))
    }

    fn failed(&self, key: &str, e: BackendError) -> ObjectError {
        match e {
            BackendError::NotFound { .. } => ObjectError::NoSuchKey {
                bucket: self.bucket.clone(),
                key: key.to_string(),
            },
            other => ObjectError::Io {
                bucket: self.bucket.clone(),
                key: key.to_string(),
                message: other.to_string(),
            },
        }
    }
}

#[async_trait]
impl ObjectStorage for PipelineObjects {
    async fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, ObjectError> {
        let object = self.key(bucket, key)?;
        self.store
            .get_bytes(&object, MAX_OBJECT_BYTES)
            .await
            .map(|b| b.to_vec())
            .map_err(|e| self.failed(key, e))
    }

    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), ObjectError> {
        let object = self.key(bucket, key)?;
        self.store
            .put_bytes(&object, body.into(), &PutOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| self.failed(key, e))
    }

    async fn list_objects(&self, bucket: &str, prefix: &str, after: Option<&str>) -> Result<ObjectPage, ObjectError> {
        if bucket != self.bucket {
            return Err(ObjectError::NoSuchBucket(bucket.to_string()));
        }
        let mut listed = self.store.list(prefix).await.map_err(|e| self.failed(prefix, e))?;
        listed.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        let mut page = ObjectPage::default();
        for info in listed.into_iter().filter(|i| after.is_none_or(|a| i.key.as_str() > a)) {
            if page.objects.len() == LIST_PAGE_SIZE {
                page.next = page.objects.last().map(|o| o.key.clone());
                break;
            }
            page.objects.push(ObjectSummary {
                key: info.key.as_str().to_string(),
                size: info.size,
                // The store keeps a content hash, not S3's ETag: the hash stands in for it.
                etag: format!("\"{}\"", info.metadata.get("sha256").map(String::as_str).unwrap_or("")),
                last_modified: chrono::Utc::now(),
                storage_class: "STANDARD".into(),
            });
        }
        Ok(page)
    }
}
