//! `/api/v1/integrations`: the registry integrations. Secrets are write-only: responses show a
//! masked access key id and `*_set` flags, never a secret value.

use std::collections::HashMap;

use std::collections::BTreeSet;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_api::{
    AmbientWord, AuthView, IntegrationPage, IntegrationView, KeyView, RoleSourceView, RuntimesView,
};
use berth_core::{
    AUTH_MODES, AwsAuth, Integration, IntegrationConfig, IntegrationDraft, IntegrationInput,
    IntegrationPatch, IntegrationType, RoleSource, RuntimeScope, SecretField, masked_key_id,
};
use berth_store::IntegrationQuery;
use serde_json::Value;

use super::{Refusals, meta_view};
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::json::{ApiJson, from_value};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

fn key_view(hint: &str, secrets: &BTreeSet<SecretField>) -> KeyView {
    KeyView {
        access_key_id: masked_key_id(hint),
        secret_access_key_set: secrets.contains(&SecretField::AwsSecretAccessKey),
    }
}

fn auth_view(auth: &AwsAuth, secrets: &BTreeSet<SecretField>) -> AuthView {
    match auth {
        AwsAuth::AccessKeys { access_key_hint } => {
            let keys = key_view(access_key_hint, secrets);
            AuthView::AccessKeys {
                access_key_id: keys.access_key_id,
                secret_access_key_set: keys.secret_access_key_set,
            }
        }
        AwsAuth::AssumeRole {
            role_arn,
            external_id,
            session_name,
            source,
        } => AuthView::AssumeRole {
            role_arn: role_arn.clone(),
            external_id: external_id.clone(),
            session_name: session_name.clone(),
            source: match source {
                RoleSource::Ambient => RoleSourceView::Ambient(AmbientWord::Ambient),
                RoleSource::AccessKeys { access_key_hint } => {
                    RoleSourceView::AccessKeys(key_view(access_key_hint, secrets))
                }
            },
        },
        AwsAuth::Ambient => AuthView::Ambient {},
    }
}

pub fn view(i: &Integration) -> IntegrationView {
    let IntegrationConfig::Ecr(ecr) = &i.config;
    let kind = i.config.kind();
    IntegrationView {
        id: i.id.clone(),
        name: i.name.to_string(),
        kind: kind.as_str().into(),
        master_type: kind.master_type().as_str().into(),
        region: ecr.region.clone(),
        auth: auth_view(&ecr.auth, &i.secrets_set),
        registry_id: ecr.registry_id.clone(),
        endpoint: ecr.endpoint.clone(),
        export_long_lived_keys: ecr.export_long_lived_keys,
        subscriptions: i.subscriptions.iter().map(ToString::to_string).collect(),
        runtimes: match &i.runtimes {
            RuntimeScope::All => RuntimesView::All { all: true },
            RuntimeScope::Selected(list) => RuntimesView::Selected {
                selected: list.iter().map(ToString::to_string).collect(),
            },
        },
        meta: meta_view(&i.meta),
    }
}

