//! Image resources' side of a replica: reading the digest a tag points at through an integration
//! (so a CI job reporting a version never holds registry credentials for it), and the poller
//! that reads followed tags on their schedule — one registry request per distinct tag however
//! many resources follow it, backing off on failures, claimed under a lease so replicas share
//! the work.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use berth_core::{ImageRef, Integration, IntegrationConfig};
use berth_registry::{Credentials, Descriptor, RegistryClient, StaticCredentials};
use berth_store::{ImageResource, Project, Recorded, Sighting, VersionSource};
use secrecy::ExposeSecret;
use time::OffsetDateTime;

use crate::AppState;
use crate::error::ApiError;

/// The longest a failing resource waits between polls.
const MAX_BACKOFF_SECONDS: i64 = 3600;
/// How long a claimed poll stays taken before another replica may take it.
const POLL_LEASE_SECONDS: i64 = 120;

/// The integration a project's resource reads through: one its subscription may use.
pub(crate) async fn usable_integration(
    state: &AppState,
    project: &Project,
    name: &str,
) -> Result<Integration, ApiError> {
    crate::policy::found(state.store.get_integration(name).await)?
        .filter(|i| i.is_assigned_to(&project.subscription))
        .ok_or_else(|| {
            ApiError::invalid(
                "integration",
                format!(
                    "integration '{name}' does not exist or is not assigned to subscription {}",
                    project.subscription
                ),
            )
        })
}

/// What `source_name:tag` points at now, read with one `HEAD` through the integration.
pub(crate) async fn read_tag(
    state: &AppState,
    integration: &Integration,
    source_name: &str,
    tag: &str,
) -> Result<Descriptor, ApiError> {
    let image = ImageRef::parse(&format!("{source_name}:{tag}"))
        .map_err(|e| ApiError::invalid("source_name", e.to_string()))?;
    let client = client_for(state, integration, &image.registry, "source_name").await?;
    client
        .head_manifest(&image.repository, tag)
        .await
        .map_err(|e| registry_error(&e, "version_name"))
}

/// A registry client for `host` with the integration's credentials; `field` is the request's
/// field that named the host, for the error when the integration does not serve it.
async fn client_for(
    state: &AppState,
    integration: &Integration,
    host: &str,
    field: &str,
) -> Result<Arc<RegistryClient>, ApiError> {
    let IntegrationConfig::Ecr(ecr) = &integration.config;
    let region = berth_core::serves_host(ecr, host).ok_or_else(|| {
        ApiError::invalid(
            field,
            format!(
                "integration {} does not serve registry {host}",
                integration.name
            ),
        )
    })?;
    let store = state.store.clone();
    let id = integration.id.clone();
    let creds = state
        .broker
        .credentials(integration, Some(&region), || async move {
            store.open_secrets(&id).await
        })
        .await?;
    let source = StaticCredentials(
        Credentials {
            username: creds.username.clone(),
            password: creds.password.expose_secret().to_owned().into(),
        },
        format!("integration {}", integration.name),
    );
    RegistryClient::new(host, Arc::new(source), false)
        .map(Arc::new)
        .map_err(|e| registry_error(&e, field))
}

/// A registry's refusal as the API says it: the image is not there (422, naming `field`), or
/// the registry failed (502) — in the registry client's words, which hold no secret.
fn registry_error(e: &berth_registry::Error, field: &str) -> ApiError {
    match e {
        berth_registry::Error::NotFound(what) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "image_not_found",
            what.clone(),
        )
        .on_field(field),
        other => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "registry_failed",
            other.to_string(),
        ),
    }
}

/// Records that `resource`'s `tag` is at `digest`.
pub(crate) async fn record(
    state: &AppState,
    resource: &ImageResource,
    tag: &str,
    digest: &str,
    source: VersionSource,
    pushed_at: OffsetDateTime,
    properties: &BTreeMap<String, String>,
) -> Result<Recorded, ApiError> {
    let recorded = state
        .store
        .record_sighting(
            &resource.id,
            &Sighting {
                version_name: tag,
                digest,
                source,
                pushed_at,
                properties,
            },
        )
        .await?;
    if let Recorded::New(v) = &recorded {
        tracing::info!(target: "berth::audit", project = %resource.project, resource = %resource.name,
            version = v.version_number, tag, digest, source = source.as_str(), "image resource version recorded");
    }
    Ok(recorded)
}

/// Reads followed tags on their schedule.
pub struct Poller {
    state: AppState,
}

impl Poller {
    pub fn new(state: AppState) -> Arc<Poller> {
        Arc::new(Poller { state })
    }

