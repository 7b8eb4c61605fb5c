//! The S3 backend: checksummed uploads (SHA-256), SSE-KMS when a key is configured, and
//! multipart uploads for large files.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, MetadataDirective, ServerSideEncryption,
};
use bytes::Bytes;

use super::{LocalObject, ObjectInfo, ObjectKey, ObjectStore, PutOptions};
use crate::BackendError;
use crate::aws::sdk_error;
use crate::config::AwsSettings;

pub struct S3ObjectStore {
    client: Client,
    bucket: String,
    kms_key_id: Option<String>,
    multipart_threshold: u64,
    part_size: u64,
}

const SERVICE: &str = "S3";

impl S3ObjectStore {
    pub fn new(sdk: &aws_config::SdkConfig, settings: &AwsSettings, bucket: &str) -> S3ObjectStore {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            // Emulators serve buckets by path, not by virtual host.
            .force_path_style(settings.endpoint_url.is_some())
            .build();
        S3ObjectStore {
            client: Client::from_conf(config),
            bucket: bucket.to_string(),
            kms_key_id: settings.kms_key_id.clone(),
            multipart_threshold: settings.multipart_threshold_bytes,
            part_size: settings.multipart_part_bytes,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates the bucket if it does not exist (for emulators and first runs).
    pub async fn create_bucket_if_missing(&self) -> Result<(), BackendError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(_) => match self.client.create_bucket().bucket(&self.bucket).send().await {
                Ok(_) => Ok(()),
                Err(err) if matches!(err.as_service_error(), Some(e) if e.is_bucket_already_owned_by_you()) => Ok(()),
                Err(err) => Err(sdk_error(SERVICE, "CreateBucket", err)),
            },
        }
    }

    fn sse(&self) -> (Option<ServerSideEncryption>, Option<String>) {
        match &self.kms_key_id {
            Some(key) => (Some(ServerSideEncryption::AwsKms), Some(key.clone())),
            None => (None, None),
        }
    }