/// Checks `type` and `auth.mode` before the full parse, so an unknown type answers 422 and an
/// unknown mode names `auth.mode` rather than serde's "unknown variant".
pub(crate) fn precheck(body: &Value, type_required: bool) -> Result<(), ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    };
    match obj.get("type") {
        None if type_required => {
            return Err(ApiError::invalid(
                "type",
                "is required (supported types: ecr)",
            ));
        }
        None => {}
        Some(Value::String(t)) => {
            IntegrationType::parse(t)?;
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "type",
                "must be a string such as \"ecr\"",
            ));
        }
    }
    if let Some(auth) = obj.get("auth") {
        match auth.get("mode") {
            Some(Value::String(mode)) if AUTH_MODES.contains(&mode.as_str()) => {}
            Some(Value::String(mode)) => {
                return Err(ApiError::invalid(
                    "auth.mode",
                    format!("unknown auth mode '{mode}': use access_keys, assume_role or ambient"),
                ));
            }
            _ => {
                return Err(ApiError::invalid(
                    "auth.mode",
                    "is required: access_keys, assume_role or ambient",
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn encode_cursor(after: &str) -> String {
    URL_SAFE_NO_PAD.encode(after)
}

fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            ApiError::invalid(
                "cursor",
                "is not a cursor this server issued (use next_cursor from the previous page)",
            )
        })
}

/// The listing's query from its URL parameters, each checked and named when refused. The web
/// list takes the same parameters.
pub(crate) fn parse_query(params: HashMap<String, String>) -> Result<IntegrationQuery, ApiError> {
    let mut query = IntegrationQuery {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    for (key, value) in params {
        match key.as_str() {
            "type" => {
                query.kind = Some(IntegrationType::parse(&value).map_err(|_| {
                    ApiError::invalid(
                        "type",
                        format!("unknown integration type '{value}' (supported: ecr)"),
                    )
                })?)
            }
            "name" => {
                berth_core::validate_filter_text("name", &value)?;
                query.name_contains = Some(value)
            }
            "subscription" => query.subscription = Some(value),
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "limit",
                            format!("must be a whole number from 1 to {MAX_LIMIT}"),
                        )
                    })?
            }
            "cursor" => query.after = Some(decode_cursor(&value)?),
            other => {
                return Err(ApiError::invalid(
                    other,
                    "is not a filter of this list (use type, name, subscription, limit or cursor)",
                ));
            }
        }
    }
    Ok(query)
}

/// A page of integrations, filtered; a subscription token sees those assigned to it.
#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations",
    params(
        ("type" = Option<String>, Query, description = "Only this type (`ecr`)"),
        ("name" = Option<String>, Query, description = "Names containing this text"),
        ("subscription" = Option<String>, Query, description = "Only those assigned to this subscription"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 500 (default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses((status = 200, body = IntegrationPage), Refusals))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    Query(params): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let mut query = parse_query(params)?;
    query.subscription = crate::policy::confine_list(&caller, query.subscription.take())?;
    let key = format!(
        "{:?}|{:?}|{:?}|{:?}|{}",
        query.kind, query.name_contains, query.subscription, query.after, query.limit
    );
    let generation = caller.generation;
    let body = match state.cache.page(generation, &key) {
        Some(body) => body,
        None => {
            let page = state.store.list_integrations(&query).await?;
            let body = Bytes::from(
                serde_json::to_vec(&IntegrationPage {
                    items: page.items.iter().map(view).collect(),
                    next_cursor: page.next_after.as_deref().map(encode_cursor),
                })
                .map_err(|e| ApiError::from(berth_store::StoreError::Corrupt(e.to_string())))?,
            );
            state.cache.put_page(generation, key, body.clone());
            body
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}

/// One integration; 404 for one that is not assigned to the token's subscription.
#[utoipa::path(get, path = "/api/v1/integrations/{name}", tag = "integrations",
    params(("name" = String, Path)),
    responses((status = 200, body = IntegrationView), Refusals))]
pub async fn show(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<Json<IntegrationView>, ApiError> {
    Ok(Json(view(
        &crate::policy::visible_integration(&state, &caller, &name).await?,
    )))
}

/// Creates an integration from the API's input (admin): for the API and the web form alike.
pub(crate) async fn create_integration(
    state: &AppState,
    caller: &Principal,
    body: Value,
) -> Result<Integration, ApiError> {
    caller.require_admin()?;
    precheck(&body, true)?;
    let input: IntegrationInput = from_value(body)?;
    let draft = IntegrationDraft::create(input)?;
    let created = state
        .store
        .create_integration(draft, &caller.actor())
        .await?;
    tracing::info!(integration = %created.name, actor = %caller.actor(), "integration created");
    audit_export_switch(&created, false, caller);
    if berth_gitops::desired::is_shared(&created.runtimes) {
        let message = format!(
            "berth: create integration {} ({})",
            created.name,
            summary(&created)
        );
        state.gitops.queue(&[&created.name], message).await;
    }
    Ok(created)
}

/// Creates an integration (admin). Secrets are sealed and never shown again.
#[utoipa::path(post, path = "/api/v1/integrations", tag = "integrations",
    request_body = berth_api::IntegrationInput,
    responses((status = 201, body = IntegrationView, headers(("Location" = String))), Refusals))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<Value>,
) -> Result<impl IntoResponse, ApiError> {
    let created = create_integration(&state, &caller, body).await?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/integrations/{}", created.name)) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, Json(view(&created))))
}

