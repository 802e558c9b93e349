//! Registry credentials and Test connection: `POST /api/v1/integrations/{name}/credentials`,
//! `POST /api/v1/integrations/{name}/test` and `POST /api/v1/connection-tests` (an integration
//! not yet saved). Credentials go to admins and to tokens of subscriptions the integration is
//! assigned to; every issue and refusal is audited, never with the password.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use berth_api::{
    ConnectionTest, HostRequest, RegionOptions, RegistryCredentials, RepositoryEnsured,
    RepositoryRequest, TestStep,
};
use berth_aws::RuntimeTrust;
use berth_core::{
    Integration, IntegrationConfig, IntegrationDraft, IntegrationInput, RuntimeScope,
};
use secrecy::ExposeSecret;
use serde_json::Value;

use super::Refusals;
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::json::{ApiJson, from_value, parse};

/// The optional `{"region"}` body: absent or empty means the integration's own region.
fn options(headers: &HeaderMap, body: &Bytes) -> Result<RegionOptions, ApiError> {
    if body.is_empty() {
        return Ok(RegionOptions::default());
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !json {
        return Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be application/json",
        ));
    }
    let o: RegionOptions = parse(body)?;
    if let Some(r) = &o.region {
        berth_core::validate_region("region", r)?;
    }
    Ok(o)
}

/// The integration through the read cache; `None` when it does not exist.
async fn integration(
    state: &AppState,
    generation: i64,
    name: &str,
) -> Result<Option<Integration>, ApiError> {
    let key = name.to_ascii_lowercase();
    if let Some(i) = state.cache.integration(generation, &key) {
        return Ok(Some(i));
    }
    let found = crate::policy::found(state.store.get_integration(name).await)?;
    if let Some(i) = &found {
        state.cache.put_integration(generation, i.clone());
    }
    Ok(found)
}

/// The integration through the read cache, under the one policy: absent and "not yours" are
/// the same 404.
async fn visible(
    state: &AppState,
    caller: &Principal,
    generation: i64,
    name: &str,
) -> Result<Integration, ApiError> {
    let seen = match integration(state, generation, name).await? {
        Some(i) => {
            let seen = crate::policy::seen_integration(caller, i);
            if seen.is_none() {
                // The caller hears "does not exist"; the log keeps what happened.
                tracing::warn!(target: "berth::audit", integration = %name, actor = %caller.actor(), "registry credentials refused: integration not assigned to the token's subscription");
            }
            seen
        }
        None => None,
    };
    seen.ok_or_else(|| crate::policy::absent("integration", name))
}

/// Short-lived registry credentials through an integration (admins, and tokens of subscriptions
/// it is assigned to).
#[utoipa::path(post, path = "/api/v1/integrations/{name}/credentials", tag = "credentials",
    params(("name" = String, Path)),
    request_body(content = Option<RegionOptions>, description = "Optional: another region"),
    responses((status = 200, body = RegistryCredentials), Refusals))]
pub async fn credentials(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let options = options(&headers, &body)?;
    let integration = visible(&state, &caller, caller.generation, &name).await?;
    let store = state.store.clone();
    let id = integration.id.clone();
    let creds = state
        .broker
        .credentials(&integration, options.region.as_deref(), || async move {
            store.open_secrets(&id).await
        })
        .await?;
    tracing::info!(target: "berth::audit", integration = %integration.name, actor = %caller.actor(), registry = %creds.registry, "registry credentials issued");
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(RegistryCredentials {
            integration: integration.name.to_string(),
            registry: creds.registry.clone(),
            proxy_endpoint: Some(creds.proxy_endpoint.clone()),
            username: creds.username.clone(),
            password: creds.password.expose_secret().to_owned(),
            expires_at: creds.expires_at,
        }),
    ))
}

