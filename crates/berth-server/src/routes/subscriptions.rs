//! `/api/v1/subscriptions`: CI organisations that integrations are assigned to.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_core::Name;
use berth_store::Subscription;
use serde::Deserialize;
use serde_json::{Value, json};

use super::with_meta;
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::json::ApiJson;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    name: String,
}

fn view(s: &Subscription) -> Value {
    with_meta(json!({"id": s.id, "name": s.name}), &s.meta)
}

fn confine(caller: &Principal, name: &str) -> Result<(), ApiError> {
    match caller.may_see_subscription(name) {
        true => Ok(()),
        false => Err(crate::policy::absent("subscription", name)),
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<NewSubscription>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    let name = Name::parse("name", &body.name)?;
    let created = state
        .store
        .create_subscription(&name, &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(view(&created))))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
) -> Result<Json<Value>, ApiError> {
    let all = state.store.list_subscriptions().await?;
    let items: Vec<Value> = all
        .iter()
        .filter(|s| {
            caller
                .subscription()
                .is_none_or(|own| own.key() == s.name.key())
        })
        .map(view)
        .collect();
    Ok(Json(json!({ "items": items })))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    confine(&caller, &name)?;
    Ok(Json(view(&state.store.get_subscription(&name).await?)))
}

pub async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state.store.delete_subscription(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
