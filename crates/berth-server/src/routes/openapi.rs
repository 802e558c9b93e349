use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::AppState;
use crate::auth::Principal;

pub const DOCUMENT: &str = include_str!("../openapi.json");

pub async fn document(_: State<AppState>, _caller: Principal) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
