//! An OCI distribution client: Basic and Bearer auth from a registry's challenge, retries with
//! backoff on 5xx, 429 and broken connections, token refresh when a registry says it expired,
//! resumable uploads and ranged downloads. One per registry host; HTTP/1.1 connections are kept
//! alive and shared by every blob of a transfer.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::StreamExt;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::error::{Error, RegistryFailure, Result};
use crate::manifest::{ACCEPT, Descriptor, MAX_MANIFEST_BYTES, Manifest};
use crate::transport::BlobStream;

/// Basic credentials for a registry (for ECR: `AWS` and a token).
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: SecretString,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

/// Where a client's credentials come from: the broker, a Docker config, a flag, or nowhere.
#[async_trait]
pub trait CredentialSource: Send + Sync {
    /// Credentials for `host`; `refresh` when the previous ones were refused as expired.
    async fn credentials(&self, host: &str, refresh: bool) -> Result<Option<Credentials>>;
    /// Where they come from, for error messages ("Docker config", "integration prod").
    fn describe(&self) -> String;
}

pub struct Anonymous;

#[async_trait]
impl CredentialSource for Anonymous {
    async fn credentials(&self, _: &str, _: bool) -> Result<Option<Credentials>> {
        Ok(None)
    }
    fn describe(&self) -> String {
        "no credentials".into()
    }
}

pub struct StaticCredentials(pub Credentials, pub String);

