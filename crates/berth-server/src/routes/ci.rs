//! `POST /api/v1/ci/resolve`: which hub entries of a project's `shippable.yml` apply to a branch
//! or tag, and which integrations they name, checked against the project's subscription. The
//! rules live here, on the server, so every CI job gets the same answer; each resolution records
//! the project's dependency on the integration.

use axum::Json;
use axum::extract::{Path, State};
use berth_core::IntegrationConfig;
use berth_core::shippable::{self, BranchRule};
use serde::Deserialize;
use serde_json::{Value, json};

use berth_store::StoreError;

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

/// Shippable's default when a hub entry names no region.
pub const DEFAULT_CI_REGION: &str = "us-east-1";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    project: String,
    branch: Option<String>,
    tag: Option<String>,
    shippable_yml: String,
}

fn rule_text(rule: &BranchRule) -> String {
    match rule {
        BranchRule::Only(p) => format!("only [{}]", p.join(", ")),
        BranchRule::Except(p) => format!("except [{}]", p.join(", ")),
    }
}

/// The registry host an integration serves in `region`, when it can be known before a token.
fn registry_host(ecr: &berth_core::EcrConfig, region: &str) -> Option<String> {
    if let Some(e) = &ecr.endpoint {
        return Some(berth_core::normalize_host(e));
    }
    let id = ecr.registry_id.as_ref()?;
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Some(format!("{id}.dkr.ecr.{region}.{suffix}"))
}

