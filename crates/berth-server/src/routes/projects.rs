//! `/api/v1/projects`: CI repositories (`org/repo`), each in one subscription.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use berth_core::ProjectName;
use berth_store::Project;
use serde::Deserialize;
use serde_json::{Value, json};

use super::with_meta;
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::json::ApiJson;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    name: String,
    subscription: String,
}

fn view(p: &Project) -> Value {
    with_meta(
        json!({"id": p.id, "name": p.name, "subscription": p.subscription}),
        &p.meta,
    )
}

pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<NewProject>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    let name = ProjectName::parse("name", &body.name)?;
    let created = state
        .store
        .create_project(&name, &body.subscription, &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(view(&created))))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut subscription = None;
    for (key, value) in params {
        match key.as_str() {
            "subscription" => subscription = Some(value),
            other => {
                return Err(ApiError::invalid(
                    other,
                    "is not a filter of this list (use subscription)",
                ));
            }
        }
    }
    let subscription = crate::policy::confine_list(&caller, subscription)?;
    let items = state.store.list_projects(subscription.as_deref()).await?;
    Ok(Json(
        json!({ "items": items.iter().map(view).collect::<Vec<_>>() }),
    ))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let project = crate::policy::visible_project(&state, &caller, &name).await?;
    Ok(Json(view(&project)))
}

pub async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state.store.delete_project(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/projects/{org}/{repo}/release-dependencies` (admin): forgets what the
/// project's builds recorded, without deleting the project.
pub async fn release_dependencies(
    State(state): State<AppState>,
    caller: Principal,
    Path(path): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = path.strip_suffix(RELEASE_SUFFIX).ok_or_else(|| {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("POST is only for /api/v1/projects/{{org}}/{{repo}}{RELEASE_SUFFIX}"),
        )
    })?;
    caller.require_admin()?;
    let project = state.store.get_project(name).await?;
    let released = state
        .store
        .release_project_dependencies(project.name.as_str())
        .await?;
    tracing::info!(target: "berth::audit", project = %project.name, released, actor = %caller.actor(), "project dependencies released");
    Ok(Json(json!({"project": project.name, "released": released})))
}

const RELEASE_SUFFIX: &str = "/release-dependencies";
