//! `GET /api/v1/openapi.json`: the document generated from the handlers.

use axum::Json;
use axum::extract::State;

use super::Refusals;
use crate::AppState;
use crate::auth::Principal;

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"), Refusals))]
pub async fn document(
    _: State<AppState>,
    _caller: Principal,
) -> Json<&'static utoipa::openapi::OpenApi> {
    Json(super::document())
}