#[async_trait]
impl CredentialSource for StaticCredentials {
    async fn credentials(&self, _: &str, _: bool) -> Result<Option<Credentials>> {
        Ok(Some(self.0.clone()))
    }
    fn describe(&self) -> String {
        self.1.clone()
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            first_delay: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    pub fn delay(&self, attempt: u32) -> Duration {
        self.first_delay * 2u32.saturating_pow(attempt.saturating_sub(1).min(6))
    }
}

/// A registry's answer to a blob upload request.
pub enum UploadStart {
    /// The blob was linked from the other repository: nothing to send.
    Mounted,
    /// Send the blob to this upload URL.
    Upload(String),
}

pub struct RegistryClient {
    http: reqwest::Client,
    host: String,
    base: String,
    credentials: Arc<dyn CredentialSource>,
    authorization: RwLock<Option<HeaderValue>>,
    pub retry: RetryPolicy,
}

fn is_loopback(host: &str) -> bool {
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map(|(n, _)| n)
        .unwrap_or(host);
    name == "localhost" || name.starts_with("127.") || name == "[::1]"
}

/// Parses `Bearer realm="…",service="…",scope="…"` (or `Basic realm="…"`).
fn parse_challenge(value: &str) -> (String, Vec<(String, String)>) {
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (val, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.push((key, val.to_owned()));
        rest = remainder.trim_start_matches(',').trim();
    }
    (scheme.to_ascii_lowercase(), params)
}

/// What a registry's error body says: the first `{"errors":[{"code","message"}]}` entry.
fn oci_error(body: &str) -> (Option<String>, Option<String>) {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let first = &v["errors"][0];
    (
        first["code"].as_str().map(str::to_owned),
        first["message"].as_str().map(str::to_owned),
    )
}

impl RegistryClient {
    /// `plain_http` for registries without TLS (loopback hosts always use plain HTTP).
    pub fn new(
        host: &str,
        credentials: Arc<dyn CredentialSource>,
        plain_http: bool,
    ) -> Result<RegistryClient> {
        let plain = plain_http || is_loopback(host);
        // reqwest is built without a default TLS provider; the process may not have set one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true);
        if plain {
            builder = builder.tls_certs_only(std::iter::empty());
        }
        let http = builder.build().map_err(|e| Error::Transport {
            context: format!("cannot set up an HTTP client for {host}"),
            source: e,
        })?;
        Ok(RegistryClient {
            http,
            host: host.to_owned(),
            base: format!("{}://{host}", if plain { "http" } else { "https" }),
            credentials,
            authorization: RwLock::new(None),
            retry: RetryPolicy::default(),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn current_authorization(&self) -> Option<HeaderValue> {
        self.authorization
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_authorization(&self, value: Option<HeaderValue>) {
        *self
            .authorization
            .write()
            .unwrap_or_else(|p| p.into_inner()) = value;
    }

    /// Answers a 401 challenge: Basic sends the credentials; Bearer trades them for a token.
    async fn authenticate(&self, challenge: &str, scope_hint: &str, refresh: bool) -> Result<()> {
        let creds = self.credentials.credentials(&self.host, refresh).await?;
        let (scheme, params) = parse_challenge(challenge);
        let param = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let value = match scheme.as_str() {
            "basic" => {
                let c = creds.ok_or_else(|| {
                    Error::Auth(format!(
                        "{} requires credentials and there are none for it (log in with `berth login`, `berth ci login` or a Docker config entry)",
                        self.host
                    ))
                })?;
                format!(
                    "Basic {}",
                    B64.encode(format!("{}:{}", c.username, c.password.expose_secret()))
                )
            }
            "bearer" => {
                let realm = param("realm").ok_or_else(|| {
                    Error::Auth(format!(
                        "{} sent a Bearer challenge without a realm",
                        self.host
                    ))
                })?;
                let mut query: Vec<String> = Vec::new();
                if let Some(s) = param("service") {
                    query.push(format!("service={}", berth_core::percent_encode(&s)));
                }
                let scope = param("scope").unwrap_or_else(|| scope_hint.to_owned());
                for s in scope.split(' ').filter(|s| !s.is_empty()) {
                    query.push(format!("scope={}", berth_core::percent_encode(s)));
                }
                let sep = if realm.contains('?') { '&' } else { '?' };
                let mut req = self.http.get(format!("{realm}{sep}{}", query.join("&")));
                if let Some(c) = &creds {
                    req = req.basic_auth(&c.username, Some(c.password.expose_secret()));
                }
                let resp = req.send().await.map_err(|e| Error::Transport {
                    context: format!("cannot reach the token service {realm}"),
                    source: e,
                })?;
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                if !status.is_success() {
                    return Err(Error::Auth(format!(
                        "the token service {realm} refused {} (HTTP {status}): {}",
                        self.credentials.describe(),
                        body.chars().take(300).collect::<String>()
                    )));
                }
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let token = v["token"]
                    .as_str()
                    .or(v["access_token"].as_str())
                    .ok_or_else(|| {
                        Error::Auth(format!(
                            "the token service {realm} answered without a token"
                        ))
                    })?;
                format!("Bearer {token}")
            }
            other => {
                return Err(Error::Auth(format!(
                    "{} asks for '{other}' authentication, which Berth does not speak (Basic and Bearer are supported)",
                    self.host
                )));
            }
        };
        let mut header = HeaderValue::from_str(&value)
            .map_err(|_| Error::Auth("credentials contain characters HTTP cannot carry".into()))?;
        header.set_sensitive(true);
        self.set_authorization(Some(header));
        Ok(())
    }

    /// Sends a request built by `make` (called again for each attempt): answers auth challenges,
    /// refreshes expired credentials once, and retries transient failures with backoff.
    pub async fn send(
        &self,
        scope: &str,
        what: &str,
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response> {
        let mut attempt = 0u32;
        let mut authenticated = false;
        let mut refreshed = false;
        loop {
            let mut req = make(&self.http);
            if let Some(auth) = self.current_authorization() {
                req = req.header(header::AUTHORIZATION, auth);
            }
            let failure = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::UNAUTHORIZED && !authenticated {
                        let challenge = resp
                            .headers()
                            .get(header::WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("Basic")
                            .to_owned();
                        authenticated = true;
                        self.authenticate(&challenge, scope, false).await?;
                        continue;
                    }
                    if status == StatusCode::FORBIDDEN && !refreshed {
                        let body = resp.text().await.unwrap_or_default();
                        let (code, message) = oci_error(&body);
                        // A HEAD answer has no body to say why; refreshing once is cheap.
                        let expired = body.trim().is_empty()
                            || message
                                .as_deref()
                                .is_some_and(|m| m.to_ascii_lowercase().contains("expired"));
                        if expired {
                            refreshed = true;
                            tracing::info!(host = %self.host, "registry token expired; refreshing credentials");
                            self.authenticate("Basic", scope, true).await?;
                            continue;
                        }
                        return Err(self.denied(what, code, message, body));
                    }
                    if status == StatusCode::UNAUTHORIZED {
                        return Err(Error::Auth(format!(
                            "{what}: {} refused {} (HTTP 401)",
                            self.host,
                            self.credentials.describe()
                        )));
                    }
                    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                        let wait = resp
                            .headers()
                            .get(header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok())
                            .map(|s| Duration::from_secs(s.min(30)));
                        let err = self.error(resp, what).await;
                        (err, wait)
                    } else {
                        return Ok(resp);
                    }
                }
                Err(e) => (
                    Error::Transport {
                        context: format!("{what}: cannot reach {}", self.host),
                        source: e,
                    },
                    None,
                ),
            };
            let (err, wait) = failure;
            attempt += 1;
            if attempt >= self.retry.attempts {
                return Err(err);
            }
            tracing::info!(host = %self.host, attempt, reason = %err, "retrying");
            tokio::time::sleep(wait.unwrap_or_else(|| self.retry.delay(attempt))).await;
        }
    }

    fn denied(
        &self,
        what: &str,
        code: Option<String>,
        message: Option<String>,
        body: String,
    ) -> Error {
        let push =
            what.starts_with("push") || what.starts_with("upload") || what.starts_with("mount");
        let hint = if what.starts_with("check") {
            " — the credentials lack permission on this repository (on ECR, a push needs ecr:BatchCheckLayerAvailability, ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload and ecr:PutImage)"
        } else if push {
            " — the credentials lack push permission on this repository (on ECR: ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload, ecr:BatchCheckLayerAvailability and ecr:PutImage)"
        } else {
            " — the credentials lack pull permission on this repository (on ECR: ecr:BatchGetImage and ecr:GetDownloadUrlForLayer)"
        };
        Error::Auth(format!(
            "{what}: {} denied it (HTTP 403 {}: {}) using {}{hint}",
            self.host,
            code.unwrap_or_else(|| "DENIED".into()),
            message.unwrap_or_else(|| body.chars().take(300).collect()),
            self.credentials.describe()
        ))
    }

    /// Turns an unsuccessful response into an error that keeps the registry's words.
    pub async fn error(&self, resp: Response, what: &str) -> Error {
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        let (code, message) = oci_error(&body);
        Error::Registry(Box::new(RegistryFailure {
            host: self.host.clone(),
            action: what.to_owned(),
            status,
            code,
            message,
            body,
        }))
    }

    pub async fn get_manifest(&self, repository: &str, reference: &str) -> Result<Manifest> {
        let what = format!("get manifest {repository}:{reference}");
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let resp = self
            .send(&format!("repository:{repository}:pull"), &what, |h| {
                h.get(&url).header(header::ACCEPT, ACCEPT)
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            let body = resp.text().await.unwrap_or_default();
            let (code, _) = oci_error(&body);
            let what = if code.as_deref() == Some("NAME_UNKNOWN") {
                format!("repository {}/{repository} does not exist", self.host)
            } else if reference.starts_with("sha256:") {
                format!(
                    "manifest {reference} not found in repository {}/{repository}",
                    self.host
                )
            } else {
                format!(
                    "tag '{reference}' not found in repository {}/{repository}",
                    self.host
                )
            };
            return Err(Error::NotFound(what));
        }
        if !resp.status().is_success() {
            return Err(self.error(resp, &what).await);
        }
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if resp
            .content_length()
            .is_some_and(|l| l as usize > MAX_MANIFEST_BYTES)
        {
            return Err(Error::Format(format!(
                "{what}: manifest is larger than 4 MiB"
            )));
        }
        let bytes = resp.bytes().await.map_err(|e| Error::Transport {
            context: what.clone(),
            source: e,
        })?;
        let m = Manifest::parse(bytes, content_type.as_deref())
            .map_err(|e| Error::Format(format!("{what}: {e}")))?;
        if reference.starts_with("sha256:") && m.digest != reference {
            return Err(Error::Integrity(format!(
                "{what}: the registry returned a manifest whose digest is {}",
                m.digest
            )));
        }
        Ok(m)
    }

    /// What a tag or digest points at, from a `HEAD` of its manifest (`Docker-Content-Digest`,
    /// `Content-Type`, `Content-Length`): one request, no body, as pollers should ask. A
    /// registry that leaves the digest out is asked with a `GET`, and the digest computed.
    pub async fn head_manifest(&self, repository: &str, reference: &str) -> Result<Descriptor> {
        let what = format!("head manifest {repository}:{reference}");
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let resp = self
            .send(&format!("repository:{repository}:pull"), &what, |h| {
                h.head(&url).header(header::ACCEPT, ACCEPT)
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(Error::NotFound(format!(
                "{reference} not found in repository {}/{repository}",
                self.host
            )));
        }
        if !resp.status().is_success() {
            return Err(self.error(resp, &what).await);
        }
        let headers = resp.headers();
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let digest =
            text("docker-content-digest").filter(|d| berth_core::validate_digest(d).is_ok());
        let (Some(digest), Some(media_type)) = (digest, text("content-type")) else {
            let m = self.get_manifest(repository, reference).await?;
            return Ok(Descriptor {
                media_type: m.media_type,
                digest: m.digest,
                size: m.bytes.len() as u64,
                platform: None,
                urls: None,
            });
        };
        if reference.starts_with("sha256:") && digest != reference {
            return Err(Error::Integrity(format!(
                "{what}: the registry answered for {digest}"
            )));
        }
        // A HEAD has no body, so the length is the header's, not the (empty) body's.
        let size = text("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        Ok(Descriptor {
            media_type,
            digest,
            size,
            platform: None,
            urls: None,
        })
    }

    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        m: &Manifest,
    ) -> Result<()> {
        let what = format!("push manifest {repository}:{reference}");
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let resp = self
            .send(&format!("repository:{repository}:pull,push"), &what, |h| {
                h.put(&url)
                    .header(header::CONTENT_TYPE, &m.media_type)
                    .body(m.bytes.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.error(resp, &what).await);
        }
        Ok(())
    }

    pub async fn has_blob(&self, repository: &str, digest: &str) -> Result<bool> {
        let what = format!("check blob {digest} in {repository}");
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let resp = self
            .send(&format!("repository:{repository}:pull,push"), &what, |h| {
                h.head(&url)
            })
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.error(resp, &what).await),
        }
    }

    /// The blob from `offset` on. Redirects (ECR's pre-signed URLs) are followed without the
    /// `Authorization` header when they leave this host.
    pub async fn get_blob(
        &self,
        repository: &str,
        digest: &str,
        offset: u64,
    ) -> Result<BlobStream> {
        let what = format!("pull blob {digest} from {repository}");
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let resp = self
            .send(&format!("repository:{repository}:pull"), &what, |h| {
                let r = h.get(&url);
                if offset > 0 {
                    r.header(header::RANGE, format!("bytes={offset}-"))
                } else {
                    r
                }
            })
            .await?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Err(Error::NotFound(format!(
                "blob {digest} not found in repository {}/{repository}",
                self.host
            )));
        }
        if !status.is_success() {
            return Err(self.error(resp, &what).await);
        }
        // A registry that ignores Range sends it all: skip what we already have.
        let skip = if status == StatusCode::PARTIAL_CONTENT {
            0
        } else {
            offset
        };
        let host = self.host.clone();
        let stream = resp.bytes_stream().map(move |r| {
            r.map_err(|e| Error::Transport {
                context: format!("pulling a blob from {host} was interrupted"),
                source: e,
            })
        });
        Ok(skip_prefix(Box::pin(stream), skip))
    }

    /// Opens an upload, or mounts the blob from `mount_from` when given (202 means "send it").
    pub async fn start_upload(
        &self,
        repository: &str,
        mount: Option<(&str, &str)>,
    ) -> Result<UploadStart> {
        let (what, path, scope) = match mount {
            Some((digest, from)) => (
                format!("mount blob {digest} from {from} into {repository}"),
                format!("/v2/{repository}/blobs/uploads/?mount={digest}&from={from}"),
                format!("repository:{repository}:pull,push repository:{from}:pull"),
            ),
            None => (
                format!("upload to {repository}"),
                format!("/v2/{repository}/blobs/uploads/"),
                format!("repository:{repository}:pull,push"),
            ),
        };
        let url = self.url(&path);
        let resp = self
            .send(&scope, &what, |h| {
                h.post(&url).header(header::CONTENT_LENGTH, "0")
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED if mount.is_some() => Ok(UploadStart::Mounted),
            StatusCode::ACCEPTED => Ok(UploadStart::Upload(self.location(resp.headers(), &what)?)),
            StatusCode::NOT_FOUND => {
                let body = resp.text().await.unwrap_or_default();
                let (code, message) = oci_error(&body);
                Err(Error::NotFound(format!(
                    "{what}: {} says {} ({}); ECR does not create repositories on push: create it first, or pass --create-repo",
                    self.host,
                    code.unwrap_or_else(|| "NAME_UNKNOWN".into()),
                    message.unwrap_or_else(|| "repository not found".into())
                )))
            }
            _ => Err(self.error(resp, &what).await),
        }
    }

    fn location(&self, headers: &HeaderMap, what: &str) -> Result<String> {
        let loc = headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error::Format(format!("{what}: the registry sent no upload Location"))
            })?;
        Ok(self.url(loc))
    }

