//! The credential broker: turns an ECR integration into registry credentials through the AWS SDK
//! for Rust (AssumeRole when a role is set, then GetAuthorizationToken), caches them until half
//! their life has passed, shares one AWS call among concurrent requests, and explains failures in
//! words a person can act on. It also runs "Test connection", whose last steps read the role's
//! trust policy (`iam:GetRole`) for each GitOps runtime's cluster role.
//!
//! This and `berth-s3` (the local ECR's object store) are the only crates that touch the AWS SDK. It must not know about HTTP routing, SQL or
//! the CLI: callers hand it the integration and a way to open its secrets.

#![forbid(unsafe_code)]
// No function over 100 lines in `src/`: a longer one is doing two jobs.
#![deny(clippy::too_many_lines)]

mod diagnose;
mod shared;
mod trust;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_ecr::config::Region;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use base64::Engine;
use berth_core::{
    AwsAuth, EcrConfig, Integration, IntegrationConfig, RoleSource, SecretField, Secrets,
};
use secrecy::{ExposeSecret, SecretString};

pub use diagnose::{Diagnosis, Step, StepStatus, TestReport};
pub use shared::{SharedCache, SharedFetch};
pub use trust::RuntimeTrust;

/// Registry credentials for one integration and region.
#[derive(Clone)]
pub struct RegistryCredentials {
    /// `host[:port]` to log in to.
    pub registry: String,
    pub proxy_endpoint: String,
    pub username: String,
    pub password: SecretString,
    /// Epoch seconds.
    pub expires_at: i64,
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCredentials")
            .field("registry", &self.registry)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// AWS credentials as a job's environment carries them (pipeline `integration` resources).
#[derive(Clone)]
pub struct AwsKeys {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    /// Set for temporary credentials (an assumed role, or ambient session credentials).
    pub session_token: Option<SecretString>,
}

impl From<&Credentials> for AwsKeys {
    fn from(c: &Credentials) -> Self {
        AwsKeys {
            access_key_id: c.access_key_id().to_owned(),
            secret_access_key: SecretString::from(c.secret_access_key().to_owned()),
            session_token: c.session_token().map(|t| SecretString::from(t.to_owned())),
        }
    }
}

/// What a CI job gets for its own AWS calls.
#[derive(Clone)]
pub struct JobCredentials {
    pub keys: AwsKeys,
    /// Epoch seconds; `None` only for long-lived keys an admin chose to export.
    pub expires_at: Option<i64>,
}

fn epoch_of(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Why the broker could not produce credentials: what went wrong, and what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BrokerError {
    pub diagnosis: Diagnosis,
    pub message: String,
    pub hint: String,
}

impl BrokerError {
    pub(crate) fn new(
        diagnosis: Diagnosis,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        BrokerError {
            diagnosis,
            message: message.into(),
            hint: hint.into(),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    integration_id: String,
    version: i64,
    region: String,
}

struct Cached {
    credentials: RegistryCredentials,
    /// Reuse until half the token's life has passed, as amazon-ecr-credential-helper does.
    refresh_at: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// How long the broker waits on AWS before it gives up with a diagnosis.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// One attempt (the SDK retries throttling and 5xx up to 3 attempts).
    pub attempt: Duration,
    /// All attempts together.
    pub operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            attempt: Duration::from_secs(10),
            operation: Duration::from_secs(30),
        }
    }
}

pub struct Broker {
    http: aws_sdk_ecr::config::SharedHttpClient,
    probe: reqwest::Client,
    timeouts: Timeouts,
    cache: Mutex<HashMap<CacheKey, Slot>>,
    /// The level replicas share, asked on a miss of `cache` (PostgreSQL deployments).
    shared: Option<Arc<dyn SharedCache>>,
    token_calls: AtomicU64,
}

impl Default for Broker {
    fn default() -> Self {
        Self::new()
    }
}

/// With an endpoint override, a name that does not resolve is the endpoint's fault, not the
/// region's.
fn blame_endpoint(e: BrokerError, endpoint: Option<&str>) -> BrokerError {
    match endpoint {
        Some(ep)
            if e.diagnosis == Diagnosis::BadRegion && e.message.contains("does not resolve") =>
        {
            BrokerError::new(
                Diagnosis::EndpointUnreachable,
                format!(
                    "the endpoint {ep} is unreachable: the host name does not resolve ({})",
                    e.message
                ),
                "check the integration's endpoint URL, and DNS from the Berth server",
            )
        }
        _ => e,
    }
}

fn epoch_time(secs: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
}

/// What to do when sealed secrets do not open: the same words wherever it happens.
pub const SECRETS_HINT: &str = "the server's master key no longer opens them (rotated or replaced by another process?): restart Berth with the current key file or BERTH_MASTER_KEY";

/// How long the sessions handed to CI jobs last (STS's default for AssumeRole).
pub const JOB_SESSION_SECONDS: i32 = 3600;

fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Keys from the sealed secrets, or a clear error when they are missing.
fn keys(secrets: &Secrets) -> Result<Credentials, BrokerError> {
    let id = secrets.get(&SecretField::AwsAccessKeyId);
    let secret = secrets.get(&SecretField::AwsSecretAccessKey);
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Credentials::new(
            id.expose_secret(),
            secret.expose_secret(),
            None,
            None,
            "berth-integration",
        )),
        _ => Err(BrokerError::new(
            Diagnosis::MissingSecret,
            "the integration has no stored access keys",
            "set them with `berth integration edit NAME --access-key-id … --secret-access-key-stdin`",
        )),
    }
}

