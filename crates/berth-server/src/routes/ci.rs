//! `POST /api/v1/ci/resolve`: which hub entries of a project's `shippable.yml` apply to a branch
//! or tag, and which integrations they name, checked against the project's subscription. The
//! rules live here, on the server, so every CI job gets the same answer; each resolution records
//! the project's dependency on the integration.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use berth_api::{
    AppliedEntry, BootImage, Dependencies, Dependency, Resolution, ResolveRequest, ResourceEnv,
    ResourcesRequest, SkippedEntry,
};
use berth_core::IntegrationConfig;
use berth_core::resolution;
use berth_core::shippable;

use super::Refusals;
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::json::ApiJson;

/// The most hub entries or resources one request may name: a build names a handful.
pub const MAX_ENTRIES_PER_REQUEST: usize = 100;
/// The most dependencies Berth records for one project's builds.
pub const MAX_PROJECT_DEPENDENCIES: u64 = 500;

fn too_many_entries(what: &str, count: usize) -> ApiError {
    ApiError::invalid(
        "shippable_yml",
        format!(
            "names {count} {what}; at most {MAX_ENTRIES_PER_REQUEST} are accepted in one request"
        ),
    )
}

/// Refuses to record more once a project holds [`MAX_PROJECT_DEPENDENCIES`], so a token that
/// can only read cannot grow the store without bound or pin integrations against deletion.
async fn check_dependency_room(
    state: &AppState,
    project: &berth_store::Project,
) -> Result<(), ApiError> {
    let recorded = state
        .store
        .project_dependency_count(project.name.as_str())
        .await?;
    if recorded >= MAX_PROJECT_DEPENDENCIES {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "dependency_limit",
            format!(
                "project '{}' has recorded {recorded} dependencies, the most Berth keeps for one project; an admin can release stale ones with `berth project release-dependencies {}`",
                project.name, project.name
            ),
        ));
    }
    Ok(())
}

/// Which hub entries of the build's `shippable.yml` apply, with their registries; records the
/// project's dependency on each integration it uses.
/// Load → confine → resolve (`berth_core::resolution`) → record → render.
#[utoipa::path(post, path = "/api/v1/ci/resolve", tag = "ci",
    request_body = ResolveRequest,
    responses((status = 200, body = Resolution), Refusals))]
pub async fn resolve(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<ResolveRequest>,
) -> Result<Json<Resolution>, ApiError> {
    let project = visible_project(&state, &caller, &body.project).await?;
    let reference = match (&body.branch, &body.tag) {
        (Some(b), None) => b.clone(),
        (None, Some(t)) => t.clone(),
        _ => {
            return Err(ApiError::invalid(
                "branch",
                "give exactly one of branch and tag",
            ));
        }
    };
    let yml = shippable::parse(&body.shippable_yml)
        .map_err(|e| ApiError::invalid("shippable_yml", format!("shippable.yml {e}")))?;
    if yml.hub.len() > MAX_ENTRIES_PER_REQUEST {
        return Err(too_many_entries("hub entries", yml.hub.len()));
    }
    let (entries, _) = resolution::applying(&yml, &reference);
    let named: Vec<&str> = entries
        .iter()
        .map(|e| e.integration_name.as_str())
        .collect();
    let found = load_integrations(&state, &named).await?;
    let resolved = resolution::resolve(&yml, &reference, &project.subscription, &found)
        .map_err(resolve_error)?;
    // Recorded only once every entry resolved: a refused resolution leaves no trace.
    let dependencies = resolved.dependencies(project.name.as_str());
    if !dependencies.is_empty() {
        check_dependency_room(&state, &project).await?;
    }
    state
        .store
        .record_project_dependencies(project.name.as_str(), &dependencies)
        .await?;
    Ok(Json(resolution_view(
        &project, &reference, &resolved, &yml.notes,
    )))
}

/// The integrations the names stand for, where they exist; only "not found" means absent.
async fn load_integrations(
    state: &AppState,
    names: &[&str],
) -> Result<Vec<berth_core::Integration>, ApiError> {
    let mut found = Vec::with_capacity(names.len());
    for name in names {
        found.extend(crate::policy::found(
            state.store.get_integration(name).await,
        )?);
    }
    Ok(found)
}

/// Shippable's words, with the entry's line beside them.
fn resolve_error(e: resolution::ResolveError) -> ApiError {
    let line = e.line();
    let err = ApiError::invalid("shippable_yml", e.to_string());
    match line {
        Some(line) => err.on_line(line as u64),
        None => err,
    }
}

