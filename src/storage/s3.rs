//! The S3 store (aws-sdk-s3): AWS, or any S3-compatible server through an
//! endpoint and path-style addressing. Keys get the configured prefix.
//! An object's version is its ETag; a conditional write sends `If-Match`
//! with it (`If-None-Match: *` to create), and S3's 412 Precondition
//! Failed or 409 ConditionalRequestConflict answers
//! [`StoreError::Changed`].

use super::StorageCounters;
use crate::config::S3Config;
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::put_object::PutObjectError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use bytes::Bytes;
use chats3_actors::domain::{AttachmentVariant, ConversationId};
use chats3_actors::store::{Store, StoreError, Version, keys};
use std::sync::Arc;
use std::time::Duration;

/// A bucket (and key prefix) on an S3-compatible server.
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    counters: Arc<StorageCounters>,
}

/// A failed call, with the SDK's whole error context as its cause.
fn sdk_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    operation: &'static str,
    e: SdkError<E, R>,
) -> StoreError {
    StoreError::backend(
        operation,
        std::io::Error::other(DisplayErrorContext(e).to_string()),
    )
}

impl S3Store {
    /// The error of a request, counting the client's own timeouts
    /// (connect, read, operation) as timeouts.
    fn failed<E: std::error::Error + 'static, R: std::fmt::Debug>(
        &self,
        operation: &'static str,
        e: SdkError<E, R>,
    ) -> StoreError {
        let timed_out = match &e {
            SdkError::TimeoutError(_) => true,
            SdkError::DispatchFailure(failure) => failure.is_timeout(),
            _ => false,
        };
        if timed_out {
            self.counters
                .timeouts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        sdk_error(operation, e)
    }
}

impl S3Store {
    /// Builds the client from the configuration (static credentials when
    /// given, otherwise the standard AWS chain). Connecting, each read and
    /// each whole operation (retries included) are bounded by `timeout`.
    pub async fn new(
        config: &S3Config,
        timeout: Duration,
        counters: Arc<StorageCounters>,
    ) -> anyhow::Result<Self> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()));
        if !config.access_key.is_empty() {
            loader = loader.credentials_provider(Credentials::new(
                config.access_key.clone(),
                config.secret_key.clone(),
                None,
                None,
                "chats3-config",
            ));
        }
        if !config.endpoint.is_empty() {
            loader = loader.endpoint_url(config.endpoint.clone());
        }
        let shared = loader.load().await;
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .operation_attempt_timeout(timeout)
            .operation_timeout(timeout)
            .build();
        let s3_config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.force_path_style)
            .timeout_config(timeouts)
            .build();
        Ok(S3Store {
            client: Client::from_conf(s3_config),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            counters,
        })
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// A presigned GET URL for a key, valid for `ttl`.
    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String, StoreError> {
        let presigning =
            PresigningConfig::expires_in(ttl).map_err(|e| StoreError::backend("presign", e))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .presigned(presigning)
            .await
            .map_err(|e| sdk_error("presign GetObject", e))?;
        Ok(request.uri().to_string())
    }
}

impl S3Store {
    /// Visits every object under `prefix` (after `start_after`), page by
    /// page, counting each listing call.
    async fn each_object(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        mut visit: impl FnMut(&aws_sdk_s3::types::Object),
    ) -> Result<(), StoreError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.full_key(prefix))
            .set_start_after(start_after.map(|k| self.full_key(k)))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let result = page.map_err(|e| self.failed("ListObjectsV2", e));
            self.counters.count(&self.counters.lists, &result);
            result?.contents().iter().for_each(&mut visit);
        }
        Ok(())
    }
}

/// Whether a failed PutObject says its condition did not hold: another
/// object than the expected one is stored (412 Precondition Failed), or
/// another write of the key was under way (409 ConditionalRequestConflict).
fn condition_failed(e: &SdkError<PutObjectError, HttpResponse>) -> bool {
    let SdkError::ServiceError(failure) = e else {
        return false;
    };
    failure.raw().status().as_u16() == 412
        || matches!(
            failure.err().code(),
            Some("PreconditionFailed" | "ConditionalRequestConflict")
        )
}