pub async fn resolve(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<ResolveRequest>,
) -> Result<Json<Value>, ApiError> {
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
    let mut applied = Vec::new();
    let mut skipped = Vec::new();
    let mut used = Vec::new();
    for entry in &yml.hub {
        if !entry.applies(&reference) {
            let rule = entry.branches.as_ref().map(rule_text).unwrap_or_default();
            skipped.push(json!({"integration": entry.integration_name, "reason": format!("'{reference}' does not match branches {rule}")}));
            continue;
        }
        // The entry's line goes beside the message, which stays exactly Shippable's.
        let at_line = |e: ApiError| match entry.line {
            Some(line) => e.with_detail("line", json!(line)),
            None => e,
        };
        let not_assigned = || {
            at_line(ApiError::invalid(
                "shippable_yml",
                format!(
                    "Integration name specified in yml does not match integrations present in Subscription settings: {}",
                    entry.integration_name
                ),
            ))
        };
        let integration = match state.store.get_integration(&entry.integration_name).await {
            Ok(i) => i,
            Err(StoreError::NotFound { .. }) => return Err(not_assigned()),
            Err(e) => return Err(e.into()),
        };
        if !integration.is_assigned_to(&project.subscription) {
            return Err(not_assigned());
        }
        if integration.config.kind() != entry.kind {
            return Err(at_line(ApiError::invalid(
                "shippable_yml",
                format!(
                    "Integration '{}' is of type {}, but the yml names it as type {}",
                    integration.name,
                    integration.config.kind().as_str(),
                    entry.kind.as_str()
                ),
            )));
        }
        let IntegrationConfig::Ecr(ecr) = &integration.config;
        let region = entry
            .region
            .clone()
            .unwrap_or_else(|| DEFAULT_CI_REGION.to_owned());
        used.push(integration.id.clone());
        applied.push(json!({
            "integration": integration.name,
            "type": integration.config.kind().as_str(),
            "region": region,
            "registry": registry_host(ecr, &region),
            "agent_only": entry.agent_only,
        }));
    }
    // The custom CI image of `build.pre_ci_boot`: which applied integration serves its host.
    let boot_image = match &yml.pre_ci_boot {
        Some(boot) => {
            let image = format!(
                "{}:{}",
                boot.image_name,
                boot.image_tag.as_deref().unwrap_or("latest")
            );
            let host = berth_core::ImageRef::parse(&image)
                .map_err(|e| ApiError::invalid("shippable_yml", format!("build.pre_ci_boot: {e}")))?
                .registry;
            let served = applied
                .iter()
                .zip(&used)
                .find(|(a, _)| a["registry"].as_str() == Some(host.as_str()));
            Some((
                image,
                host,
                served.map(|(a, id)| (a["integration"].clone(), id.clone())),
                boot.pull.unwrap_or(false),
            ))
        }
        None => None,
    };
    // Recorded only once every entry resolved: a refused resolution leaves no trace.
    if !used.is_empty() {
        check_dependency_room(&state, &project).await?;
    }
    for id in &used {
        state
            .store
            .record_dependency(id, "project", project.name.as_str())
            .await?;
    }
    let boot = match boot_image {
        Some((image, host, served, pull)) => {
            if let Some((_, id)) = &served {
                state
                    .store
                    .record_dependency(
                        id,
                        "subscription_image",
                        &format!("{} pre_ci_boot {image}", project.name),
                    )
                    .await?;
            }
            json!({"image": image, "registry": host, "integration": served.map(|(n, _)| n), "pull": pull})
        }
        None => Value::Null,
    };
    Ok(Json(json!({
        "project": project.name,
        "ref": reference,
        "integrations": applied,
        "skipped": skipped,
        "boot_image": boot,
        "notes": yml.notes,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesRequest {
    project: String,
    shippable_yml: String,
    /// Resource names; all integration-backed resources of the file when empty.
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    with_secrets: bool,
}

/// `POST /api/v1/ci/resources`: the environment a pipeline job sees for its resources —
/// `<NAME>_SOURCENAME`/`_VERSIONNAME` for images, `<NAME>_INTEGRATION_AWS_*` for integration and
/// cliConfig resources (secrets only with `with_secrets`). Records pipeline-resource dependencies.
pub async fn resources(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<ResourcesRequest>,
) -> Result<Json<Value>, ApiError> {
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
    let mut env = serde_json::Map::new();
    let mut used = Vec::new();
    for r in wanted {
        let integration = match state.store.get_integration(&r.integration).await {
            Ok(i) => Some(i),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let integration = integration.filter(|i| i.is_assigned_to(&project.subscription));
        let integration = integration.ok_or_else(|| {
            ApiError::invalid(
                "shippable_yml",
                format!(
                    "Integration name specified in yml does not match integrations present in Subscription settings: {}",
                    r.integration
                ),
            )
        })?;
        let prefix = r.env_prefix();
        let IntegrationConfig::Ecr(ecr) = &integration.config;
        match &r.kind {
            shippable::ResourceKind::Image {
                source_name,
                version_name,
            } => {
                env.insert(format!("{prefix}_SOURCENAME"), json!(source_name));
                env.insert(format!("{prefix}_VERSIONNAME"), json!(version_name));
            }
            shippable::ResourceKind::Integration | shippable::ResourceKind::CliConfig { .. } => {
                let region = match &r.kind {
                    shippable::ResourceKind::CliConfig { region: Some(r) } => r.clone(),
                    _ => ecr.region.clone(),
                };
                env.insert(format!("{prefix}_INTEGRATION_AWS_REGION"), json!(region));
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
        used.push((
            integration.id.clone(),
            format!("{}:{}", project.name, r.name),
        ));
    }
    for (id, name) in used {
        state
            .store
            .record_dependency(&id, "pipeline_resource", &name)
            .await?;
    }
    if body.with_secrets {
        tracing::info!(target: "berth::audit", project = %project.name, actor = %caller.actor(), "pipeline resource secrets issued");
    }
    Ok(Json(json!({ "env": env })))
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
    env: &mut serde_json::Map<String, Value>,
    prefix: &str,
    job: &berth_aws::JobCredentials,
) {
    use secrecy::ExposeSecret;
    let keys = &job.keys;
    env.insert(
        format!("{prefix}_INTEGRATION_AWS_ACCESS_KEY_ID"),
        json!(keys.access_key_id),
    );
    env.insert(
        format!("{prefix}_INTEGRATION_AWS_SECRET_ACCESS_KEY"),
        json!(keys.secret_access_key.expose_secret()),
    );
    if let Some(t) = &keys.session_token {
        env.insert(
            format!("{prefix}_INTEGRATION_AWS_SESSION_TOKEN"),
            json!(t.expose_secret()),
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
        env.insert(
            format!("{prefix}_INTEGRATION_AWS_SESSION_EXPIRATION"),
            json!(at),
        );
    }
}

pub async fn dependencies(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let integration = crate::policy::visible_integration(&state, &caller, &name).await?;
    let deps = state.store.dependencies(integration.name.as_str()).await?;
    Ok(Json(json!({
        "dependencies": deps.iter().map(|(kind, name)| json!({"kind": kind, "name": name})).collect::<Vec<_>>()
    })))
}
