//! A project's image resources (`/api/v1/projects/{project}/resources/…`) and their versions,
//! and registry push events (`/api/v1/resources/{project}/{name}/events`). Resources are the
//! project's: whoever may see the project (an admin, or a token of its subscription) may define
//! them and post versions; deleting one is an admin's. Events carry the resource's own secret
//! instead of a token, as an EventBridge API destination sends a header.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use berth_api::{
    EventSecret, ImageResourceInput, ImageResourceList, ImageResourceView, ImageVersionPage,
    ImageVersionView, PostedState, RecordedVersion,
};
use berth_core::{ImageRef, Name};
use berth_store::{ImageResource, ImageVersion, Project, Recorded, ResourceInput, VersionSource};

use super::{Refusals, meta_view, timestamp};
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::images::{read_tag, record, usable_integration};

const MAX_POLL_SECONDS: i64 = 86_400;
const MAX_PROPERTIES: usize = 32;
const MAX_PROPERTY_BYTES: usize = 1024;
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

pub(crate) fn resource_view(r: &ImageResource) -> ImageResourceView {
    ImageResourceView {
        project: r.project.to_string(),
        name: r.name.clone(),
        integration: r.integration.clone(),
        source_name: r.source_name.clone(),
        version_name: r.tag.clone(),
        poll_seconds: r.poll_seconds,
        next_poll_at: (r.poll_seconds > 0).then(|| timestamp(r.next_poll_at)),
        poll_failures: r.poll_failures,
        last_error: r.last_error.clone(),
        event_secret_set: r.event_secret_set,
        latest_version: r.last_version,
        meta: meta_view(&r.meta),
    }
}

pub(crate) fn version_view(v: &ImageVersion) -> ImageVersionView {
    ImageVersionView {
        version_number: v.version_number,
        version_name: v.version_name.clone(),
        digest: v.digest.clone(),
        source: v.source.as_str().to_owned(),
        pushed_at: timestamp(v.pushed_at),
        properties: v.properties.clone(),
    }
}

pub(crate) fn recorded_view(r: &Recorded) -> RecordedVersion {
    RecordedVersion {
        new: matches!(r, Recorded::New(_)),
        version: version_view(r.version()),
    }
}

/// The resource named `name` of a project the caller may see.
async fn visible_resource(
    state: &AppState,
    caller: &Principal,
    project: &str,
    name: &str,
) -> Result<(Project, ImageResource), ApiError> {
    let project = crate::policy::visible_project(state, caller, project).await?;
    let resource = state.store.get_resource(&project.id, name).await?;
    Ok((project, resource))
}

/// Lists a project's image resources.
#[utoipa::path(get, path = "/api/v1/projects/{project}/resources", tag = "resources",
    params(("project" = String, Path, description = "`org/repo`; its `/` is not encoded")),
    responses((status = 200, body = ImageResourceList), Refusals))]
pub async fn list(
    state: &AppState,
    caller: &Principal,
    project: &str,
) -> Result<Json<ImageResourceList>, ApiError> {
    let project = crate::policy::visible_project(state, caller, project).await?;
    let items = state.store.list_resources(&project.id).await?;
    Ok(Json(ImageResourceList {
        items: items.iter().map(resource_view).collect(),
    }))
}

/// Defines (or redefines) an image resource: the tag of a repository it follows, through which
/// integration, and how often Berth reads it. Its versions are kept.
#[utoipa::path(put, path = "/api/v1/projects/{project}/resources/{name}", tag = "resources",
    params(("project" = String, Path, description = "`org/repo`; its `/` is not encoded"), ("name" = String, Path)),
    request_body = ImageResourceInput,
    responses((status = 200, body = ImageResourceView), Refusals))]
