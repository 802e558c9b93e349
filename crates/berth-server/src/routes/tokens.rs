//! `/api/v1/tokens`: subscription-scoped API tokens, minted by admins. The token text is in the
//! create response only; afterwards only its id is known.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_core::Name;
use berth_store::{TokenInfo, TokenRole};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::timestamp;
use crate::AppState;
use crate::auth::{Principal, mint};
use crate::error::ApiError;
use crate::json::ApiJson;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    subscription: String,
    #[serde(default)]
    description: String,
}

fn view(t: &TokenInfo) -> Value {
    let (role, subscription) = match &t.role {
        TokenRole::Admin => ("admin", None),
        TokenRole::Subscription(s) => ("subscription", Some(s)),
    };
    json!({
        "id": t.id,
        "role": role,
        "subscription": subscription,
        "description": t.description,
        "created_at": timestamp(t.created_at),
        "created_by": t.created_by,
    })
}

pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    let mut out = view(&info);
    out["token"] = json!(token.text.expose_secret());
    Ok((StatusCode::CREATED, Json(out)))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let items = state.store.list_tokens().await?;
    Ok(Json(
        json!({ "items": items.iter().map(view).collect::<Vec<_>>() }),
    ))
}

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