impl S3Store {
    /// The object's bytes and ETag, `None` when there is no such key.
    async fn fetch(&self, key: &str) -> Result<Option<(Bytes, Option<String>)>, StoreError> {
        let result = async {
            let response = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(self.full_key(key))
                .send()
                .await;
            match response {
                Ok(output) => {
                    let e_tag = output.e_tag;
                    let data = output
                        .body
                        .collect()
                        .await
                        .map_err(|e| StoreError::backend("GetObject body", e))?;
                    Ok(Some((data.into_bytes(), e_tag)))
                }
                Err(SdkError::ServiceError(e))
                    if matches!(e.err(), GetObjectError::NoSuchKey(_)) =>
                {
                    Ok(None)
                }
                Err(e) => Err(self.failed("GetObject", e)),
            }
        }
        .await;
        self.counters.count(&self.counters.gets, &result);
        result
    }
}

#[async_trait]
impl Store for S3Store {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self.fetch(key).await?.map(|(body, _)| body))
    }

    async fn get_versioned(&self, key: &str) -> Result<(Option<Bytes>, Version), StoreError> {
        match self.fetch(key).await? {
            None => Ok((None, Version::Absent)),
            Some((body, Some(e_tag))) => Ok((Some(body), Version::Tag(e_tag))),
            Some((_, None)) => Err(StoreError::Unusable(format!(
                "GetObject of {key} answered no ETag"
            ))),
        }
    }

    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.failed("PutObject", e));
        self.counters.count(&self.counters.puts, &result);
        result
    }

    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        expected: &Version,
    ) -> Result<Version, StoreError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .content_type(content_type)
            .body(ByteStream::from(body));
        let request = match expected {
            Version::Absent => request.if_none_match("*"),
            Version::Tag(e_tag) => request.if_match(e_tag),
        };
        let result = match request.send().await {
            Ok(output) => output.e_tag.map(Version::Tag).ok_or_else(|| {
                StoreError::Unusable(format!("PutObject of {key} answered no ETag"))
            }),
            Err(e) if condition_failed(&e) => Err(StoreError::Changed),
            Err(e) => Err(self.failed("PutObject", e)),
        };
        self.counters.count(&self.counters.puts, &result);
        result
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.list_after(prefix, None).await
    }

    async fn list_after(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        self.each_object(prefix, start_after, |object| {
            if let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                keys.push(key.to_owned());
            }
        })
        .await?;
        keys.sort_unstable();
        Ok(keys)
    }

    async fn usage(&self, prefix: &str) -> Result<u64, StoreError> {
        let mut total = 0u64;
        self.each_object(prefix, None, |object| {
            total += u64::try_from(object.size().unwrap_or(0)).unwrap_or(0);
        })
        .await?;
        Ok(total)
    }

    async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(self.full_key(k)).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::backend("DeleteObjects", e))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StoreError::backend("DeleteObjects", e))?;
            let result = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.failed("DeleteObjects", e))
                .and_then(|output| match output.errors().first() {
                    Some(e) => Err(StoreError::backend(
                        "DeleteObjects",
                        std::io::Error::other(format!(
                            "deleting {}: {}",
                            e.key().unwrap_or_default(),
                            e.message().unwrap_or_default()
                        )),
                    )),
                    None => Ok(()),
                });
            self.counters.count(&self.counters.deletes, &result);
            result?;
        }
        Ok(())
    }

    async fn attachment_link(
        &self,
        conversation: &ConversationId,
        attachment_id: &str,
        variant: AttachmentVariant,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let key = keys::attachment_variant(conversation, attachment_id, variant);
        self.presign_get(&key, ttl).await
    }
}