pub async fn put(
    state: &AppState,
    caller: &Principal,
    project: &str,
    name: &str,
    body: ImageResourceInput,
) -> Result<Json<ImageResourceView>, ApiError> {
    let project = crate::policy::visible_project(state, caller, project).await?;
    let name = Name::parse("name", name)?;
    let integration = usable_integration(state, &project, &body.integration).await?;
    let source = ImageRef::parse(&body.source_name)
        .map_err(|e| ApiError::invalid("source_name", e.to_string()))?;
    if source.tag.is_some() || source.digest.is_some() {
        return Err(ApiError::invalid(
            "source_name",
            "must be registry/repository without a tag or digest: the tag is version_name",
        ));
    }
    let berth_core::IntegrationConfig::Ecr(ecr) = &integration.config;
    if berth_core::serves_host(ecr, &source.registry).is_none() {
        return Err(ApiError::invalid(
            "source_name",
            format!(
                "integration {} does not serve registry {}",
                integration.name, source.registry
            ),
        ));
    }
    let tag = body.version_name.unwrap_or_else(|| "latest".into());
    berth_core::validate_tag(&tag).map_err(|rule| ApiError::invalid("version_name", rule))?;
    let poll_seconds = match body.poll_seconds {
        Some(s) if s != 0 && !(state.poll_floor_seconds..=MAX_POLL_SECONDS).contains(&s) => {
            return Err(ApiError::invalid(
                "poll_seconds",
                format!(
                    "must be 0 (no polling) or from {} to {MAX_POLL_SECONDS} seconds",
                    state.poll_floor_seconds
                ),
            ));
        }
        other => other,
    };
    let input = ResourceInput {
        name: name.to_string(),
        integration: integration.name.to_string(),
        source_name: body.source_name.clone(),
        tag,
        poll_seconds,
    };
    let resource = state
        .store
        .put_resource(&project.id, &input, &caller.actor())
        .await?;
    state
        .store
        .record_project_dependencies(
            project.name.as_str(),
            &[berth_core::resolution::Dependency::pipeline_resource(
                &integration.id,
                project.name.as_str(),
                name.as_str(),
            )],
        )
        .await?;
    Ok(Json(resource_view(&resource)))
}

/// One image resource.
#[utoipa::path(get, path = "/api/v1/projects/{project}/resources/{name}", tag = "resources",
    params(("project" = String, Path, description = "`org/repo`; its `/` is not encoded"), ("name" = String, Path)),
    responses((status = 200, body = ImageResourceView), Refusals))]
pub async fn show(
    state: &AppState,
    caller: &Principal,
    project: &str,
    name: &str,
) -> Result<Json<ImageResourceView>, ApiError> {
    let (_, resource) = visible_resource(state, caller, project, name).await?;
    Ok(Json(resource_view(&resource)))
}

/// Deletes an image resource and its versions (admin).
#[utoipa::path(delete, path = "/api/v1/projects/{project}/resources/{name}", tag = "resources",
    params(("project" = String, Path, description = "`org/repo`; its `/` is not encoded"), ("name" = String, Path)),
    responses((status = 204, description = "Deleted"), Refusals))]
pub async fn remove(
    state: &AppState,
    caller: &Principal,
    project: &str,
    name: &str,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let (project, _) = visible_resource(state, caller, project, name).await?;
    state.store.delete_resource(&project.id, name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A page of `limit` versions, newest first, older than `cursor` when given.
#[utoipa::path(get, path = "/api/v1/projects/{project}/resources/{name}/versions", tag = "resources",
    params(("project" = String, Path, description = "`org/repo`; its `/` is not encoded"), ("name" = String, Path),
        ("limit" = Option<i64>, Query, description = "1 to 500 [default: 50]"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = ImageVersionPage), Refusals))]
pub async fn versions(
    state: &AppState,
    caller: &Principal,
    project: &str,
    name: &str,
    query: &std::collections::HashMap<String, String>,
) -> Result<Json<ImageVersionPage>, ApiError> {
    let limit = match query.get("limit") {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", format!("must be 1 to {MAX_PAGE}")))?,
    };
    let before =
        match query.get("cursor") {
            None => None,
            Some(c) => Some(c.parse::<i64>().map_err(|_| {
                ApiError::invalid("cursor", "is not a cursor this endpoint gave out")
            })?),
        };
    let (_, resource) = visible_resource(state, caller, project, name).await?;
    let items = state
        .store
        .list_versions(&resource.id, before, limit + 1)
        .await?;
    let more = items.len() as i64 > limit;
    let items: Vec<ImageVersionView> = items
        .iter()
        .take(limit as usize)
        .map(version_view)
        .collect();
    let next_cursor = more
        .then(|| items.last().map(|v| v.version_number.to_string()))
        .flatten();
    Ok(Json(ImageVersionPage { items, next_cursor }))
}

