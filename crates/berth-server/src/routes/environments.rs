//! `/api/v1/environments`: named sets of integrations a subscription's pipelines use. Each holds
//! its integrations (they cannot be deleted while it exists); deleting it releases them.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use berth_core::Name;
use berth_store::Environment;
use serde::Deserialize;
use serde_json::{Value, json};

use super::with_meta;
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::json::ApiJson;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEnvironment {
    name: String,
    subscription: String,
    #[serde(default)]
    integrations: Vec<String>,
}

fn view(e: &Environment) -> Value {
    with_meta(
        json!({"id": e.id, "name": e.name, "subscription": e.subscription, "integrations": e.integrations}),
        &e.meta,
    )
}

pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<NewEnvironment>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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

pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut asked = None;
    for (key, value) in params {
        match key.as_str() {
            "subscription" => asked = Some(value),
            other => {
                return Err(ApiError::invalid(
                    other,
                    "is not a filter of this list (use subscription)",
                ));
            }
        }
    }
    let own = crate::policy::confine_list(&caller, asked)?;
    let items = state.store.list_environments(own.as_deref()).await?;
    Ok(Json(
        json!({ "items": items.iter().map(view).collect::<Vec<_>>() }),
    ))
}

pub async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state.store.delete_environment(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
