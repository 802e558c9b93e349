//! `/api/v1/runtimes`: GitOps clusters that integrations are shared with. Admin only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_api::{NewRuntime, RuntimeList, RuntimeView};
use berth_core::Name;
use berth_store::Runtime;

use super::{Refusals, meta_view};
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::json::ApiJson;

fn view(r: &Runtime) -> RuntimeView {
    RuntimeView {
        id: r.id.clone(),
        name: r.name.to_string(),
        sealing_cert: r.sealing_cert.clone(),
        meta: meta_view(&r.meta),
    }
}

/// Adds a runtime (admin), with the cluster's sealing certificate when it has one.
#[utoipa::path(post, path = "/api/v1/runtimes", tag = "runtimes",
    request_body = NewRuntime,
    responses((status = 201, body = RuntimeView), Refusals))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<NewRuntime>,
) -> Result<(StatusCode, Json<RuntimeView>), ApiError> {
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

/// Lists runtimes (admin).
#[utoipa::path(get, path = "/api/v1/runtimes", tag = "runtimes",
    responses((status = 200, body = RuntimeList), Refusals))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
) -> Result<Json<RuntimeList>, ApiError> {
    caller.require_admin()?;
    let items = state.store.list_runtimes().await?;
    Ok(Json(RuntimeList {
        items: items.iter().map(view).collect(),
    }))
}

/// One runtime (admin).
#[utoipa::path(get, path = "/api/v1/runtimes/{name}", tag = "runtimes",
    params(("name" = String, Path)),
    responses((status = 200, body = RuntimeView), Refusals))]
pub async fn show(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<Json<RuntimeView>, ApiError> {
    caller.require_admin()?;
    Ok(Json(view(&state.store.get_runtime(&name).await?)))
}

/// Deletes a runtime (admin); refused while integrations are shared with it.
#[utoipa::path(delete, path = "/api/v1/runtimes/{name}", tag = "runtimes",
    params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), Refusals))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state.store.delete_runtime(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
