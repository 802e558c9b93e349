//! One file per endpoint family; `router()` wires them and is the single list of API paths
//! (checked against the OpenAPI document by a test).

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::AppState;
use crate::error::ApiError;

mod ci;
mod credentials;
mod environments;
mod health;
mod integrations;
mod openapi;
mod projects;
mod runtimes;
mod subscriptions;
mod tokens;

pub use openapi::DOCUMENT as OPENAPI;

/// Every route as (axum path, methods). The OpenAPI test walks this list.
pub const ROUTES: &[(&str, &[&str])] = &[
    ("/healthz", &["get"]),
    ("/api/v1/openapi.json", &["get"]),
    ("/api/v1/integrations", &["get", "post"]),
    ("/api/v1/integrations/{name}", &["get", "patch", "delete"]),
    ("/api/v1/integrations/{name}/credentials", &["post"]),
    ("/api/v1/integrations/{name}/test", &["post"]),
    ("/api/v1/connection-tests", &["post"]),
    ("/api/v1/registry-credentials", &["post"]),
    ("/api/v1/repositories", &["post"]),
    ("/api/v1/integrations/{name}/dependencies", &["get"]),
    ("/api/v1/ci/resolve", &["post"]),
    ("/api/v1/ci/resources", &["post"]),
    ("/api/v1/environments", &["get", "post"]),
    ("/api/v1/environments/{name}", &["delete"]),
    ("/api/v1/subscriptions", &["get", "post"]),
    ("/api/v1/subscriptions/{name}", &["get", "delete"]),
    ("/api/v1/projects", &["get", "post"]),
    ("/api/v1/projects/{*name}", &["get", "delete"]),
    ("/api/v1/projects/{*name}/release-dependencies", &["post"]),
    ("/api/v1/runtimes", &["get", "post"]),
    ("/api/v1/runtimes/{name}", &["get", "delete"]),
    ("/api/v1/tokens", &["get", "post"]),
    ("/api/v1/tokens/{id}", &["delete"]),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route(
            "/api/v1/integrations",
            get(integrations::list).post(integrations::create),
        )
        .route(
            "/api/v1/integrations/{name}",
            get(integrations::show)
                .patch(integrations::update)
                .delete(integrations::remove),
        )
        .route(
            "/api/v1/integrations/{name}/credentials",
            post(credentials::credentials),
        )
        .route("/api/v1/integrations/{name}/test", post(credentials::test))
        .route("/api/v1/connection-tests", post(credentials::test_unsaved))
        .route("/api/v1/registry-credentials", post(credentials::by_host))
        .route("/api/v1/repositories", post(credentials::create_repository))
        .route(
            "/api/v1/integrations/{name}/dependencies",
            get(ci::dependencies),
        )
        .route("/api/v1/ci/resolve", post(ci::resolve))
        .route("/api/v1/ci/resources", post(ci::resources))
        .route(
            "/api/v1/environments",
            get(environments::list).post(environments::create),
        )
        .route("/api/v1/environments/{name}", delete(environments::remove))
        .route(
            "/api/v1/subscriptions",
            get(subscriptions::list).post(subscriptions::create),
        )
        .route(
            "/api/v1/subscriptions/{name}",
            get(subscriptions::show).delete(subscriptions::remove),
        )
        .route(
            "/api/v1/projects",
            get(projects::list).post(projects::create),
        )
        .route(
            "/api/v1/projects/{*name}",
            get(projects::show)
                .delete(projects::remove)
                .post(projects::release_dependencies),
        )
        .route(
            "/api/v1/runtimes",
            get(runtimes::list).post(runtimes::create),
        )
        .route(
            "/api/v1/runtimes/{name}",
            get(runtimes::show).delete(runtimes::remove),
        )
        .route("/api/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/api/v1/tokens/{id}", delete(tokens::remove))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "route_not_found",
                "no such endpoint; the API is described at /api/v1/openapi.json",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not accept that method; see /api/v1/openapi.json",
            )
        })
}

pub(crate) fn timestamp(t: OffsetDateTime) -> Value {
    json!(t.format(&Rfc3339).unwrap_or_default())
}

pub(crate) fn meta_json(m: &berth_core::Meta) -> Value {
    json!({
        "created_at": timestamp(m.created_at),
        "updated_at": timestamp(m.updated_at),
        "created_by": m.created_by,
        "updated_by": m.updated_by,
        "version": m.version,
    })
}

/// Merges record fields with its metadata into one object.
pub(crate) fn with_meta(mut fields: Value, m: &berth_core::Meta) -> Value {
    if let (Some(obj), Value::Object(meta)) = (fields.as_object_mut(), meta_json(m)) {
        obj.extend(meta);
    }
    fields
}