/// The integration (visible to the caller) that serves a registry host, by name.
async fn integration_for_host(
    state: &AppState,
    caller: &Principal,
    generation: i64,
    host: &str,
) -> Result<(Integration, String), ApiError> {
    let host = berth_core::normalize_host(host);
    let own = crate::policy::confine_list(caller, None)?;
    let key = format!("{host}|{own:?}");
    if let Some((name, region)) = state.cache.host(generation, &key)
        && let Some(i) = integration(state, generation, &name).await?
    {
        return Ok((i, region));
    }
    let mut query = berth_store::IntegrationQuery {
        limit: 500,
        subscription: own,
        ..Default::default()
    };
    loop {
        let page = state.store.list_integrations(&query).await?;
        for i in &page.items {
            let IntegrationConfig::Ecr(ecr) = &i.config;
            if let Some(region) = berth_core::serves_host(ecr, &host) {
                state
                    .cache
                    .put_host(generation, key, i.name.to_string(), region.clone());
                return Ok((i.clone(), region));
            }
        }
        match page.next_after {
            Some(after) => query.after = Some(after),
            None => {
                return Err(ApiError::not_found(format!(
                    "no integration serves registry host '{host}'"
                )));
            }
        }
    }
}

/// Creates an ECR repository through an integration named directly or by a host it serves.
#[utoipa::path(post, path = "/api/v1/repositories", tag = "credentials",
    request_body = RepositoryRequest,
    responses((status = 200, body = RepositoryEnsured), Refusals))]
pub async fn create_repository(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<RepositoryRequest>,
) -> Result<Json<RepositoryEnsured>, ApiError> {
    let generation = caller.generation;
    berth_core::validate_repository(&body.repository)
        .map_err(|rule| ApiError::invalid("repository", rule))?;
    let (integration, region) = match (&body.integration, &body.host) {
        (Some(name), _) => {
            let i = visible(&state, &caller, generation, name).await?;
            let IntegrationConfig::Ecr(ecr) = &i.config;
            let region = ecr.region.clone();
            (i, region)
        }
        (None, Some(host)) => integration_for_host(&state, &caller, generation, host).await?,
        (None, None) => {
            return Err(ApiError::invalid(
                "integration",
                "name the integration, or give the registry host it serves",
            ));
        }
    };
    let secrets = state.store.open_secrets(&integration.id).await?;
    let created = state
        .broker
        .create_repository(&integration, &secrets, &region, &body.repository)
        .await?;
    tracing::info!(target: "berth::audit", integration = %integration.name, actor = %caller.actor(), repository = %body.repository, created, "repository ensured");
    Ok(Json(RepositoryEnsured {
        integration: integration.name.to_string(),
        region,
        repository: body.repository,
        created,
    }))
}

/// Credentials by registry host, for `docker-credential-berth`.
#[utoipa::path(post, path = "/api/v1/registry-credentials", tag = "credentials",
    request_body = HostRequest,
    responses((status = 200, body = RegistryCredentials), Refusals))]
pub async fn by_host(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<HostRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let (integration, region) =
        integration_for_host(&state, &caller, caller.generation, &body.host).await?;
    let store = state.store.clone();
    let id = integration.id.clone();
    let creds = state
        .broker
        .credentials(&integration, Some(&region), || async move {
            store.open_secrets(&id).await
        })
        .await?;
    tracing::info!(target: "berth::audit", integration = %integration.name, actor = %caller.actor(), registry = %creds.registry, "registry credentials issued by host");
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(RegistryCredentials {
            integration: integration.name.to_string(),
            registry: berth_core::normalize_host(&body.host),
            proxy_endpoint: None,
            username: creds.username.clone(),
            password: creds.password.expose_secret().to_owned(),
            expires_at: creds.expires_at,
        }),
    ))
}

/// Test connection of a saved integration (admin): each step, what failed and what to do.
#[utoipa::path(post, path = "/api/v1/integrations/{name}/test", tag = "credentials",
    params(("name" = String, Path)),
    request_body(content = Option<RegionOptions>, description = "Optional: another region"),
    responses((status = 200, body = ConnectionTest), Refusals))]