    fn with_digest(location: &str, digest: &str) -> String {
        let sep = if location.contains('?') { '&' } else { '?' };
        format!("{location}{sep}digest={}", digest.replace(':', "%3A"))
    }

    /// Sends a streamed body of `len` bytes once, with the current credentials: it cannot be
    /// replayed, so failures go back to the caller, which resumes or restarts the blob.
    async fn send_body(
        &self,
        req: RequestBuilder,
        len: u64,
        body: BlobStream,
        what: &str,
    ) -> Result<Response> {
        let mut req = req
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, len.to_string())
            .body(reqwest::Body::wrap_stream(body));
        if let Some(auth) = self.current_authorization() {
            req = req.header(header::AUTHORIZATION, auth);
        }
        req.send().await.map_err(|e| Error::Transport {
            context: format!("{what}: the upload to {} was interrupted", self.host),
            source: e,
        })
    }

    /// Sends a whole blob in one streamed `PUT` (the caller restarts it on failure).
    pub async fn put_monolithic(
        &self,
        location: &str,
        digest: &str,
        len: u64,
        body: BlobStream,
    ) -> Result<()> {
        let what = format!("upload blob {digest}");
        let url = Self::with_digest(location, digest);
        let resp = self
            .send_body(self.http.put(&url), len, body, &what)
            .await?;
        if !resp.status().is_success() {
            return Err(self.error(resp, &what).await);
        }
        Ok(())
    }

