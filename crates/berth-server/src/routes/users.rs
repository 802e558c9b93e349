//! `/api/v1/users`: people who sign in to the web pages (admin only). Passwords are write-only
//! and stored as argon2id hashes; a new password ends the user's sessions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_api::{NewPassword, NewUser, UserList, UserView};
use berth_core::Name;
use berth_store::{TokenRole, User};

use super::{Refusals, meta_view};
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::passwords;

pub(crate) fn view(u: &User) -> UserView {
    let (role, subscription) = super::role_parts(&u.role);
    UserView {
        id: u.id.clone(),
        name: u.name.to_string(),
        role,
        subscription,
        meta: meta_view(&u.meta),
    }
}

/// The role a new user asks for: `admin: true`, or one subscription.
fn role_of(body: &NewUser) -> Result<TokenRole, ApiError> {
    match (body.admin, &body.subscription) {
        (true, None) => Ok(TokenRole::Admin),
        (false, Some(s)) => Ok(TokenRole::Subscription(Name::parse("subscription", s)?)),
        (true, Some(_)) => Err(ApiError::invalid(
            "subscription",
            "an admin sees every subscription: give admin or a subscription, not both",
        )),
        (false, None) => Err(ApiError::invalid(
            "subscription",
            "is required unless admin is true",
        )),
    }
}

/// Creates a user (admin).
#[utoipa::path(post, path = "/api/v1/users", tag = "users",
    request_body = NewUser,
    responses((status = 201, body = UserView), Refusals))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    caller.require_admin()?;
    let name = Name::parse("name", &body.name)?;
    let role = role_of(&body)?;
    passwords::check_rule("password", &body.password)?;
    let hash = passwords::hash(body.password).await?;
    let user = state
        .store
        .create_user(&name, &hash, &role, &caller.actor())
        .await?;
    tracing::info!(target: "berth::audit", user = %user.name, actor = %caller.actor(), "user created");
    Ok((StatusCode::CREATED, Json(view(&user))))
}

/// Every user (admin).
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = UserList), Refusals))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
) -> Result<Json<UserList>, ApiError> {
    caller.require_admin()?;
    let users = state.store.list_users().await?;
    Ok(Json(UserList {
        items: users.iter().map(view).collect(),
    }))
}

/// Sets a user's password (admin) and ends their sessions.
#[utoipa::path(put, path = "/api/v1/users/{name}/password", tag = "users",
    params(("name" = String, Path)),
    request_body = NewPassword,
    responses((status = 204, description = "Changed"), Refusals))]
pub async fn set_password(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<NewPassword>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    passwords::check_rule("password", &body.password)?;
    let hash = passwords::hash(body.password).await?;
    state
        .store
        .set_password(&name, &hash, &caller.actor())
        .await?;
    tracing::info!(target: "berth::audit", user = %name, actor = %caller.actor(), "password changed");
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a user (admin) and their sessions.
#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "users",
    params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), Refusals))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state.store.delete_user(&name).await?;
    tracing::info!(target: "berth::audit", user = %name, actor = %caller.actor(), "user deleted");
    Ok(StatusCode::NO_CONTENT)
}