/// `key=value` facts a CI post keeps with a version, bounded.
fn check_properties(properties: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if properties.len() > MAX_PROPERTIES {
        return Err(ApiError::invalid(
            "properties",
            format!("at most {MAX_PROPERTIES} entries"),
        ));
    }
    for (key, value) in properties {
        let key_ok = !key.is_empty()
            && key.len() <= 64
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !key_ok {
            return Err(ApiError::invalid(
                format!("properties.{key}"),
                "keys are 1 to 64 letters, digits, '_', '-' or '.'",
            ));
        }
        if value.len() > MAX_PROPERTY_BYTES {
            return Err(ApiError::invalid(
                format!("properties.{key}"),
                format!("values are at most {MAX_PROPERTY_BYTES} bytes"),
            ));
        }
    }
    Ok(())
}

/// `berth ci post-resource-state`: Berth reads the digest the tag has now (through the
/// integration: the job holds no registry credentials for it) and records it; 201 when that is
/// a new version, 200 when the tag was already there.
#[utoipa::path(post, path = "/api/v1/projects/{project}/resources/{name}/versions", tag = "resources",
    params(("project" = String, Path, description = "`org/repo`; its `/` is not encoded"), ("name" = String, Path)),
    request_body = PostedState,
    responses((status = 201, body = RecordedVersion), (status = 200, body = RecordedVersion), Refusals))]
pub async fn post_state(
    state: &AppState,
    caller: &Principal,
    project: &str,
    name: &str,
    body: PostedState,
) -> Result<(StatusCode, Json<RecordedVersion>), ApiError> {
    check_properties(&body.properties)?;
    let (project, resource) = visible_resource(state, caller, project, name).await?;
    let tag = body.version_name.unwrap_or_else(|| resource.tag.clone());
    berth_core::validate_tag(&tag).map_err(|rule| ApiError::invalid("version_name", rule))?;
    let integration = usable_integration(state, &project, &resource.integration).await?;
    let read = read_tag(state, &integration, &resource.source_name, &tag).await?;
    let now = time::OffsetDateTime::now_utc();
    let recorded = record(
        state,
        &resource,
        &tag,
        &read.digest,
        VersionSource::Post,
        now,
        &body.properties,
    )
    .await?;
    let status = match recorded {
        Recorded::New(_) => StatusCode::CREATED,
        Recorded::Known(_) => StatusCode::OK,
    };
    Ok((status, Json(recorded_view(&recorded))))
}

/// Issues a new secret for the resource's push events (the previous one stops working); shown
/// once.
#[utoipa::path(post, path = "/api/v1/projects/{project}/resources/{name}/event-secret", tag = "resources",
    params(("project" = String, Path, description = "`org/repo`; its `/` is not encoded"), ("name" = String, Path)),
    responses((status = 200, body = EventSecret), Refusals))]
pub async fn event_secret(
    state: &AppState,
    caller: &Principal,
    project: &str,
    name: &str,
) -> Result<Json<EventSecret>, ApiError> {
    let (project, resource) = visible_resource(state, caller, project, name).await?;
    let secret = random_secret("bes_");
    state
        .store
        .set_event_secret_hash(&resource.id, &berth_registry::sha256_hex(secret.as_bytes()))
        .await?;
    tracing::info!(target: "berth::audit", project = %project.name, resource = %resource.name, actor = %caller.actor(), "image resource event secret issued");
    Ok(Json(EventSecret {
        secret,
        events_path: format!(
            "/api/v1/resources/{}/{}/events",
            project.name, resource.name
        ),
    }))
}

