//! One file per endpoint family. Each handler carries its `#[utoipa::path]`, and `router()`
//! registers handlers through `utoipa-axum`, so the route table and the OpenAPI document come
//! from one source. The one exception is the project routes (and the push events of a project's
//! resources): project names contain `/`, which needs axum's `{*path}` wildcard, so they are
//! routed by hand (`project_paths`) and documented from their attributes (a test checks every
//! documented path reaches its handler).

use std::sync::LazyLock;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use berth_api::{ErrorBody, MetaView};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

pub(crate) mod ci;
pub(crate) mod credentials;
pub(crate) mod environments;
pub(crate) mod gitops;
pub(crate) mod health;
pub(crate) mod images;
pub(crate) mod integrations;
pub(crate) mod openapi;
pub(crate) mod project_paths;
pub(crate) mod projects;
pub(crate) mod resource_events;
pub(crate) mod resources;
pub(crate) mod runtimes;
pub(crate) mod subscriptions;
pub(crate) mod tokens;
pub(crate) mod users;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Berth API",
        version = "1",
        description = "Registry integrations for CI/CD. All endpoints but /healthz need 'Authorization: Bearer <token>'. Secrets are write-only: responses mask access key ids to their last 4 characters and report secrets only as *_set flags. Errors: {\"error\": {\"code\", \"message\", \"field\"?}}."
    ),
    paths(
        projects::show,
        projects::remove,
        projects::release_dependencies,
        resources::list,
        resources::put,
        resources::show,
        resources::remove,
        resources::versions,
        resources::post_state,
        resources::event_secret,
        resources::add_trigger,
        resources::triggers,
        resources::remove_trigger,
        resource_events::event
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

/// Declares the `bearer` scheme the document's `security` names.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// The error answers every endpoint may give, each with the one error body.
#[derive(IntoResponses)]
#[allow(dead_code)] // Only its schema is used.
pub(crate) enum Refusals {
    /// Refused: the body says why, and which field.
    #[response(status = "4XX")]
    Client(ErrorBody),
    /// The server or something it depends on failed; retry later.
    #[response(status = "5XX")]
    Server(ErrorBody),
}

/// The API's routes and their OpenAPI document, from the handlers' declarations.
pub fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(openapi::document))
        .routes(routes!(integrations::list, integrations::create))
        .routes(routes!(
            integrations::show,
            integrations::update,
            integrations::remove
        ))
        .routes(routes!(credentials::credentials))
        .routes(routes!(credentials::test))
        .routes(routes!(credentials::test_unsaved))
        .routes(routes!(credentials::by_host))
        .routes(routes!(credentials::create_repository))
        .routes(routes!(ci::dependencies))
        .routes(routes!(ci::resolve))
        .routes(routes!(ci::resources))
        .routes(routes!(images::list))
        .routes(routes!(images::report))
        .routes(routes!(images::show))
        .routes(routes!(environments::list, environments::create))
        .routes(routes!(environments::remove))
        .routes(routes!(subscriptions::list, subscriptions::create))
        .routes(routes!(subscriptions::show, subscriptions::remove))
        .routes(routes!(projects::list, projects::create))
        .routes(routes!(gitops::show, gitops::configure))
        .routes(routes!(gitops::status))
        .routes(routes!(gitops::diff))
        .routes(routes!(gitops::reconcile))
        .routes(routes!(gitops::import))
        .routes(routes!(runtimes::list, runtimes::create))
        .routes(routes!(runtimes::show, runtimes::remove))
        .routes(routes!(runtimes::set_sealing_cert))
        .routes(routes!(runtimes::set_namespace))
        .routes(routes!(runtimes::set_cluster_role))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::remove))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::remove))
        .routes(routes!(users::set_password))
        .split_for_parts();
    let router = router
        .route(
            "/api/v1/projects/{*path}",
            get(project_paths::get)
                .post(project_paths::post)
                .put(project_paths::put)
                .delete(project_paths::delete),
        )
        .route(
            "/api/v1/resources/{*path}",
            axum::routing::post(resource_events::event),
        )
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
        });
    (router, doc)
}

/// The OpenAPI document, as served at `/api/v1/openapi.json`.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(|| router().1);
    &DOCUMENT
}

/// A role as the API words it: `admin`, or `subscription` with the subscription's name.
pub(crate) fn role_parts(role: &berth_store::TokenRole) -> (String, Option<String>) {
    match role {
        berth_store::TokenRole::Admin => ("admin".into(), None),
        berth_store::TokenRole::Subscription(s) => ("subscription".into(), Some(s.to_string())),
    }
}

pub(crate) fn timestamp(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub(crate) fn meta_view(m: &berth_core::Meta) -> MetaView {
    MetaView {
        created_at: timestamp(m.created_at),
        updated_at: timestamp(m.updated_at),
        created_by: m.created_by.clone(),
        updated_by: m.updated_by.clone(),
        version: m.version,
    }
}
