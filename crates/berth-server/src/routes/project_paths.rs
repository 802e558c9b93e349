//! Everything under `/api/v1/projects/{org}/{repo}…`: a project's name holds `/`s, so axum hands
//! the whole rest of the path to one handler per method, and this reads it from the right (a
//! resource's name holds no `/`) to find the endpoint: the project, its release, its resources,
//! one resource, its versions, its event secret or its triggers.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{projects, resources};
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;

/// What a path under `/api/v1/projects/` names.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Project(&'a str),
    Release(&'a str),
    Resources(&'a str),
    Resource(&'a str, &'a str),
    Versions(&'a str, &'a str),
    EventSecret(&'a str, &'a str),
    Triggers(&'a str, &'a str),
    Trigger(&'a str, &'a str, &'a str),
}

fn target(path: &str) -> Target<'_> {
    let parts: Vec<&str> = path.split('/').collect();
    let n = parts.len();
    let prefix = |k: usize| {
        let cut: usize = parts[..n - k].iter().map(|p| p.len() + 1).sum();
        &path[..cut.saturating_sub(1)]
    };
    if n >= 6 && parts[n - 4] == "resources" && parts[n - 2] == "triggers" {
        return Target::Trigger(prefix(4), parts[n - 3], parts[n - 1]);
    }
    if n >= 5 && parts[n - 3] == "resources" {
        match parts[n - 1] {
            "versions" => return Target::Versions(prefix(3), parts[n - 2]),
            "event-secret" => return Target::EventSecret(prefix(3), parts[n - 2]),
            "triggers" => return Target::Triggers(prefix(3), parts[n - 2]),
            _ => {}
        }
    }
    if n >= 4 && parts[n - 2] == "resources" {
        return Target::Resource(prefix(2), parts[n - 1]);
    }
    if n >= 3 && parts[n - 1] == "resources" {
        return Target::Resources(prefix(1));
    }
    if n >= 3 && parts[n - 1] == "release-dependencies" {
        return Target::Release(prefix(1));
    }
    Target::Project(path)
}

fn not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method; see /api/v1/openapi.json",
    )
}

/// A JSON body, or the type's default when there is none.
fn body_or_default<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    crate::json::parse(body)
}

pub async fn get(
    State(state): State<AppState>,
    caller: Principal,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    Ok(match target(&path) {
        Target::Project(name) => projects::show(State(state), caller, Path(name.to_owned()))
            .await?
            .into_response(),
        Target::Resources(p) => resources::list(&state, &caller, p).await?.into_response(),
        Target::Resource(p, n) => resources::show(&state, &caller, p, n)
            .await?
            .into_response(),
        Target::Versions(p, n) => resources::versions(&state, &caller, p, n, &query)
            .await?
            .into_response(),
        Target::Triggers(p, n) => resources::triggers(&state, &caller, p, n)
            .await?
            .into_response(),
        Target::Release(_) | Target::EventSecret(..) | Target::Trigger(..) => {
            return Err(not_allowed());
        }
    })
}

pub async fn post(
    State(state): State<AppState>,
    caller: Principal,
    Path(path): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    Ok(match target(&path) {
        Target::Release(_) => projects::release_dependencies(State(state), caller, Path(path))
            .await?
            .into_response(),
        Target::Versions(p, n) => {
            resources::post_state(&state, &caller, p, n, body_or_default(&body)?)
                .await?
                .into_response()
        }
        Target::EventSecret(p, n) => resources::event_secret(&state, &caller, p, n)
            .await?
            .into_response(),
        Target::Triggers(p, n) => {
            resources::add_trigger(&state, &caller, p, n, crate::json::parse(&body)?)
                .await?
                .into_response()
        }
        _ => return Err(not_allowed()),
    })
}

pub async fn put(
    State(state): State<AppState>,
    caller: Principal,
    Path(path): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    match target(&path) {
        Target::Resource(p, n) => {
            Ok(
                resources::put(&state, &caller, p, n, crate::json::parse(&body)?)
                    .await?
                    .into_response(),
            )
        }
        _ => Err(not_allowed()),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Principal,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    Ok(match target(&path) {
        Target::Project(name) => projects::remove(State(state), caller, Path(name.to_owned()))
            .await?
            .into_response(),
        Target::Resource(p, n) => resources::remove(&state, &caller, p, n)
            .await?
            .into_response(),
        Target::Trigger(p, n, id) => resources::remove_trigger(&state, &caller, p, n, id)
            .await?
            .into_response(),
        _ => return Err(not_allowed()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_from_the_right() {
        assert_eq!(target("acme/web"), Target::Project("acme/web"));
        assert_eq!(target("acme/sub/web"), Target::Project("acme/sub/web"));
        assert_eq!(
            target("acme/web/release-dependencies"),
            Target::Release("acme/web")
        );
        assert_eq!(target("acme/web/resources"), Target::Resources("acme/web"));
        assert_eq!(
            target("acme/sub/web/resources/app"),
            Target::Resource("acme/sub/web", "app")
        );
        assert_eq!(
            target("acme/web/resources/app/versions"),
            Target::Versions("acme/web", "app")
        );
        assert_eq!(
            target("acme/web/resources/versions"),
            Target::Resource("acme/web", "versions"),
            "a resource may be called versions"
        );
        assert_eq!(
            target("acme/web/resources/app/event-secret"),
            Target::EventSecret("acme/web", "app")
        );
        assert_eq!(
            target("acme/web/resources/app/triggers"),
            Target::Triggers("acme/web", "app")
        );
        assert_eq!(
            target("acme/sub/web/resources/app/triggers/t1"),
            Target::Trigger("acme/sub/web", "app", "t1")
        );
    }
}
