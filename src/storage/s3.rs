//! An S3-compatible bucket (AWS S3, MinIO, R2, s3s-fs): the few calls onair
//! makes, with timeouts, and multipart uploads for large recordings.

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    retry::RetryConfig,
};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::config::StorageConfig;

/// Files above this size go up in parts (a single PUT is limited to 5 GB).
const MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
const PART_SIZE: u64 = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StorageError(String);

impl StorageError {
    fn from_sdk(what: &str, key: &str, error: impl std::error::Error) -> StorageError {
        StorageError(format!("{what} {key}: {}", DisplayErrorContext(error)))
    }
}

/// A bucket on an S3-compatible store. Cheap to clone.
#[derive(Clone)]
pub struct ObjectStore {
    client: Client,
    bucket: String,
}

impl std::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjectStore(s3://{})", self.bucket)
    }
}

impl ObjectStore {
    /// None when no bucket is configured.
    pub fn from_config(config: &StorageConfig) -> Option<ObjectStore> {
        if !config.is_configured() {
            return None;
        }
        let (key_id, secret) = if config.access_key_id.is_empty() {
            (
                std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default(),
                std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
            )
        } else {
            (
                config.access_key_id.clone(),
                config.secret_access_key.expose().to_string(),
            )
        };
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .force_path_style(config.path_style)
            // Plain Content-MD5-free PUTs: S3-compatible stores (MinIO, R2,
            // s3s) do not all accept the SDK's newer streaming checksums.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            // Callers retry with their own backoff (and spill to disk meanwhile).
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(120))
                    .build(),
            );
        builder = if key_id.is_empty() {
            // No credentials anywhere: unsigned requests (a public or local store).
            builder.allow_no_auth()
        } else {
            builder.credentials_provider(Credentials::new(key_id, secret, None, None, "onair"))
        };
        if !config.endpoint.is_empty() {
            builder = builder.endpoint_url(config.endpoint.clone());
        }
        Some(ObjectStore {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
        })
    }

    /// `s3://bucket/key`, for logs and the API.
    pub fn describe(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    pub async fn put_bytes(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| StorageError::from_sdk("uploading", key, e))?;
        Ok(())
    }

    /// Uploads a file, in parts when it is large.
    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<(), StorageError> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| StorageError(format!("reading {}: {e}", path.display())))?
            .len();
        if size > MULTIPART_THRESHOLD {
            return self.put_file_in_parts(key, path, size, content_type).await;
        }
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| StorageError(format!("reading {}: {e}", path.display())))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| StorageError::from_sdk("uploading", key, e))?;
        Ok(())
    }

    async fn put_file_in_parts(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        content_type: &str,
    ) -> Result<(), StorageError> {
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| StorageError::from_sdk("starting the upload of", key, e))?;
        let upload_id = upload
            .upload_id()
            .ok_or_else(|| StorageError(format!("the store gave no upload id for {key}")))?
            .to_string();
        let result = self.upload_parts(key, path, size, &upload_id).await;
        let parts = match result {
            Ok(parts) => parts,
            Err(error) => {
                // Leave no half-finished upload behind (it is billed and invisible).
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                return Err(error);
            }
        };
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| StorageError::from_sdk("completing the upload of", key, e))?;
        Ok(())
    }

    async fn upload_parts(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        upload_id: &str,
    ) -> Result<Vec<CompletedPart>, StorageError> {
        let mut parts = Vec::new();
        let mut offset = 0;
        let mut number = 1;
        while offset < size {
            let length = PART_SIZE.min(size - offset);
            let body = ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(length))
                .build()
                .await
                .map_err(|e| StorageError(format!("reading {}: {e}", path.display())))?;
            let part = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(body)
                .send()
                .await
                .map_err(|e| StorageError::from_sdk("uploading a part of", key, e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(part.e_tag().map(str::to_string))
                    .build(),
            );
            offset += length;
            number += 1;
        }
        Ok(parts)
    }

    /// The object's bytes (tests and tools).
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| StorageError::from_sdk("downloading", key, e))?;
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| StorageError(format!("downloading {key}: {e}")))?;
        Ok(body.into_bytes().to_vec())
    }

    /// Keys under `prefix` (tests and tools).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| StorageError::from_sdk("listing", prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        Ok(keys)
    }

    /// Makes the bucket if it does not exist (the demo's and tests' local store).
    pub async fn ensure_bucket(&self) -> Result<(), StorageError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| StorageError::from_sdk("creating bucket", &self.bucket, e))?;
        Ok(())
    }
}
