//! The local ECR's blobs in S3-compatible object storage (Garage, MinIO, AWS S3): an
//! implementation of `berth_ecr_local::blob_store::BlobStore` whose keys are content-addressed
//! (`<prefix>blobs/sha256/<ab>/<hex>`), whose downloads are pre-signed GET URLs the registry
//! redirects to, as ECR's blob GETs go to S3.
//!
//! This crate owns the S3 wire protocol through the AWS SDK (one of the two crates that touch the
//! SDK, with `berth-aws`). It must not know about registries, repositories or the local ECR's
//! metadata: it keeps and hands out bytes by digest.

#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use berth_ecr_local::blob_store::{BlobStore, digest_hex};

/// Where the blobs go.
#[derive(Clone)]
pub struct S3Settings {
    /// The store's URL (`http://127.0.0.1:3900`); `None` for AWS S3 itself.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// Prepended to every key (`registry/`); empty for the bucket's root.
    pub prefix: String,
    /// Static keys; `None` uses the AWS credential chain (environment, profile, IRSA, IMDS).
    pub credentials: Option<(String, String)>,
}

/// Blobs in one bucket.
pub struct S3Blobs {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3Blobs {
    pub async fn new(settings: &S3Settings) -> S3Blobs {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .http_client(http);
        if let Some((id, secret)) = &settings.credentials {
            loader =
                loader.credentials_provider(Credentials::new(id, secret, None, None, "berth-s3"));
        }
        let shared = loader.load().await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            // S3-compatible stores reject the SDK's newer default checksums.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint).force_path_style(true);
        }
        S3Blobs {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            bucket: settings.bucket.clone(),
            prefix: settings.prefix.clone(),
        }
    }

    /// `<prefix>blobs/sha256/<first two hex digits>/<hex>`.
    pub fn key(&self, digest: &str) -> io::Result<String> {
        let hex = digest_hex(digest)?;
        Ok(format!("{}blobs/sha256/{}/{hex}", self.prefix, &hex[..2]))
    }

    /// Fails, in the store's words, unless the bucket answers (a wrong endpoint, bucket or key
    /// is found at start, not at the first push).
    pub async fn check(&self) -> io::Result<()> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("HEAD bucket", &self.bucket, e))
    }

    /// Whether the bucket holds blob `digest`.
    pub async fn contains(&self, digest: &str) -> io::Result<bool> {
        self.exists(&self.key(digest)?).await
    }

    async fn exists(&self, key: &str) -> io::Result<bool> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(sdk_error("HEAD", key, e)),
        }
    }
}

fn sdk_error(op: &str, key: &str, e: impl std::error::Error) -> io::Error {
    io::Error::other(format!(
        "object store {op} {key}: {}",
        aws_sdk_s3::error::DisplayErrorContext(e)
    ))
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn keep(&self, digest: &str, staged: &Path, size: u64) -> io::Result<()> {
        let key = self.key(digest)?;
        if !self.exists(&key).await? {
            let body = ByteStream::from_path(staged)
                .await
                .map_err(|e| io::Error::other(format!("reading the staged upload: {e}")))?;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .content_length(size as i64)
                .content_type("application/octet-stream")
                .body(body)
                .send()
                .await
                .map_err(|e| sdk_error("PUT", &key, e))?;
        }
        tokio::fs::remove_file(staged).await
    }

    async fn download_url(&self, digest: &str, ttl: Duration) -> io::Result<Option<String>> {
        let key = self.key(digest)?;
        let presigning = PresigningConfig::expires_in(ttl)
            .map_err(|e| io::Error::other(format!("presigning for {ttl:?}: {e}")))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .presigned(presigning)
            .await
            .map_err(|e| sdk_error("presign GET", &key, e))?;
        Ok(Some(request.uri().to_owned()))
    }

    fn serves_downloads(&self) -> bool {
        true
    }

    fn local_path(&self, _: &str) -> Option<PathBuf> {
        None
    }
}