fn resolution_view(
    project: &berth_store::Project,
    reference: &str,
    r: &resolution::Resolution,
    notes: &[String],
) -> Resolution {
    Resolution {
        project: project.name.to_string(),
        reference: reference.to_owned(),
        integrations: r
            .applied
            .iter()
            .map(|a| AppliedEntry {
                integration: a.integration.to_string(),
                kind: a.kind.as_str().into(),
                region: a.region.clone(),
                registry: a.registry.clone(),
                agent_only: a.agent_only,
            })
            .collect(),
        skipped: r
            .skipped
            .iter()
            .map(|s| SkippedEntry {
                integration: s.integration.to_string(),
                reason: s.reason.to_string(),
            })
            .collect(),
        boot_image: r.boot_image.as_ref().map(|b| BootImage {
            image: b.image.to_string(),
            registry: b.registry.clone(),
            integration: b.served_by.as_ref().map(|(n, _)| n.to_string()),
            pull: b.pull,
        }),
        notes: notes.to_vec(),
    }
}

/// `POST /api/v1/ci/resources`: the environment a pipeline job sees for its resources —
/// `<NAME>_SOURCENAME`/`_VERSIONNAME` for images, `<NAME>_INTEGRATION_AWS_*` for integration and
/// cliConfig resources (secrets only with `with_secrets`). Records pipeline-resource dependencies.
#[utoipa::path(post, path = "/api/v1/ci/resources", tag = "ci",
    request_body = ResourcesRequest,
    responses((status = 200, body = ResourceEnv), Refusals))]