    /// Polls until the task is aborted, checking for due resources every second.
    pub async fn run(self: Arc<Self>) {
        loop {
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e.body.message, "image resource polling round failed");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// One round: the due resources, grouped so each distinct (integration, repository, tag)
    /// is read once; a successful read also serves every other resource following that tag,
    /// whose next poll then moves on too, so a tag is read once per interval however many
    /// projects follow it. Returns how many registry reads it made.
    pub async fn round(&self) -> Result<usize, ApiError> {
        let started = std::time::Instant::now();
        let now = OffsetDateTime::now_utc();
        let due = self
            .state
            .store
            .claim_polls(now, POLL_LEASE_SECONDS)
            .await?;
        let claimed = due.len();
        let mut groups: HashMap<(String, String, String), Vec<ImageResource>> = HashMap::new();
        for r in due {
            let key = (
                r.integration.to_ascii_lowercase(),
                r.source_name.clone(),
                r.tag.clone(),
            );
            groups.entry(key).or_default().push(r);
        }
        let reads = groups.len();
        let mut served = 0;
        for ((integration, source_name, tag), mut resources) in groups {
            let read = self.read(&integration, &source_name, &tag).await;
            if read.is_ok() {
                let followers = self
                    .state
                    .store
                    .followers(&integration, &source_name, &tag)
                    .await?;
                let more: Vec<ImageResource> = followers
                    .into_iter()
                    .filter(|f| !resources.iter().any(|r| r.id == f.id))
                    .collect();
                resources.extend(more);
            }
            served += resources.len();
            for r in resources {
                self.finish(&r, &read).await?;
            }
        }
        if claimed > 0 {
            let millis = started.elapsed().as_millis() as u64;
            tracing::info!(claimed, served, reads, millis, "image resources polled");
        }
        Ok(reads)
    }

    async fn read(
        &self,
        integration: &str,
        source_name: &str,
        tag: &str,
    ) -> Result<String, String> {
        let integration = crate::policy::found(self.state.store.get_integration(integration).await)
            .map_err(|e| e.body.message.clone())?
            .ok_or_else(|| format!("integration {integration} no longer exists"))?;
        read_tag(&self.state, &integration, source_name, tag)
            .await
            .map(|d| d.digest)
            .map_err(|e| e.body.message.clone())
    }

    /// Records the read for one resource and schedules its next poll: its interval after a
    /// success, doubling from it after each failure in a row, at most an hour.
    async fn finish(
        &self,
        r: &ImageResource,
        read: &Result<String, String>,
    ) -> Result<(), ApiError> {
        let now = OffsetDateTime::now_utc();
        let (error, wait) = match read {
            Ok(digest) => {
                record(
                    &self.state,
                    r,
                    &r.tag,
                    digest,
                    VersionSource::Poll,
                    now,
                    &BTreeMap::new(),
                )
                .await?;
                (None, r.poll_seconds)
            }
            Err(why) => {
                let exponent = (r.poll_failures + 1).clamp(1, 16) as u32;
                let wait = r
                    .poll_seconds
                    .saturating_mul(1 << exponent)
                    .min(MAX_BACKOFF_SECONDS);
                tracing::warn!(project = %r.project, resource = %r.name, error = %why, retry_in = wait, "image resource poll failed");
                (Some(why.as_str()), wait)
            }
        };
        self.state
            .store
            .finish_poll(&r.id, error, now + time::Duration::seconds(wait))
            .await?;
        Ok(())
    }
}

/// Which version of an image resource a job sees: the one pinned by number or tag, or else the
/// newest.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pin {
    pub number: Option<i64>,
    pub name: Option<String>,
}

/// The version a pipeline job of `project` sees for the image resource its `shippable.yml`
/// defines, registering (or updating) the resource from the file first. With nothing recorded
/// and nothing pinned the tag is read now; when that read fails there is no version yet.
pub(crate) async fn job_version(
    state: &AppState,
    project: &Project,
    integration: &Integration,
    name: &str,
    source_name: &str,
    tag: &str,
    pin: &Pin,
) -> Result<Option<berth_store::ImageVersion>, ApiError> {
    let resource = defined(state, project, integration, name, source_name, tag).await?;
    let found = state
        .store
        .find_version(&resource.id, pin.number, pin.name.as_deref())
        .await?;
    if found.is_some() {
        return Ok(found);
    }
    if let Some(n) = pin.number {
        return Err(ApiError::invalid(
            "version_number",
            format!("resource {name} has no version {n}"),
        ));
    }
    if let Some(t) = &pin.name {
        return Err(ApiError::invalid(
            "version_name",
            format!("resource {name} has no version tagged {t}"),
        ));
    }
    match read_tag(state, integration, source_name, tag).await {
        Ok(read) => {
            let now = OffsetDateTime::now_utc();
            let recorded = record(
                state,
                &resource,
                tag,
                &read.digest,
                VersionSource::Poll,
                now,
                &BTreeMap::new(),
            )
            .await?;
            Ok(Some(recorded.version().clone()))
        }
        Err(e) => {
            tracing::info!(project = %project.name, resource = name, reason = %e.body.message, "image resource has no version yet");
            Ok(None)
        }
    }
}

