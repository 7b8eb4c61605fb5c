//! Where a fetched attachment goes: the S3 stage. The fetch step sees only [`AttachmentSink`],
//! so it does not depend on the stage crate; the runner binds it (for example to
//! `sluice_stage::stage_attachment` through [`SinkFn`]). [`RawObjectSink`] is the plain
//! binding: the original bytes under `raw/` with their provenance as metadata.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use sluice_core::objects::PutOptions;
use sluice_core::{ObjectKey, ObjectStore, StepError};

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

/// A sink failure with the stage's own stable error name, so Retry/Catch still match it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error_name}: {message}")]
pub struct SinkError {
    pub error_name: &'static str,
    pub message: String,
}

impl SinkError {
    pub fn new(error_name: &'static str, message: impl Into<String>) -> Self {
        SinkError {
            error_name,
            message: message.into(),
        }
    }

    /// Any stage error, its name kept.
    pub fn from_step_error<E: StepError>(err: &E) -> Self {
        SinkError::new(err.error_name(), err.to_string())
    }
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

/// Writes the original bytes to `raw/mail/<message id>/<part id>/<file name>`.
pub struct RawObjectSink {
    objects: Arc<dyn ObjectStore>,
}

impl RawObjectSink {
    pub fn new(objects: Arc<dyn ObjectStore>) -> Self {
        RawObjectSink { objects }
    }

    /// The object key of an attachment: stable, so a rerun overwrites rather than duplicates.
    pub fn key_for(descriptor: &AttachmentDescriptor) -> Result<ObjectKey, SinkError> {
        let part = if descriptor.part_id.is_empty() {
            "root".to_string()
        } else {
            descriptor.part_id.clone()
        };
        ObjectKey::new(format!(
            "raw/mail/{}/{}/{}",
            key_segment(&descriptor.message_id),
            key_segment(&part),
            key_segment(&descriptor.file_name)
        ))
        .map_err(|err| SinkError::from_step_error(&err))
    }
}

#[async_trait]
impl AttachmentSink for RawObjectSink {
    async fn accept(&self, attachment: FetchedAttachment) -> Result<StoredAttachment, SinkError> {
        let key = Self::key_for(&attachment.descriptor)?;
        let descriptor = &attachment.descriptor;
        let mut options = PutOptions {
            content_type: Some(descriptor.mime_type.clone()),
            ..PutOptions::default()
        };
        for (name, value) in [
            ("source-message-id", descriptor.message_id.as_str()),
            ("source-part-id", descriptor.part_id.as_str()),
            ("sha256", attachment.sha256.as_str()),
        ] {
            options.metadata.insert(name.into(), value.into());
        }
        self.objects
            .put_bytes(&key, attachment.content, &options)
            .await
            .map_err(|err| SinkError::from_step_error(&err))?;
        Ok(StoredAttachment {
            key: key.to_string(),
            quarantined: false,
        })
    }
}

/// An untrusted name made safe as one key segment: no separators, controls or leading dots.
fn key_segment(untrusted: &str) -> String {
    let last = untrusted.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|' | '#' | '%') {
                '_'
            } else {
                c
            }
        })
        .take(100)
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    if trimmed.is_empty() {
        "attachment".into()
    } else {
        trimmed.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_file_names_stay_inside_one_key_segment() {
        assert_eq!(key_segment("../../etc/passwd"), "passwd");
        assert_eq!(key_segment("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(key_segment("...hidden"), "hidden");
        assert_eq!(key_segment("a\u{0}b#c.csv"), "a_b_c.csv");
        assert_eq!(key_segment(""), "attachment");
        assert_eq!(key_segment("/"), "attachment");
    }
}
