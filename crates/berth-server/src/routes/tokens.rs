//! `/api/v1/tokens`: subscription-scoped API tokens, minted by admins. The token text is in the
//! create response only; afterwards only its id is known.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_api::{CreatedToken, NewToken, TokenList, TokenView};
use berth_core::Name;
use berth_store::{TokenInfo, TokenRole};
use secrecy::ExposeSecret;

use super::{Refusals, timestamp};
use crate::AppState;
use crate::auth::{Principal, mint};
use crate::error::ApiError;
use crate::json::ApiJson;

fn view(t: &TokenInfo) -> TokenView {
    let (role, subscription) = super::role_parts(&t.role);
    TokenView {
        id: t.id.clone(),
        role,
        subscription,
        description: t.description.clone(),
        created_at: timestamp(t.created_at),
        created_by: t.created_by.clone(),
    }
}

/// Mints a token for one subscription (admin). Its text is shown in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    request_body = NewToken,
    responses((status = 201, body = CreatedToken), Refusals))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    caller.require_admin()?;
    let subscription = Name::parse("subscription", &body.subscription)?;
    if body.description.len() > 200 {
        return Err(ApiError::invalid(
            "description",
            "must be at most 200 characters",
        ));
    }
    let token = mint();
    let info = state
        .store
        .create_token(
            &token.id,
            &token.secret_hash,
            &TokenRole::Subscription(subscription),
            &body.description,
            &caller.actor(),
        )
        .await?;
    tracing::info!(token = %info.id, actor = %caller.actor(), "subscription token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            info: view(&info),
            token: token.text.expose_secret().to_owned(),
        }),
    ))
}

/// Lists tokens, without their text (admin).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = TokenList), Refusals))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
) -> Result<Json<TokenList>, ApiError> {
    caller.require_admin()?;
    let items = state.store.list_tokens().await?;
    Ok(Json(TokenList {
        items: items.iter().map(view).collect(),
    }))
}

/// Revokes a subscription token (admin); the admin token is rotated instead.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path)),
    responses((status = 204, description = "Revoked"), Refusals))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    if let Some(token) = state.store.find_token(&id).await?
        && token.info.role == TokenRole::Admin
    {
        return Err(ApiError::invalid(
            "id",
            "is the admin token: replace it with 'berth token rotate-admin' instead of deleting it",
        ));
    }
    state.store.delete_token(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
