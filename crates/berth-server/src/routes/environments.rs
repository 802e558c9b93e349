//! `/api/v1/environments`: named sets of integrations a subscription's pipelines use. Each holds
//! its integrations (they cannot be deleted while it exists); deleting it releases them.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use berth_api::{EnvironmentList, EnvironmentView, NewEnvironment};
use berth_core::Name;
use berth_store::Environment;

use super::{Refusals, meta_view};
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::json::ApiJson;

fn view(e: &Environment) -> EnvironmentView {
    EnvironmentView {
        id: e.id.clone(),
        name: e.name.to_string(),
        subscription: e.subscription.to_string(),
        integrations: e.integrations.iter().map(ToString::to_string).collect(),
        meta: meta_view(&e.meta),
    }
}

/// Adds an environment (admin).
#[utoipa::path(post, path = "/api/v1/environments", tag = "environments",
    request_body = NewEnvironment,
    responses((status = 201, body = EnvironmentView), Refusals))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<NewEnvironment>,
) -> Result<(StatusCode, Json<EnvironmentView>), ApiError> {
    caller.require_admin()?;
    let name = Name::parse("name", &body.name)?;
    let integrations = body
        .integrations
        .iter()
        .enumerate()
        .map(|(i, n)| Name::parse(&format!("integrations[{i}]"), n))
        .collect::<Result<Vec<_>, _>>()?;
    let created = state
        .store
        .create_environment(&name, &body.subscription, &integrations, &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(view(&created))))
}

/// Lists environments; a subscription token sees its own subscription's only.
#[utoipa::path(get, path = "/api/v1/environments", tag = "environments",
    params(("subscription" = Option<String>, Query, description = "Only this subscription's environments")),
    responses((status = 200, body = EnvironmentList), Refusals))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<EnvironmentList>, ApiError> {
    let asked = super::projects::subscription_filter(params)?;
    let own = crate::policy::confine_list(&caller, asked)?;
    let items = state.store.list_environments(own.as_deref()).await?;
    Ok(Json(EnvironmentList {
        items: items.iter().map(view).collect(),
    }))
}

/// Deletes an environment (admin), releasing its integrations.
#[utoipa::path(delete, path = "/api/v1/environments/{name}", tag = "environments",
    params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), Refusals))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state.store.delete_environment(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