    /// Streams `len` bytes from `offset` as one chunk; returns the next upload location. Not
    /// retried here: the body cannot be replayed, so the caller resumes from the upload status.
    pub async fn patch_chunk(
        &self,
        location: &str,
        digest: &str,
        offset: u64,
        len: u64,
        body: BlobStream,
    ) -> Result<String> {
        let what = format!("upload blob {digest}");
        let range = format!("{offset}-{}", (offset + len).saturating_sub(1));
        let patch = self
            .http
            .patch(location)
            .header(header::CONTENT_RANGE, range);
        let resp = self.send_body(patch, len, body, &what).await?;
        if resp.status() != StatusCode::ACCEPTED && !resp.status().is_success() {
            return Err(self.error(resp, &what).await);
        }
        self.location(resp.headers(), &what)
    }

    /// How many bytes of an upload the registry holds (`Range: 0-N`).
    pub async fn upload_offset(&self, location: &str) -> Result<u64> {
        let resp = self.send("", "upload status", |h| h.get(location)).await?;
        if !resp.status().is_success() {
            return Err(self.error(resp, "upload status").await);
        }
        let range = resp
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("0-0");
        let end = range
            .rsplit('-')
            .next()
            .and_then(|e| e.parse::<u64>().ok())
            .unwrap_or(0);
        // "0-0" is ambiguous (nothing or one byte); registries send it for empty uploads.
        Ok(if range.trim() == "0-0" { 0 } else { end + 1 })
    }

