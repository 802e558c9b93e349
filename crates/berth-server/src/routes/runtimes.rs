//! `/api/v1/runtimes`: GitOps clusters that integrations are shared with. Admin only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_core::Name;
use berth_store::Runtime;
use serde::Deserialize;
use serde_json::{Value, json};

use super::with_meta;
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::json::ApiJson;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRuntime {
    name: String,
    /// The cluster's sealed-secrets public certificate (PEM), for GitOps resources.
    sealing_cert: Option<String>,
}

fn view(r: &Runtime) -> Value {
    with_meta(
        json!({"id": r.id, "name": r.name, "sealing_cert": r.sealing_cert}),
        &r.meta,
    )
}

pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<NewRuntime>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    let name = Name::parse("name", &body.name)?;
    if let Some(cert) = &body.sealing_cert
        && !cert.trim_start().starts_with("-----BEGIN CERTIFICATE-----")
    {
        return Err(ApiError::invalid(
            "sealing_cert",
            "must be a PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    let created = state
        .store
        .create_runtime(&name, body.sealing_cert.as_deref(), &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(view(&created))))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let items = state.store.list_runtimes().await?;
    Ok(Json(
        json!({ "items": items.iter().map(view).collect::<Vec<_>>() }),
    ))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    Ok(Json(view(&state.store.get_runtime(&name).await?)))
}

pub async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state.store.delete_runtime(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