/// Whether `presented` is the secret whose hash is stored, compared without an early exit.
pub(crate) fn secret_matches(presented: &str, stored_hash: &str) -> bool {
    use subtle::ConstantTimeEq;
    let hash = berth_registry::sha256_hex(presented.as_bytes());
    hash.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

fn delivery_view(d: &berth_store::Delivery) -> berth_api::DeliveryView {
    berth_api::DeliveryView {
        version_number: d.version_number,
        state: d.state.as_str().to_owned(),
        attempts: d.attempts,
        last_status: d.last_status,
        last_error: d.last_error.clone(),
        next_attempt_at: (d.state == berth_store::DeliveryState::Pending)
            .then(|| timestamp(d.next_attempt_at)),
        delivered_at: d.delivered_at.map(timestamp),
    }
}

async fn trigger_view(
    state: &AppState,
    t: &berth_store::Trigger,
) -> Result<berth_api::TriggerView, ApiError> {
    let deliveries = state.store.deliveries(&t.id, 20).await?;
    Ok(berth_api::TriggerView {
        id: t.id.clone(),
        url: t.url.clone(),
        created_at: timestamp(t.created_at),
        created_by: t.created_by.clone(),
        deliveries: deliveries.iter().map(delivery_view).collect(),
    })
}

/// A trigger URL: http(s), a host, no credentials (they would show in every listing).
fn check_trigger_url(url: &str) -> Result<(), ApiError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| ApiError::invalid("url", "must be an http:// or https:// URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || url.len() > 2048 || url.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid(
            "url",
            "must name a host, have no spaces, and be at most 2048 characters",
        ));
    }
    if authority.contains('@') {
        return Err(ApiError::invalid(
            "url",
            "must not carry credentials: the receiver checks the X-Berth-Signature instead",
        ));
    }
    Ok(())
}

/// Adds a trigger (admin): each new version from now on is POSTed to it, signed.
#[utoipa::path(post, path = "/api/v1/projects/{project}/resources/{name}/triggers", tag = "resources",
    params(("project" = String, Path, description = "`org/repo`; its `/` is not encoded"), ("name" = String, Path)),
    request_body = berth_api::TriggerInput,
    responses((status = 201, body = berth_api::TriggerCreated), Refusals))]
pub async fn add_trigger(
    state: &AppState,
    caller: &Principal,
    project: &str,
    name: &str,
    body: berth_api::TriggerInput,
) -> Result<(StatusCode, Json<berth_api::TriggerCreated>), ApiError> {
    caller.require_admin()?;
    check_trigger_url(&body.url)?;
    if body.secret.as_ref().is_some_and(|s| s.len() < 16) {
        return Err(ApiError::invalid(
            "secret",
            "must be at least 16 characters",
        ));
    }
    let (_, resource) = visible_resource(state, caller, project, name).await?;
    let made = match &body.secret {
        Some(_) => None,
        None => Some(random_secret("bts_")),
    };
    let secret =
        secrecy::SecretString::from(body.secret.clone().or(made.clone()).unwrap_or_default());
    let t = state
        .store
        .add_trigger(&resource.id, &body.url, &secret, &caller.actor())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(berth_api::TriggerCreated {
            trigger: trigger_view(state, &t).await?,
            secret: made,
        }),
    ))
}

/// The resource's triggers, each with its newest deliveries (the delivery log).
#[utoipa::path(get, path = "/api/v1/projects/{project}/resources/{name}/triggers", tag = "resources",
    params(("project" = String, Path, description = "`org/repo`; its `/` is not encoded"), ("name" = String, Path)),
    responses((status = 200, body = berth_api::TriggerList), Refusals))]
pub async fn triggers(
    state: &AppState,
    caller: &Principal,
    project: &str,
    name: &str,
) -> Result<Json<berth_api::TriggerList>, ApiError> {
    let (_, resource) = visible_resource(state, caller, project, name).await?;
    let mut items = Vec::new();
    for t in state.store.list_triggers(&resource.id).await? {
        items.push(trigger_view(state, &t).await?);
    }
    Ok(Json(berth_api::TriggerList { items }))
}

/// Removes a trigger (admin); its pending deliveries are dropped.
#[utoipa::path(delete, path = "/api/v1/projects/{project}/resources/{name}/triggers/{id}", tag = "resources",
    params(("project" = String, Path, description = "`org/repo`; its `/` is not encoded"), ("name" = String, Path), ("id" = String, Path)),
    responses((status = 204, description = "Deleted"), Refusals))]
pub async fn remove_trigger(
    state: &AppState,
    caller: &Principal,
    project: &str,
    name: &str,
    id: &str,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let (_, resource) = visible_resource(state, caller, project, name).await?;
    state.store.delete_trigger(&resource.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `prefix` and 64 random hex digits.
fn random_secret(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        berth_files::hex(&crate::auth::random_bytes::<32>())
    )
}