    /// Closes an upload with the digest the registry must verify.
    pub async fn finish_upload(&self, location: &str, digest: &str) -> Result<()> {
        let what = format!("upload blob {digest}");
        let url = Self::with_digest(location, digest);
        let resp = self
            .send("", &what, |h| {
                h.put(&url).header(header::CONTENT_LENGTH, "0")
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.error(resp, &what).await);
        }
        Ok(())
    }

    /// Cancels an upload session (`DELETE` on its location); the registry drops its bytes.
    pub async fn cancel_upload(&self, location: &str) -> Result<()> {
        let resp = self
            .send("", "cancel upload", |h| h.delete(location))
            .await?;
        if !resp.status().is_success() && resp.status() != StatusCode::NOT_FOUND {
            return Err(self.error(resp, "cancel upload").await);
        }
        Ok(())
    }

    /// Tags of a repository, following `Link` pagination.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut next = Some(format!("/v2/{repository}/tags/list?n=1000"));
        while let Some(path) = next.take() {
            let what = format!("list tags of {repository}");
            let url = self.url(&path);
            let resp = self
                .send(&format!("repository:{repository}:pull"), &what, |h| {
                    h.get(&url)
                })
                .await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Err(Error::NotFound(format!(
                    "repository {}/{repository} does not exist",
                    self.host
                )));
            }
            if !resp.status().is_success() {
                return Err(self.error(resp, &what).await);
            }
            next = resp
                .headers()
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split_once('<').and_then(|(_, r)| r.split_once('>')))
                .map(|(u, _)| u.to_owned());
            let v: Value = resp.json().await.map_err(|e| Error::Transport {
                context: what.clone(),
                source: e,
            })?;
            out.extend(
                v["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_owned)),
            );
        }
        Ok(out)
    }
}

/// Drops the first `skip` bytes of a stream.
pub(crate) fn skip_prefix(stream: BlobStream, skip: u64) -> BlobStream {
    if skip == 0 {
        return stream;
    }
    let mut remaining = skip;
    Box::pin(stream.filter_map(move |chunk| {
        let out = match chunk {
            Ok(b) if remaining >= b.len() as u64 => {
                remaining -= b.len() as u64;
                None
            }
            Ok(b) => {
                let cut = remaining as usize;
                remaining = 0;
                Some(Ok(b.slice(cut..)))
            }
            Err(e) => Some(Err(e)),
        };
        std::future::ready(out)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(scheme, "bearer");
        assert_eq!(
            params[0],
            ("realm".into(), "https://auth.example/token".into())
        );
        assert_eq!(
            params[2],
            ("scope".into(), "repository:a/b:pull,push".into())
        );
        let (scheme, params) =
            parse_challenge(r#"Basic realm="http://127.0.0.1:5080/",service="ecr.amazonaws.com""#);
        assert_eq!(scheme, "basic");
        assert_eq!(params.len(), 2);
    }

    #[test]
    fn loopback_hosts_use_plain_http() {
        assert!(is_loopback("127.0.0.1:5080"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("registry.example:5000"));
    }
}