    async fn put_multipart(
        &self,
        key: &ObjectKey,
        path: &Path,
        size: u64,
        options: &PutOptions,
    ) -> Result<(), BackendError> {
        let (sse, kms_key) = self.sse();
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .set_metadata(Some(to_hash_map(&options.metadata)))
            .set_content_type(options.content_type.clone())
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms_key)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "CreateMultipartUpload", e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        match self.upload_parts(key, path, size, &upload_id).await {
            Ok(parts) => {
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key.as_str())
                    .upload_id(&upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, "CompleteMultipartUpload", e))?;
                Ok(())
            }
            Err(err) => {
                // Leave no orphaned parts behind (they are billed until aborted).
                if let Err(abort) = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key.as_str())
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    tracing::warn!(key = %key, error = %sdk_error(SERVICE, "AbortMultipartUpload", abort), "abort failed");
                }
                Err(err)
            }
        }
    }

    async fn upload_parts(
        &self,
        key: &ObjectKey,
        path: &Path,
        size: u64,
        upload_id: &str,
    ) -> Result<Vec<CompletedPart>, BackendError> {
        let mut parts = Vec::new();
        let mut offset = 0u64;
        let mut number = 1i32;
        while offset < size {
            let length = self.part_size.min(size - offset);
            let body = ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(length))
                .build()
                .await
                .map_err(|e| BackendError::Io {
                    operation: "read part",
                    path: path.display().to_string(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            let uploaded = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key.as_str())
                .upload_id(upload_id)
                .part_number(number)
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .body(body)
                .send()
                .await
                .map_err(|e| sdk_error(SERVICE, "UploadPart", e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(uploaded.e_tag().map(str::to_string))
                    .set_checksum_sha256(uploaded.checksum_sha256().map(str::to_string))
                    .build(),
            );
            offset += length;
            number += 1;
        }
        Ok(parts)
    }

    /// One PutObject: SHA-256 checksum, SSE-KMS when configured, the caller's metadata.
    async fn put_object(&self, key: &ObjectKey, body: ByteStream, options: &PutOptions) -> Result<(), BackendError> {
        let (sse, kms_key) = self.sse();
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .body(body)
            .set_metadata(Some(to_hash_map(&options.metadata)))
            .set_content_type(options.content_type.clone())
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms_key)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "PutObject", e))?;
        Ok(())
    }

    fn not_found(key: &ObjectKey) -> BackendError {
        BackendError::NotFound {
            what: format!("object {key}"),
        }
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put_bytes(&self, key: &ObjectKey, body: Bytes, options: &PutOptions) -> Result<ObjectInfo, BackendError> {
        let size = body.len() as u64;
        self.put_object(key, ByteStream::from(body), options).await?;
        Ok(ObjectInfo {
            key: key.clone(),
            size,
            metadata: options.metadata.clone(),
            version: None,
        })
    }

    async fn put_file(&self, key: &ObjectKey, path: &Path, options: &PutOptions) -> Result<ObjectInfo, BackendError> {
        let size = std::fs::metadata(path)
            .map_err(|e| BackendError::io("stat", path, e))?
            .len();
        if size >= self.multipart_threshold {
            self.put_multipart(key, path, size, options).await?;
        } else {
            let body = ByteStream::from_path(path).await.map_err(|e| BackendError::Io {
                operation: "read",
                path: path.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?;
            self.put_object(key, body, options).await?;
        }
        Ok(ObjectInfo {
            key: key.clone(),
            size,
            metadata: options.metadata.clone(),
            version: None,
        })
    }

    async fn get_bytes(&self, key: &ObjectKey, max_bytes: u64) -> Result<Bytes, BackendError> {
        let info = self.head(key).await?.ok_or_else(|| Self::not_found(key))?;
        if info.size > max_bytes {
            return Err(BackendError::InvalidKey {
                key: key.to_string(),
                reason: "object is larger than the caller's read limit",
            });
        }
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "GetObject", e))?;
        let data = object.body.collect().await.map_err(|e| BackendError::Aws {
            service: SERVICE,
            operation: "GetObject",
            message: e.to_string(),
        })?;
        Ok(data.into_bytes())
    }

    async fn download(&self, key: &ObjectKey) -> Result<LocalObject, BackendError> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(service) if service.is_no_such_key() => Self::not_found(key),
                _ => sdk_error(SERVICE, "GetObject", e),
            })?;
        let temp =
            tempfile::NamedTempFile::new().map_err(|e| BackendError::io("create temporary file", Path::new("."), e))?;
        let (mut file, path) = temp.into_parts();
        let mut body = object.body;
        while let Some(chunk) = body.try_next().await.map_err(|e| BackendError::Aws {
            service: SERVICE,
            operation: "GetObject",
            message: e.to_string(),
        })? {
            file.write_all(&chunk)
                .map_err(|e| BackendError::io("write", &path, e))?;
        }
        file.flush().map_err(|e| BackendError::io("write", &path, e))?;
        Ok(LocalObject {
            path: path.to_path_buf(),
            _temp: Some(path),
        })
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, BackendError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(head) => Ok(Some(ObjectInfo {
                key: key.clone(),
                size: head.content_length().unwrap_or(0).max(0) as u64,
                metadata: head.metadata().map(to_btree_map).unwrap_or_default(),
                version: head.e_tag().map(str::to_string),
            })),
            Err(err) if matches!(err.as_service_error(), Some(e) if e.is_not_found()) => Ok(None),
            Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(err) => Err(sdk_error(SERVICE, "HeadObject", err)),
        }
    }

    async fn copy(
        &self,
        from: &ObjectKey,
        to: &ObjectKey,
        extra_metadata: &BTreeMap<String, String>,
    ) -> Result<ObjectInfo, BackendError> {
        let source = self.head(from).await?.ok_or_else(|| Self::not_found(from))?;
        let mut metadata = source.metadata;
        metadata.extend(extra_metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
        let (sse, kms_key) = self.sse();
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(to.as_str())
            .copy_source(format!("{}/{}", self.bucket, percent_encode_key(from.as_str())))
            .metadata_directive(MetadataDirective::Replace)
            .set_metadata(Some(to_hash_map(&metadata)))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms_key)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "CopyObject", e))?;
        Ok(ObjectInfo {
            key: to.clone(),
            size: source.size,
            metadata,
            version: None,
        })
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), BackendError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "DeleteObject", e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError> {
        let mut infos = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(SERVICE, "ListObjectsV2", e))?;
            for object in page.contents() {
                let Some(Ok(key)) = object.key().map(ObjectKey::new) else {
                    continue;
                };
                // Listing carries no user metadata; a HEAD per object fetches it.
                if let Some(info) = self.head(&key).await? {
                    infos.push(info);
                }
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated().unwrap_or(false) => token = Some(next.to_string()),
                _ => break,
            }
        }
        infos.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(infos)
    }
}

fn to_hash_map(metadata: &BTreeMap<String, String>) -> HashMap<String, String> {
    metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn to_btree_map(metadata: &HashMap<String, String>) -> BTreeMap<String, String> {
    metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// CopySource must be URL-encoded; `/` stays as the key's separator.
fn percent_encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_source_keys_are_percent_encoded() {
        assert_eq!(super::percent_encode_key("raw/a b/é.csv"), "raw/a%20b/%C3%A9.csv");
    }
}
