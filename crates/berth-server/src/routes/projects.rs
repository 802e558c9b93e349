//! `/api/v1/projects`: CI repositories (`org/repo`), each in one subscription. A project's name
//! contains `/`, so its own routes take the rest of the path (see `routes::router`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use berth_api::{NewProject, ProjectList, ProjectView, ReleasedDependencies};
use berth_core::ProjectName;
use berth_store::Project;

use super::{Refusals, meta_view};
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::json::ApiJson;

fn view(p: &Project) -> ProjectView {
    ProjectView {
        id: p.id.clone(),
        name: p.name.to_string(),
        subscription: p.subscription.to_string(),
        meta: meta_view(&p.meta),
    }
}

/// Adds a project to a subscription (admin).
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects",
    request_body = NewProject,
    responses((status = 201, body = ProjectView), Refusals))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<NewProject>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    caller.require_admin()?;
    let name = ProjectName::parse("name", &body.name)?;
    let created = state
        .store
        .create_project(&name, &body.subscription, &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(view(&created))))
}

/// Lists projects; a subscription token sees its own subscription's only.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects",
    params(("subscription" = Option<String>, Query, description = "Only this subscription's projects")),
    responses((status = 200, body = ProjectList), Refusals))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<ProjectList>, ApiError> {
    let asked = subscription_filter(params)?;
    let subscription = crate::policy::confine_list(&caller, asked)?;
    let items = state.store.list_projects(subscription.as_deref()).await?;
    Ok(Json(ProjectList {
        items: items.iter().map(view).collect(),
    }))
}

/// The `subscription` filter, the only one project and environment lists take.
pub(crate) fn subscription_filter(
    params: HashMap<String, String>,
) -> Result<Option<String>, ApiError> {
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
    Ok(asked)
}

/// One project; 404 for one the token may not see.
#[utoipa::path(get, path = "/api/v1/projects/{name}", tag = "projects",
    params(("name" = String, Path, description = "`org/repo`; its `/` is not encoded")),
    responses((status = 200, body = ProjectView), Refusals))]
pub async fn show(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<Json<ProjectView>, ApiError> {
    let project = crate::policy::visible_project(&state, &caller, &name).await?;
    Ok(Json(view(&project)))
}

/// Deletes a project (admin), releasing what its builds recorded.
#[utoipa::path(delete, path = "/api/v1/projects/{name}", tag = "projects",
    params(("name" = String, Path, description = "`org/repo`; its `/` is not encoded")),
    responses((status = 204, description = "Deleted"), Refusals))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state.store.delete_project(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Forgets what the project's builds recorded, without deleting the project (admin).
#[utoipa::path(post, path = "/api/v1/projects/{name}/release-dependencies", tag = "projects",
    params(("name" = String, Path, description = "`org/repo`; its `/` is not encoded")),
    responses((status = 200, body = ReleasedDependencies), Refusals))]
pub async fn release_dependencies(
    State(state): State<AppState>,
    caller: Principal,
    Path(path): Path<String>,
) -> Result<Json<ReleasedDependencies>, ApiError> {
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
    Ok(Json(ReleasedDependencies {
        project: project.name.to_string(),
        released,
    }))
}

pub(crate) const RELEASE_SUFFIX: &str = "/release-dependencies";