pub async fn resources(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<ResourcesRequest>,
) -> Result<Json<ResourceEnv>, ApiError> {
    let project = visible_project(&state, &caller, &body.project).await?;
    let yml = shippable::parse(&body.shippable_yml)
        .map_err(|e| ApiError::invalid("shippable_yml", format!("shippable.yml {e}")))?;
    let wanted: Vec<&shippable::Resource> = if body.resources.is_empty() {
        yml.resources.iter().collect()
    } else {
        body.resources
            .iter()
            .enumerate()
            .map(|(i, n)| {
                yml.resources.iter().find(|r| r.name == *n).ok_or_else(|| {
                    ApiError::invalid(
                        format!("resources[{i}]"),
                        format!(
                            "'{n}' is not an image, integration or cliConfig resource of the file"
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?
    };
    if wanted.len() > MAX_ENTRIES_PER_REQUEST {
        return Err(too_many_entries("resources", wanted.len()));
    }
    // Before any credential is issued: a refused request hands out nothing.
    if !wanted.is_empty() {
        check_dependency_room(&state, &project).await?;
    }
    let pin = version_pin(&body, &wanted)?;
    let mut env = BTreeMap::new();
    let mut used = Vec::new();
    for r in wanted {
        let integration = crate::policy::found(state.store.get_integration(&r.integration).await)?
            .filter(|i| i.is_assigned_to(&project.subscription));
        let integration = integration.ok_or_else(|| {
            resolve_error(resolution::ResolveError::NotAssigned {
                name: r.integration.clone(),
                line: None,
            })
        })?;
        let prefix = r.env_prefix();
        let IntegrationConfig::Ecr(ecr) = &integration.config;
        match &r.kind {
            shippable::ResourceKind::Image {
                source_name,
                version_name,
            } => {
                env.insert(format!("{prefix}_SOURCENAME"), source_name.clone());
                let version = crate::images::job_version(
                    &state,
                    &project,
                    &integration,
                    &r.name,
                    source_name,
                    version_name,
                    &pin,
                )
                .await?;
                insert_version(&mut env, &prefix, version_name, version.as_ref());
            }
            shippable::ResourceKind::Integration | shippable::ResourceKind::CliConfig { .. } => {
                let region = match &r.kind {
                    shippable::ResourceKind::CliConfig { region: Some(r) } => r.clone(),
                    _ => ecr.region.clone(),
                };
                env.insert(format!("{prefix}_INTEGRATION_AWS_REGION"), region);
                if body.with_secrets {
                    let secrets = state.store.open_secrets(&integration.id).await?;
                    let job = state.broker.job_credentials(&integration, &secrets).await?;
                    insert_job_credentials(&mut env, &prefix, &job);
                    if job.expires_at.is_none() {
                        tracing::warn!(target: "berth::audit", project = %project.name, integration = %integration.name, actor = %caller.actor(), "long-lived access keys exported to a job");
                    }
                }
            }
        }
        used.push(resolution::Dependency::pipeline_resource(
            &integration.id,
            project.name.as_str(),
            &r.name,
        ));
    }
    state
        .store
        .record_project_dependencies(project.name.as_str(), &used)
        .await?;
    if body.with_secrets {
        tracing::info!(target: "berth::audit", project = %project.name, actor = %caller.actor(), "pipeline resource secrets issued");
    }
    Ok(Json(ResourceEnv { env }))
}

/// The request's pin, which needs exactly one image resource named.
fn version_pin(
    body: &ResourcesRequest,
    wanted: &[&shippable::Resource],
) -> Result<crate::images::Pin, ApiError> {
    let pin = crate::images::Pin {
        number: body.version_number,
        name: body.version_name.clone(),
    };
    let images = wanted
        .iter()
        .filter(|r| matches!(r.kind, shippable::ResourceKind::Image { .. }))
        .count();
    if (pin.number.is_some() || pin.name.is_some()) && (images != 1 || wanted.len() != 1) {
        let field = if pin.number.is_some() {
            "version_number"
        } else {
            "version_name"
        };
        return Err(ApiError::invalid(
            field,
            "a pin applies to one image resource: name exactly one in resources",
        ));
    }
    Ok(pin)
}

/// `<NAME>_VERSIONNAME` (the version's tag, or the file's when there is no version yet),
/// `_VERSIONNUMBER` and `_VERSIONDIGEST`.
fn insert_version(
    env: &mut BTreeMap<String, String>,
    prefix: &str,
    file_tag: &str,
    version: Option<&berth_store::ImageVersion>,
) {
    let Some(v) = version else {
        env.insert(format!("{prefix}_VERSIONNAME"), file_tag.to_owned());
        return;
    };
    env.insert(format!("{prefix}_VERSIONNAME"), v.version_name.clone());
    env.insert(
        format!("{prefix}_VERSIONNUMBER"),
        v.version_number.to_string(),
    );
    env.insert(format!("{prefix}_VERSIONDIGEST"), v.digest.clone());
}

/// The build's project: absent and "not yours" are one answer (`policy`), phrased for the
/// request's `project` field.
async fn visible_project(
    state: &AppState,
    caller: &Principal,
    name: &str,
) -> Result<berth_store::Project, ApiError> {
    crate::policy::lookup_project(state, caller, name)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                "project",
                format!("project '{name}' does not exist (add it with `berth project add`)"),
            )
        })
}

/// `<PREFIX>_INTEGRATION_AWS_*`: keys, and for sessions their token and expiry (RFC 3339).
fn insert_job_credentials(
    env: &mut BTreeMap<String, String>,
    prefix: &str,
    job: &berth_aws::JobCredentials,
) {
    use secrecy::ExposeSecret;
    let keys = &job.keys;
    env.insert(
        format!("{prefix}_INTEGRATION_AWS_ACCESS_KEY_ID"),
        keys.access_key_id.clone(),
    );
    env.insert(
        format!("{prefix}_INTEGRATION_AWS_SECRET_ACCESS_KEY"),
        keys.secret_access_key.expose_secret().to_owned(),
    );
    if let Some(t) = &keys.session_token {
        env.insert(
            format!("{prefix}_INTEGRATION_AWS_SESSION_TOKEN"),
            t.expose_secret().to_owned(),
        );
    }
    if let Some(at) = job
        .expires_at
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
    {
        env.insert(format!("{prefix}_INTEGRATION_AWS_SESSION_EXPIRATION"), at);
    }
}

/// What uses an integration and keeps it from being deleted.
#[utoipa::path(get, path = "/api/v1/integrations/{name}/dependencies", tag = "integrations",
    params(("name" = String, Path)),
    responses((status = 200, body = Dependencies), Refusals))]
pub async fn dependencies(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<Json<Dependencies>, ApiError> {
    Ok(Json(dependencies_of(&state, &caller, &name).await?))
}

/// The dependencies of an integration the caller may see: for the API and the delete dialog.
pub(crate) async fn dependencies_of(
    state: &AppState,
    caller: &Principal,
    name: &str,
) -> Result<Dependencies, ApiError> {
    let integration = crate::policy::visible_integration(state, caller, name).await?;
    let deps = state.store.dependencies(integration.name.as_str()).await?;
    Ok(Dependencies {
        dependencies: deps
            .into_iter()
            .map(|(kind, name)| Dependency {
                kind: kind.as_str().to_owned(),
                name,
            })
            .collect(),
    })
}