impl Broker {
    pub fn new() -> Broker {
        Self::with_timeouts(Timeouts::default())
    }

    pub fn with_timeouts(timeouts: Timeouts) -> Broker {
        // The HTTP clients here use rustls with ring; make sure it is the process's provider
        // (a no-op when the binary installed it already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let probe = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.attempt)
            .build()
            .expect("a plain HTTP client builds");
        Broker {
            http,
            probe,
            timeouts,
            cache: Mutex::new(HashMap::new()),
            shared: None,
            token_calls: AtomicU64::new(0),
        }
    }

    /// Adds the cache level replicas share: across all of them, one GetAuthorizationToken per
    /// integration version, region and half-life.
    pub fn with_shared_cache(mut self, shared: Arc<dyn SharedCache>) -> Broker {
        self.shared = Some(shared);
        self
    }

    /// How many GetAuthorizationToken calls this broker made (for tests and metrics).
    pub fn token_calls(&self) -> u64 {
        self.token_calls.load(Ordering::Relaxed)
    }

    /// Drops every cached credential of an integration (after an edit or a delete).
    pub fn invalidate(&self, integration_id: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| k.integration_id != integration_id);
    }

    async fn sdk_config(
        &self,
        region: &str,
        endpoint: Option<&str>,
        credentials: Option<SharedCredentialsProvider>,
    ) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .http_client(self.http.clone())
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(self.timeouts.connect)
                    .operation_attempt_timeout(self.timeouts.attempt)
                    .operation_timeout(self.timeouts.operation)
                    .build(),
            );
        if let Some(e) = endpoint {
            loader = loader.endpoint_url(e);
        }
        if let Some(c) = credentials {
            loader = loader.credentials_provider(c);
        }
        loader.load().await
    }

    /// Resolves the AWS credentials the integration's auth mode describes; returns them and,
    /// when a role was assumed, its ARN.
    async fn aws_credentials(
        &self,
        name: &str,
        ecr: &EcrConfig,
        region: &str,
        secrets: &Secrets,
    ) -> Result<(SharedCredentialsProvider, Option<String>), BrokerError> {
        let endpoint = ecr.endpoint.as_deref();
        match &ecr.auth {
            AwsAuth::AccessKeys { .. } => {
                Ok((SharedCredentialsProvider::new(keys(secrets)?), None))
            }
            AwsAuth::Ambient => {
                let config = self.sdk_config(region, endpoint, None).await;
                config.credentials_provider().map(|c| (c, None)).ok_or_else(|| {
                    BrokerError::new(
                        Diagnosis::NoCredentials,
                        "no AWS credentials found in the environment of the Berth server",
                        "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, IRSA or an instance role for the server, or give the integration access keys",
                    )
                })
            }
            AwsAuth::AssumeRole {
                role_arn,
                external_id,
                session_name,
                source,
            } => {
                let source_creds = match source {
                    RoleSource::AccessKeys { .. } => {
                        Some(SharedCredentialsProvider::new(keys(secrets)?))
                    }
                    RoleSource::Ambient => None,
                };
                let config = self.sdk_config(region, endpoint, source_creds).await;
                let sts = aws_sdk_sts::Client::new(&config);
                let session = session_name
                    .clone()
                    .unwrap_or_else(|| format!("berth-{name}"));
                let out = sts
                    .assume_role()
                    .role_arn(role_arn)
                    .role_session_name(session)
                    .set_external_id(external_id.clone())
                    .send()
                    .await
                    .map_err(|e| blame_endpoint(diagnose::sts_error(e, role_arn), endpoint))?;
                let c = out.credentials().ok_or_else(|| {
                    BrokerError::new(
                        Diagnosis::Other,
                        "STS returned no credentials",
                        "retry; if it persists, check the STS endpoint",
                    )
                })?;
                let creds = Credentials::new(
                    c.access_key_id(),
                    c.secret_access_key(),
                    Some(c.session_token().to_owned()),
                    Some(epoch_time(c.expiration().secs())),
                    "berth-assume-role",
                );
                Ok((
                    SharedCredentialsProvider::new(creds),
                    Some(role_arn.clone()),
                ))
            }
        }
    }

    async fn fetch(
        &self,
        name: &str,
        ecr: &EcrConfig,
        region: &str,
        secrets: &Secrets,
    ) -> Result<RegistryCredentials, BrokerError> {
        let (creds, _) = self.aws_credentials(name, ecr, region, secrets).await?;
        self.authorization_token(ecr, region, creds).await
    }

    async fn authorization_token(
        &self,
        ecr: &EcrConfig,
        region: &str,
        creds: SharedCredentialsProvider,
    ) -> Result<RegistryCredentials, BrokerError> {
        let config = self
            .sdk_config(region, ecr.endpoint.as_deref(), Some(creds))
            .await;
        let client = aws_sdk_ecr::Client::new(&config);
        self.token_calls.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let out = client.get_authorization_token().send().await.map_err(|e| {
            blame_endpoint(
                diagnose::ecr_error(e, started.elapsed(), region),
                ecr.endpoint.as_deref(),
            )
        })?;
        let data = out.authorization_data().first().ok_or_else(|| {
            BrokerError::new(
                Diagnosis::Other,
                "ECR returned no authorization data",
                "retry; if it persists, check the endpoint",
            )
        })?;
        let decoded = data
            .authorization_token()
            .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                BrokerError::new(
                    Diagnosis::Other,
                    "ECR returned an unreadable authorization token",
                    "check the endpoint",
                )
            })?;
        let (username, password) = decoded.split_once(':').ok_or_else(|| {
            BrokerError::new(
                Diagnosis::Other,
                "ECR's authorization token is not user:password",
                "check the endpoint",
            )
        })?;
        let proxy_endpoint = data.proxy_endpoint().unwrap_or_default().to_owned();
        let registry = proxy_endpoint
            .split_once("://")
            .map(|(_, h)| h)
            .unwrap_or(&proxy_endpoint)
            .trim_end_matches('/')
            .to_owned();
        Ok(RegistryCredentials {
            registry,
            proxy_endpoint,
            username: username.to_owned(),
            password: SecretString::from(password.to_owned()),
            expires_at: data
                .expires_at()
                .map(|t| t.secs())
                .unwrap_or_else(|| now_epoch() + 12 * 3600),
        })
    }

    /// Registry credentials for the integration in `region` (its own when `None`), from the cache
    /// when fresh. `secrets` opens the sealed secrets; it runs only on a cache miss. Concurrent
    /// requests for the same integration and region wait for one AWS call.
    pub async fn credentials<F, Fut, E>(
        &self,
        integration: &Integration,
        region: Option<&str>,
        secrets: F,
    ) -> Result<RegistryCredentials, BrokerError>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<Secrets, E>> + Send,
        E: std::fmt::Display,
    {
        let IntegrationConfig::Ecr(ecr) = &integration.config;
        let region = region.unwrap_or(&ecr.region);
        berth_core::validate_region("region", region).map_err(|e| {
            BrokerError::new(
                Diagnosis::BadRegion,
                e.to_string(),
                "use a region code such as us-east-1",
            )
        })?;
        let key = CacheKey {
            integration_id: integration.id.clone(),
            version: integration.meta.version,
            region: region.to_owned(),
        };
        let slot = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.credentials.clone());
        }
        let fetch = async {
            let secrets = secrets().await.map_err(|e| {
                BrokerError::new(
                    Diagnosis::SecretsUnavailable,
                    format!("cannot open the integration's secrets: {e}"),
                    SECRETS_HINT,
                )
            })?;
            let fresh = self
                .fetch(integration.name.as_str(), ecr, region, &secrets)
                .await?;
            // Reuse until half the token's life has passed, as amazon-ecr-credential-helper does.
            let now = now_epoch();
            let refresh_at = now + (fresh.expires_at - now).max(0) / 2;
            Ok((fresh, refresh_at))
        };
        let (fresh, refresh_at) = match &self.shared {
            Some(shared) => Self::through_shared(shared.as_ref(), &key, fetch).await?,
            None => fetch.await?,
        };
        *guard = Some(Cached {
            credentials: fresh.clone(),
            refresh_at: Instant::now()
                + Duration::from_secs((refresh_at - now_epoch()).max(0) as u64),
        });
        Ok(fresh)
    }

    /// Runs `fetch` through the shared level: another replica's token when it has a fresh one,
    /// else this replica fetches while the others wait. A token this replica fetched is served
    /// even when storing it failed; a shared level that fails before fetching is reported.
    async fn through_shared(
        shared: &dyn SharedCache,
        key: &CacheKey,
        fetch: impl Future<Output = Result<(RegistryCredentials, i64), BrokerError>> + Send,
    ) -> Result<(RegistryCredentials, i64), BrokerError> {
        let text_key = format!("{}|{}|{}", key.integration_id, key.version, key.region);
        let failure = Mutex::new(None);
        let outcome = Mutex::new(None);
        let shared_fetch: SharedFetch<'_> = Box::pin(async {
            match fetch.await {
                Ok((c, refresh_at)) => {
                    let text = shared::encode(&c, refresh_at);
                    *outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some((c, refresh_at));
                    Some((text, refresh_at))
                }
                Err(e) => {
                    *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    None
                }
            }
        });
        let answer = shared
            .get_or_fetch(&text_key, &key.integration_id, shared_fetch)
            .await;
        let fetched = outcome.into_inner().unwrap_or_else(|e| e.into_inner());
        let failed = failure.into_inner().unwrap_or_else(|e| e.into_inner());
        match (answer, fetched, failed) {
            (_, Some(mine), _) => Ok(mine),
            (_, None, Some(e)) => Err(e),
            (Ok(Some(text)), None, None) => shared::decode(&text).ok_or_else(|| {
                BrokerError::new(
                    Diagnosis::Other,
                    "the shared token cache holds an unreadable entry",
                    "retry; the entry is replaced on the next fetch",
                )
            }),
            (Ok(None), None, None) => Err(BrokerError::new(
                Diagnosis::Other,
                "the shared token cache returned nothing",
                "retry",
            )),
            (Err(reason), None, None) => {
                tracing::warn!(%reason, "the shared token cache failed before fetching; the token is not shared");
                Err(BrokerError::new(
                    Diagnosis::Other,
                    format!("the shared token cache is unavailable: {reason}"),
                    "retry in a few seconds; check the database",
                ))
            }
        }
    }

    /// AWS credentials for a CI job's own AWS calls (pipeline `integration` and `cliConfig`
    /// resources): a session of the role for role integrations, a `GetSessionToken` session of
    /// the keys for access-key integrations, the keys themselves only where an admin turned on
    /// `export_long_lived_keys`. The server's own (ambient) identity is never handed out.
    pub async fn job_credentials(
        &self,
        integration: &Integration,
        secrets: &Secrets,
    ) -> Result<JobCredentials, BrokerError> {
        let IntegrationConfig::Ecr(ecr) = &integration.config;
        match &ecr.auth {
            AwsAuth::Ambient => Err(BrokerError::new(
                Diagnosis::NotExportable,
                format!(
                    "integration '{}' uses the Berth server's own AWS identity (auth.mode ambient), which is never handed to jobs",
                    integration.name
                ),
                "give the integration a role (auth.mode assume_role, source ambient): jobs then get short-lived sessions of that role",
            )),
            AwsAuth::AccessKeys { .. } if ecr.export_long_lived_keys => {
                let keys = keys(secrets)?;
                Ok(JobCredentials {
                    keys: AwsKeys::from(&keys),
                    expires_at: None,
                })
            }
            AwsAuth::AccessKeys { .. } => self.session_of_keys(ecr, secrets).await,
            AwsAuth::AssumeRole { .. } => {
                use aws_credential_types::provider::ProvideCredentials;
                let (provider, _) = self
                    .aws_credentials(integration.name.as_str(), ecr, &ecr.region, secrets)
                    .await?;
                let c = provider.provide_credentials().await.map_err(|e| {
                    BrokerError::new(
                        Diagnosis::NoCredentials,
                        format!("the role's session has no credentials: {e}"),
                        "check the integration's auth settings",
                    )
                })?;
                Ok(JobCredentials {
                    keys: AwsKeys::from(&c),
                    expires_at: c.expiry().map(epoch_of),
                })
            }
        }
    }

    /// STS GetSessionToken with the integration's keys: the same identity, short-lived.
    async fn session_of_keys(
        &self,
        ecr: &EcrConfig,
        secrets: &Secrets,
    ) -> Result<JobCredentials, BrokerError> {
        let provider = SharedCredentialsProvider::new(keys(secrets)?);
        let config = self
            .sdk_config(&ecr.region, ecr.endpoint.as_deref(), Some(provider))
            .await;
        let out = aws_sdk_sts::Client::new(&config)
            .get_session_token()
            .duration_seconds(JOB_SESSION_SECONDS)
            .send()
            .await
            .map_err(|e| blame_endpoint(diagnose::session_error(e), ecr.endpoint.as_deref()))?;
        let c = out.credentials().ok_or_else(|| {
            BrokerError::new(
                Diagnosis::Other,
                "STS returned no credentials",
                "retry; if it persists, check the STS endpoint",
            )
        })?;
        Ok(JobCredentials {
            keys: AwsKeys {
                access_key_id: c.access_key_id().to_owned(),
                secret_access_key: SecretString::from(c.secret_access_key().to_owned()),
                session_token: Some(SecretString::from(c.session_token().to_owned())),
            },
            expires_at: Some(c.expiration().secs()),
        })
    }

    /// Creates an ECR repository through the integration (ECR does not create on push).
    /// Returns `false` when it already exists.
    pub async fn create_repository(
        &self,
        integration: &Integration,
        secrets: &Secrets,
        region: &str,
        repository: &str,
    ) -> Result<bool, BrokerError> {
        use aws_sdk_ecr::operation::create_repository::CreateRepositoryError;
        let IntegrationConfig::Ecr(ecr) = &integration.config;
        let (creds, _) = self
            .aws_credentials(integration.name.as_str(), ecr, region, secrets)
            .await?;
        let config = self
            .sdk_config(region, ecr.endpoint.as_deref(), Some(creds))
            .await;
        let client = aws_sdk_ecr::Client::new(&config);
        let started = Instant::now();
        let mut req = client.create_repository().repository_name(repository);
        if let Some(id) = &ecr.registry_id {
            req = req.registry_id(id);
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(CreateRepositoryError::RepositoryAlreadyExistsException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(blame_endpoint(
                diagnose::ecr_error(e, started.elapsed(), region),
                ecr.endpoint.as_deref(),
            )),
        }
    }

    /// Test connection's `registry` step: the registry accepts the token.
    async fn probe_registry(&self, token: &RegistryCredentials, report: &mut TestReport) {
        let t = Instant::now();
        let url = format!("{}/v2/", token.proxy_endpoint.trim_end_matches('/'));
        match self
            .probe
            .get(&url)
            .basic_auth(&token.username, Some(token.password.expose_secret()))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => report.ok(
                "registry",
                &format!("{url} answered {}", r.status().as_u16()),
                t,
            ),
            Ok(r) => report.fail(
                "registry",
                &BrokerError::new(
                    Diagnosis::Registry,
                    format!("{url} answered {} to the token", r.status().as_u16()),
                    "check that the endpoint's registry is the one the token is for",
                ),
                t,
            ),
            Err(e) => report.fail(
                "registry",
                &diagnose::unreachable(&url, &e.to_string(), t.elapsed()),
                t,
            ),
        }
    }

    /// Test connection's `describe_repositories` step: the credentials may list repositories.
    async fn try_describe(
        &self,
        ecr: &EcrConfig,
        region: &str,
        creds: SharedCredentialsProvider,
        report: &mut TestReport,
    ) {
        let t = Instant::now();
        let config = self
            .sdk_config(region, ecr.endpoint.as_deref(), Some(creds))
            .await;
        match aws_sdk_ecr::Client::new(&config)
            .describe_repositories()
            .max_results(1)
            .send()
            .await
        {
            Ok(_) => report.ok("describe_repositories", "DescribeRepositories allowed", t),
            Err(e) => report.fail(
                "describe_repositories",
                &blame_endpoint(
                    diagnose::ecr_error(e, t.elapsed(), region),
                    ecr.endpoint.as_deref(),
                ),
                t,
            ),
        }
    }

    /// "Test connection": each step in order, ok / failed / skipped, with reasons and hints, then
    /// for each runtime the integration is shared with whether its cluster role may assume the
    /// integration's role.
    pub async fn test_connection(
        &self,
        name: &str,
        ecr: &EcrConfig,
        secrets: &Secrets,
        region: Option<&str>,
        runtimes: &[RuntimeTrust],
    ) -> TestReport {
        let mut report = self.connection_steps(name, ecr, secrets, region).await;
        self.check_trust(ecr, secrets, runtimes, &mut report).await;
        report
    }

    /// The steps from the credentials to the registry and the repository listing.
    async fn connection_steps(
        &self,
        name: &str,
        ecr: &EcrConfig,
        secrets: &Secrets,
        region: Option<&str>,
    ) -> TestReport {
        let region = region.unwrap_or(&ecr.region).to_owned();
        let mut report = TestReport::default();
        let started = Instant::now();
        let role = matches!(ecr.auth, AwsAuth::AssumeRole { .. });
        let creds = match self.aws_credentials(name, ecr, &region, secrets).await {
            Ok((creds, _)) => {
                report.ok("credentials", "AWS credentials resolved", started);
                if role {
                    report.ok("assume_role", "role assumed", started);
                } else {
                    report.skip("assume_role", "no role to assume");
                }
                creds
            }
            Err(e) => {
                let step = if role
                    && !matches!(
                        e.diagnosis,
                        Diagnosis::MissingSecret | Diagnosis::NoCredentials
                    ) {
                    "assume_role"
                } else {
                    "credentials"
                };
                if step == "assume_role" {
                    report.ok("credentials", "AWS credentials resolved", started);
                }
                report.fail(step, &e, started);
                report.skip_rest(&[
                    "assume_role",
                    "authorization_token",
                    "registry",
                    "describe_repositories",
                ]);
                return report;
            }
        };
        let t = Instant::now();
        let token = match self.authorization_token(ecr, &region, creds.clone()).await {
            Ok(token) => {
                let until = time::OffsetDateTime::from_unix_timestamp(token.expires_at)
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_else(|| token.expires_at.to_string());
                report.ok(
                    "authorization_token",
                    &format!("token for {} valid until {until}", token.registry),
                    t,
                );
                token
            }
            Err(e) => {
                report.fail("authorization_token", &e, t);
                report.skip_rest(&["registry", "describe_repositories"]);
                return report;
            }
        };
        self.probe_registry(&token, &mut report).await;
        self.try_describe(ecr, &region, creds, &mut report).await;
        report
    }
}
