//! `GET /healthz`.

use axum::Json;
use axum::extract::State;
use berth_api::Health;

use crate::AppState;

/// Liveness and readiness: answers without a token, and says which store is behind it.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        store: state.store.backend().into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}
