//! `/api/v1/subscriptions`: CI organisations that integrations are assigned to.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_api::{NewSubscription, SubscriptionList, SubscriptionView};
use berth_core::Name;
use berth_store::Subscription;

use super::{Refusals, meta_view};
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::json::ApiJson;

fn view(s: &Subscription) -> SubscriptionView {
    SubscriptionView {
        id: s.id.clone(),
        name: s.name.to_string(),
        meta: meta_view(&s.meta),
    }
}

/// Adds a subscription (admin).
#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "subscriptions",
    request_body = NewSubscription,
    responses((status = 201, body = SubscriptionView), Refusals))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<NewSubscription>,
) -> Result<(StatusCode, Json<SubscriptionView>), ApiError> {
    caller.require_admin()?;
    let name = Name::parse("name", &body.name)?;
    let created = state
        .store
        .create_subscription(&name, &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(view(&created))))
}

/// Lists subscriptions: all for an admin, its own for a subscription token.
#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "subscriptions",
    responses((status = 200, body = SubscriptionList), Refusals))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
) -> Result<Json<SubscriptionList>, ApiError> {
    let all = state.store.list_subscriptions().await?;
    let items = all
        .iter()
        .filter(|s| caller.may_see_subscription(s.name.as_str()))
        .map(view)
        .collect();
    Ok(Json(SubscriptionList { items }))
}

/// One subscription; 404 for one the token may not see.
#[utoipa::path(get, path = "/api/v1/subscriptions/{name}", tag = "subscriptions",
    params(("name" = String, Path)),
    responses((status = 200, body = SubscriptionView), Refusals))]
pub async fn show(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<Json<SubscriptionView>, ApiError> {
    if !caller.may_see_subscription(&name) {
        return Err(crate::policy::absent("subscription", &name));
    }
    Ok(Json(view(&state.store.get_subscription(&name).await?)))
}

/// Deletes a subscription (admin); refused while integrations or projects use it.
#[utoipa::path(delete, path = "/api/v1/subscriptions/{name}", tag = "subscriptions",
    params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), Refusals))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state.store.delete_subscription(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