pub async fn test(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ConnectionTest>, ApiError> {
    let options = options(&headers, &body)?;
    Ok(Json(
        test_saved(&state, &caller, &name, options.region.as_deref()).await?,
    ))
}

/// Tests a saved integration (admin) and records the outcome for the list's Status column.
pub(crate) async fn test_saved(
    state: &AppState,
    caller: &Principal,
    name: &str,
    region: Option<&str>,
) -> Result<ConnectionTest, ApiError> {
    caller.require_admin()?;
    let integration = state.store.get_integration(name).await?;
    let secrets = state.store.open_secrets(&integration.id).await?;
    let IntegrationConfig::Ecr(ecr) = &integration.config;
    let runtimes = runtime_trusts(state, &integration.runtimes).await?;
    let report = state
        .broker
        .test_connection(integration.name.as_str(), ecr, &secrets, region, &runtimes)
        .await;
    let view = report_view(&report);
    state
        .store
        .record_connection_test(&integration.id, view.ok, &summary(&view), &caller.actor())
        .await?;
    Ok(view)
}

/// The runtimes an integration is shared with and their cluster roles, for its trust steps.
async fn runtime_trusts(
    state: &AppState,
    scope: &RuntimeScope,
) -> Result<Vec<RuntimeTrust>, ApiError> {
    let runtimes = state.store.list_runtimes().await?;
    Ok(runtimes
        .into_iter()
        .filter(|r| match scope {
            RuntimeScope::All => true,
            RuntimeScope::Selected(names) => names.iter().any(|n| n.key() == r.name.key()),
        })
        .map(|r| RuntimeTrust {
            runtime: r.name.to_string(),
            cluster_role_arn: r.cluster_role_arn,
        })
        .collect())
}

/// One line for the list: the first failing step and its reason, or that all passed.
fn summary(test: &ConnectionTest) -> String {
    match test.steps.iter().find(|s| s.status == "failed") {
        Some(step) => format!("{}: {}", step.step, step.detail),
        None => format!(
            "{} steps passed",
            test.steps.iter().filter(|s| s.status == "ok").count()
        ),
    }
}

fn report_view(report: &berth_aws::TestReport) -> ConnectionTest {
    ConnectionTest {
        ok: report.ok,
        steps: report
            .steps
            .iter()
            .map(|s| TestStep {
                step: s.step.into(),
                subject: s.subject.clone(),
                status: s.status.code().into(),
                detail: s.detail.clone(),
                diagnosis: s.diagnosis.map(|d| d.code().into()),
                hint: s.hint.clone(),
                millis: s.millis,
            })
            .collect(),
    }
}

/// Test before commit: the integration as it would be created, tested, and not stored (admin).
#[utoipa::path(post, path = "/api/v1/connection-tests", tag = "credentials",
    request_body = berth_api::IntegrationInput,
    responses((status = 200, body = ConnectionTest), Refusals))]
pub async fn test_unsaved(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<ConnectionTest>, ApiError> {
    Ok(Json(test_draft(&state, &caller, body).await?))
}

/// Tests an integration as the API's input describes it, without storing anything (admin).
pub(crate) async fn test_draft(
    state: &AppState,
    caller: &Principal,
    body: Value,
) -> Result<ConnectionTest, ApiError> {
    caller.require_admin()?;
    super::integrations::precheck(&body, true)?;
    let input: IntegrationInput = from_value(body)?;
    let draft = IntegrationDraft::create(input)?;
    let IntegrationConfig::Ecr(ecr) = &draft.config;
    let runtimes = runtime_trusts(state, &draft.runtimes).await?;
    let report = state
        .broker
        .test_connection(
            draft.name.as_str(),
            ecr,
            &draft.set_secrets,
            None,
            &runtimes,
        )
        .await;
    Ok(report_view(&report))
}

/// Tests a saved integration with an edit applied, before saving it (admin): the secrets the
/// edit leaves blank are the stored ones.
pub(crate) async fn test_patched(
    state: &AppState,
    caller: &Principal,
    name: &str,
    body: Value,
) -> Result<ConnectionTest, ApiError> {
    caller.require_admin()?;
    super::integrations::precheck(&body, false)?;
    let patch: berth_core::IntegrationPatch = from_value(body)?;
    let current = state.store.get_integration(name).await?;
    let draft = IntegrationDraft::patch(&current, patch)?;
    let mut secrets = state.store.open_secrets(&current.id).await?;
    secrets.retain(|field, _| !draft.clear_secrets.contains(field));
    secrets.extend(draft.set_secrets);
    let IntegrationConfig::Ecr(ecr) = &draft.config;
    let runtimes = runtime_trusts(state, &draft.runtimes).await?;
    let report = state
        .broker
        .test_connection(draft.name.as_str(), ecr, &secrets, None, &runtimes)
        .await;
    Ok(report_view(&report))
}