/// Applies the API's patch to an integration (admin): for the API and the web form alike.
pub(crate) async fn update_integration(
    state: &AppState,
    caller: &Principal,
    name: &str,
    body: Value,
) -> Result<Integration, ApiError> {
    caller.require_admin()?;
    precheck(&body, false)?;
    let patch: IntegrationPatch = from_value(body)?;
    let before = state.store.get_integration(name).await?;
    let exported_before = exports_keys(&before);
    let updated = state
        .store
        .update_integration(
            name,
            &caller.actor(),
            Box::new(move |current| IntegrationDraft::patch(current, patch)),
        )
        .await?;
    state.broker.invalidate(&updated.id);
    tracing::info!(integration = %updated.name, actor = %caller.actor(), "integration updated");
    audit_export_switch(&updated, exported_before, caller);
    queue_update(state, &before, &updated).await;
    Ok(updated)
}

/// Changes an integration (admin): absent fields and secrets stay as they are.
#[utoipa::path(patch, path = "/api/v1/integrations/{name}", tag = "integrations",
    params(("name" = String, Path)),
    request_body = berth_api::IntegrationPatch,
    responses((status = 200, body = IntegrationView), Refusals))]
pub async fn update(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<IntegrationView>, ApiError> {
    let updated = update_integration(&state, &caller, &name, body).await?;
    Ok(Json(view(&updated)))
}

fn exports_keys(i: &Integration) -> bool {
    let IntegrationConfig::Ecr(ecr) = &i.config;
    ecr.export_long_lived_keys
}

/// Turning long-lived key export on or off is an audited event.
fn audit_export_switch(i: &Integration, before: bool, caller: &Principal) {
    let now = exports_keys(i);
    if now != before {
        tracing::warn!(
            target: "berth::audit",
            integration = %i.name,
            actor = %caller.actor(),
            export_long_lived_keys = now,
            "long-lived key export switched {}",
            if now { "on" } else { "off" }
        );
    }
}

/// Deletes an integration (admin), unless something uses it: for the API and the web dialog.
pub(crate) async fn delete_integration(
    state: &AppState,
    caller: &Principal,
    name: &str,
) -> Result<(), ApiError> {
    caller.require_admin()?;
    let before = state.store.get_integration(name).await?;
    state.store.delete_integration(name).await?;
    state.broker.invalidate(&before.id);
    tracing::info!(integration = %name, actor = %caller.actor(), "integration deleted");
    if berth_gitops::desired::is_shared(&before.runtimes) {
        let message = format!("berth: delete integration {}", before.name);
        state.gitops.queue(&[&before.name], message).await;
    }
    Ok(())
}

/// The settings a commit message names: the region, the way it authenticates.
fn summary(i: &Integration) -> String {
    let IntegrationConfig::Ecr(ecr) = &i.config;
    format!(
        "region {}, {}",
        ecr.region,
        ecr.auth.mode().replace('_', " ")
    )
}

/// Queues the repository change an update makes: files rewritten, moved (re-scoped) or renamed.
async fn queue_update(state: &AppState, before: &Integration, after: &Integration) {
    let shared = |i: &Integration| berth_gitops::desired::is_shared(&i.runtimes);
    if !shared(before) && !shared(after) {
        return;
    }
    let message = if before.name.key() != after.name.key() {
        format!(
            "berth: rename integration {} to {}",
            before.name, after.name
        )
    } else if !shared(after) {
        format!("berth: unshare integration {} from runtimes", after.name)
    } else {
        format!(
            "berth: update integration {} ({})",
            after.name,
            summary(after)
        )
    };
    state
        .gitops
        .queue(&[&before.name, &after.name], message)
        .await;
}

/// Deletes an integration (admin); refused with the list of users while anything uses it.
#[utoipa::path(delete, path = "/api/v1/integrations/{name}", tag = "integrations",
    params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), Refusals))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete_integration(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