/// The stored resource, made to match what the file defines (its poll interval is kept).
async fn defined(
    state: &AppState,
    project: &Project,
    integration: &Integration,
    name: &str,
    source_name: &str,
    tag: &str,
) -> Result<ImageResource, ApiError> {
    let current = crate::policy::found(state.store.get_resource(&project.id, name).await)?;
    if let Some(r) = current.filter(|r| {
        r.integration
            .eq_ignore_ascii_case(integration.name.as_str())
            && r.source_name == source_name
            && r.tag == tag
    }) {
        return Ok(r);
    }
    let input = berth_store::ResourceInput {
        name: name.to_owned(),
        integration: integration.name.to_string(),
        source_name: source_name.to_owned(),
        tag: tag.to_owned(),
        poll_seconds: None,
    };
    Ok(state
        .store
        .put_resource(&project.id, &input, "shippable.yml")
        .await?)
}

/// What Berth read about an image a CI build reported.
pub(crate) struct Inspected {
    pub digest: String,
    /// `registry/repository`.
    pub repository: String,
    pub tag: Option<String>,
    pub media_type: String,
    pub size: u64,
    pub platforms: Vec<String>,
    pub created: Option<String>,
    pub integration: String,
}

/// The integration of the project's subscription that serves `host`.
async fn serving_integration(
    state: &AppState,
    project: &Project,
    host: &str,
) -> Result<Integration, ApiError> {
    let mut query = berth_store::IntegrationQuery {
        limit: 500,
        subscription: Some(project.subscription.to_string()),
        ..Default::default()
    };
    loop {
        let page = state.store.list_integrations(&query).await?;
        if let Some(i) = page.items.into_iter().find(|i| {
            let IntegrationConfig::Ecr(ecr) = &i.config;
            berth_core::serves_host(ecr, host).is_some()
        }) {
            return Ok(i);
        }
        match page.next_after {
            Some(after) => query.after = Some(after),
            None => {
                return Err(ApiError::invalid(
                    "image",
                    format!(
                        "no integration of subscription {} serves registry {host}: name one with integration",
                        project.subscription
                    ),
                ));
            }
        }
    }
}

/// Reads an image CI reported — its manifest (and config, for its platform and creation
/// time) — through an integration the project may use.
pub(crate) async fn inspect(
    state: &AppState,
    project: &Project,
    integration: Option<&str>,
    image: &str,
) -> Result<Inspected, ApiError> {
    let r = ImageRef::parse(image).map_err(|e| ApiError::invalid("image", e.to_string()))?;
    let integration = match integration {
        Some(name) => usable_integration(state, project, name).await?,
        None => serving_integration(state, project, &r.registry).await?,
    };
    let client = client_for(state, &integration, &r.registry, "image").await?;
    let reference = r
        .digest
        .clone()
        .or_else(|| r.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let remote = berth_registry::RemoteImage::new(client, &r.repository, &reference);
    let fail = |e: berth_registry::Error| registry_error(&e, "image");
    let m = berth_registry::Source::root(&remote).await.map_err(fail)?;
    let (platforms, created, size) = if m.manifests.is_empty() {
        let config = match &m.config {
            Some(d) => Some(
                berth_registry::read_config(&remote, d)
                    .await
                    .map_err(fail)?,
            ),
            None => None,
        };
        let text = |k: &str| {
            config
                .as_ref()
                .and_then(|c| c[k].as_str())
                .map(str::to_owned)
        };
        let platform = match (text("os"), text("architecture")) {
            (Some(os), Some(arch)) => vec![format!("{os}/{arch}")],
            _ => Vec::new(),
        };
        let layers: u64 = m.layers.iter().map(|l| l.size).sum();
        let config_size = m.config.as_ref().map_or(0, |c| c.size);
        (
            platform,
            text("created"),
            m.bytes.len() as u64 + config_size + layers,
        )
    } else {
        let platforms = m
            .manifests
            .iter()
            .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
            .collect();
        let children: u64 = m.manifests.iter().map(|d| d.size).sum();
        (platforms, None, m.bytes.len() as u64 + children)
    };
    Ok(Inspected {
        digest: m.digest.clone(),
        repository: format!("{}/{}", r.registry, r.repository),
        tag: r.tag.clone(),
        media_type: m.media_type.clone(),
        size,
        platforms,
        created,
        integration: integration.name.to_string(),
    })
}
