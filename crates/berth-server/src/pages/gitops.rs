//! The GitOps page: the shared configuration repository's settings, each integration's sync
//! status and the diff, read through the API's own handlers (admin only, like the API).

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use berth_api::GitOpsInput;
use berth_web::pages::{GitOpsPage, SyncRow};
use secrecy::SecretString;

use super::session::{SignedForm, SignedIn};
use super::{PageError, chrome, html};
use crate::AppState;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::routes::gitops;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/gitops", get(gitops_page).post(configure))
        .route("/gitops/reconcile", post(reconcile))
}

async fn gitops_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    signed.caller.require_admin()?;
    let mut chrome = chrome(&signed, "GitOps", "gitops");
    chrome.notice = q.get("done").cloned();
    let settings = match gitops::show(State(state.clone()), signed.caller.clone()).await {
        Ok(Json(v)) => Some(v),
        Err(e) if e.status == StatusCode::NOT_FOUND => None,
        Err(e) => return Err(e.into()),
    };
    let mut page = GitOpsPage {
        chrome,
        error: q.get("error").cloned(),
        repo: settings
            .as_ref()
            .map(|s| s.repo.clone())
            .unwrap_or_default(),
        username: settings
            .as_ref()
            .and_then(|s| s.username.clone())
            .unwrap_or_default(),
        namespace: settings
            .as_ref()
            .map_or_else(|| "codefresh".into(), |s| s.namespace.clone()),
        settings,
        head: None,
        rows: Vec::new(),
        sync_error: None,
        diff: String::new(),
    };
    if page.settings.is_some() {
        match gitops::status(State(state.clone()), signed.caller.clone()).await {
            Ok(Json(list)) => {
                page.head = list.head.clone();
                page.rows = list.items.iter().map(SyncRow::new).collect();
            }
            Err(e) => page.sync_error = Some(e.body.message),
        }
        match gitops::diff(State(state), signed.caller).await {
            Ok(Json(d)) => page.diff = d.diff,
            Err(e) => page.sync_error = Some(e.body.message),
        }
    }
    Ok(html(StatusCode::OK, &page))
}

fn back(result: Result<String, ApiError>) -> Response {
    let (key, text) = match result {
        Ok(done) => ("done", done),
        Err(e) => ("error", e.body.message),
    };
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair(key, &text)
        .finish();
    Redirect::to(&format!("/gitops?{query}")).into_response()
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

async fn configure(State(state): State<AppState>, form: SignedForm) -> Result<Response, PageError> {
    let f = &form.fields;
    let body = GitOpsInput {
        repo: f.get("repo").trim().to_owned(),
        username: optional(f.get("username")),
        password: optional(f.get("password")).map(SecretString::from),
        account_cert: optional(f.get("account_cert")),
        namespace: optional(f.get("namespace")),
    };
    let result = gitops::configure(State(state), form.signed.caller, ApiJson(body)).await;
    Ok(back(result.map(|Json(v)| {
        format!("Saved: Berth pushes to {}", v.repo)
    })))
}

async fn reconcile(State(state): State<AppState>, form: SignedForm) -> Result<Response, PageError> {
    let result = gitops::reconcile(State(state), form.signed.caller).await;
    Ok(back(result.map(|(_, Json(r))| {
        format!("Queued {} integrations for one commit", r.queued)
    })))
}
