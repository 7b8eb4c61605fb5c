//! Where a fetched attachment goes. The fetch step sees only [`AttachmentSink`]; the Lambda and
//! the local runner both bind [`RawObjectSink`], the original under `raw/<dataset>/<id>/<file>`
//! with its provenance as metadata, which is what the stage step reads.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use sluice_core::ObjectStore;

pub use crate::error::SinkError;
use crate::mail::AttachmentDescriptor;

/// One downloaded attachment, handed over in the step that listed it.
#[derive(Debug, Clone)]
pub struct FetchedAttachment {
    pub descriptor: AttachmentDescriptor,
    pub content: Bytes,
    /// Lowercase hex SHA-256 of `content`.
    pub sha256: String,
}

/// What the sink made of an attachment: the object key the next state reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttachment {
    pub key: String,
    /// The stage refused the file and put it aside (it is still counted as handled).
    pub quarantined: bool,
}

#[async_trait]
pub trait AttachmentSink: Send + Sync {
    async fn accept(&self, attachment: FetchedAttachment) -> Result<StoredAttachment, SinkError>;
}

/// A sink from an async function or closure, e.g.
/// `SinkFn(move |a| { let deps = deps.clone(); async move { stage(a, &deps).await } })`.
pub struct SinkFn<F>(pub F);

#[async_trait]
impl<F, Fut> AttachmentSink for SinkFn<F>
where
    F: Fn(FetchedAttachment) -> Fut + Send + Sync,
    Fut: Future<Output = Result<StoredAttachment, SinkError>> + Send,
{
    async fn accept(&self, attachment: FetchedAttachment) -> Result<StoredAttachment, SinkError> {
        (self.0)(attachment).await
    }
}

/// Stores the original with [`sluice_stage::store_raw`] under `raw/<dataset>/<id>/<file>`, the
/// dataset named after the file ([`sluice_stage::dataset_for_file`]): the one rule for what a
/// fetched attachment becomes, used by the fetch Lambda and the local runner alike.
pub struct RawObjectSink {
    objects: Arc<dyn ObjectStore>,
    default_dataset: String,
}

impl RawObjectSink {
    /// `default_dataset` (`[ingest] default_dataset`) takes files whose name gives no dataset.
    pub fn new(objects: Arc<dyn ObjectStore>, default_dataset: &str) -> Self {
        RawObjectSink {
            objects,
            default_dataset: default_dataset.to_string(),
        }
    }

    /// The sink the configuration describes.
    pub fn from_config(objects: Arc<dyn ObjectStore>, config: &sluice_core::Config) -> Self {
        Self::new(objects, &config.ingest.default_dataset)
    }
}

#[async_trait]
impl AttachmentSink for RawObjectSink {
    async fn accept(&self, attachment: FetchedAttachment) -> Result<StoredAttachment, SinkError> {
        let descriptor = &attachment.descriptor;
        let dataset = sluice_stage::dataset_for_file(&descriptor.file_name, &self.default_dataset);
        let source = sluice_stage::AttachmentSource {
            message_id: descriptor.message_id.clone(),
            part_id: descriptor.part_id.clone(),
            file_name: descriptor.file_name.clone(),
            received_at: chrono::Utc::now(),
            declared_charset: descriptor.charset.clone(),
        };
        let raw = sluice_stage::store_raw(
            self.objects.as_ref(),
            &dataset,
            &source,
            sluice_stage::AttachmentBody::Bytes(attachment.content),
        )
        .await
        .map_err(|err| SinkError::from_step_error(&err))?;
        Ok(StoredAttachment {
            key: raw.raw_key,
            quarantined: false,
        })
    }
}
