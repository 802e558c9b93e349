//! `/api/v1/integrations`: the registry integrations. Secrets are write-only: responses show a
//! masked access key id and `*_set` flags, never a secret value.

use std::collections::HashMap;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_core::{
    AUTH_MODES, AwsAuth, Integration, IntegrationConfig, IntegrationDraft, IntegrationInput,
    IntegrationPatch, IntegrationType, RoleSource, RuntimeScope, SecretField, masked_key_id,
};
use berth_store::IntegrationQuery;
use serde_json::{Value, json};

use super::with_meta;
use crate::AppState;
use crate::auth::{Generation, Principal};
use crate::error::ApiError;
use crate::json::{ApiJson, from_value};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

fn key_view(hint: &str, secrets: &std::collections::BTreeSet<SecretField>) -> Value {
    json!({
        "access_key_id": masked_key_id(hint),
        "secret_access_key_set": secrets.contains(&SecretField::AwsSecretAccessKey),
    })
}

pub fn view(i: &Integration) -> Value {
    let IntegrationConfig::Ecr(ecr) = &i.config;
    let auth = match &ecr.auth {
        AwsAuth::AccessKeys { access_key_hint } => {
            let mut v = key_view(access_key_hint, &i.secrets_set);
            v["mode"] = json!("access_keys");
            v
        }
        AwsAuth::AssumeRole {
            role_arn,
            external_id,
            session_name,
            source,
        } => json!({
            "mode": "assume_role",
            "role_arn": role_arn,
            "external_id": external_id,
            "session_name": session_name,
            "source": match source {
                RoleSource::Ambient => json!("ambient"),
                RoleSource::AccessKeys { access_key_hint } => key_view(access_key_hint, &i.secrets_set),
            },
        }),
        AwsAuth::Ambient => json!({"mode": "ambient"}),
    };
    let kind = i.config.kind();
    with_meta(
        json!({
            "id": i.id,
            "name": i.name,
            "type": kind.as_str(),
            "master_type": kind.master_type().as_str(),
            "region": ecr.region,
            "auth": auth,
            "registry_id": ecr.registry_id,
            "endpoint": ecr.endpoint,
            "export_long_lived_keys": ecr.export_long_lived_keys,
            "subscriptions": i.subscriptions,
            "runtimes": match &i.runtimes {
                RuntimeScope::All => json!({"all": true}),
                RuntimeScope::Selected(list) => json!({"selected": list}),
            },
        }),
        &i.meta,
    )
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

fn encode_cursor(after: &str) -> String {
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

pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    Extension(Generation(generation)): Extension<Generation>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
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
    query.subscription = crate::policy::confine_list(&caller, query.subscription.take())?;
    let key = format!(
        "{:?}|{:?}|{:?}|{:?}|{}",
        query.kind, query.name_contains, query.subscription, query.after, query.limit
    );
    let body = match state.cache.page(generation, &key) {
        Some(body) => body,
        None => {
            let page = state.store.list_integrations(&query).await?;
            let body = Bytes::from(
                serde_json::to_vec(&json!({
                    "items": page.items.iter().map(view).collect::<Vec<_>>(),
                    "next_cursor": page.next_after.as_deref().map(encode_cursor),
                }))
                .map_err(|e| ApiError::from(berth_store::StoreError::Corrupt(e.to_string())))?,
            );
            state.cache.put_page(generation, key, body.clone());
            body
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(
        &crate::policy::visible_integration(&state, &caller, &name).await?,
    )))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<Value>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_admin()?;
    precheck(&body, true)?;
    let input: IntegrationInput = from_value(body)?;
    let draft = IntegrationDraft::create(input)?;
    let created = state
        .store
        .create_integration(draft, &caller.actor())
        .await?;
    tracing::info!(integration = %created.name, actor = %caller.actor(), "integration created");
    audit_export_switch(&created, false, &caller);
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/integrations/{}", created.name)) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, Json(view(&created))))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    precheck(&body, false)?;
    let patch: IntegrationPatch = from_value(body)?;
    let exported_before = exports_keys(&state.store.get_integration(&name).await?);
    let updated = state
        .store
        .update_integration(
            &name,
            &caller.actor(),
            Box::new(move |current| IntegrationDraft::patch(current, patch)),
        )
        .await?;
    state.broker.invalidate(&updated.id);
    tracing::info!(integration = %updated.name, actor = %caller.actor(), "integration updated");
    audit_export_switch(&updated, exported_before, &caller);
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

pub async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let id = state.store.get_integration(&name).await?.id;
    state.store.delete_integration(&name).await?;
    state.broker.invalidate(&id);
    tracing::info!(integration = %name, actor = %caller.actor(), "integration deleted");
    Ok(StatusCode::NO_CONTENT)
}
