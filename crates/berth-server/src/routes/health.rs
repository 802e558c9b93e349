use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;

/// Liveness and readiness: answers without a token, and says which store is behind it.
pub async fn healthz(State(state): State<AppState>) -> Json<Value> {
    Json(
        json!({"status": "ok", "store": state.store.backend(), "version": env!("CARGO_PKG_VERSION")}),
    )
}
