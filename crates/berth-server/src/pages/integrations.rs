//! `/integrations`: the list with its filters, Add integration, Edit, Test connection and the
//! delete dialog. Each handler calls the operation the API calls (`routes::integrations`,
//! `routes::credentials`), with the form turned into the API's own JSON input.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use berth_api::{ConnectionTest, IntegrationView};
use berth_web::forms::{Fields, IntegrationForm, create_input, form_field, patch_input};
use berth_web::pages::{
    CardPage, DeleteBody, DependencyItem, FormPage, LastTest, ListPage, ListResults, NewTypePage,
    Refusal, Row, SyncMark, TestReport, range_text,
};

use super::session::{SignedForm, SignedIn};
use super::{PageError, chrome, html, render, wants_fragment};
use crate::AppState;
use crate::error::ApiError;
use crate::policy;
use crate::routes::credentials::{test_draft, test_patched, test_saved};
use crate::routes::integrations::{
    create_integration, delete_integration, encode_cursor, parse_query, update_integration, view,
};
use crate::routes::timestamp;
use berth_store::IntegrationQuery;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/integrations", get(list))
        .route("/integrations/new", get(new_form).post(create))
        .route("/integrations/{name}/edit", get(edit_form).post(edit))
        .route("/integrations/{name}/test", axum::routing::post(test_row))
        .route(
            "/integrations/{name}/delete",
            get(delete_dialog).post(delete),
        )
}

/// `/integrations?type=…&name=…&cursor=…` with the empty parameters left out.
fn list_href(params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(k, v);
    }
    let query = query.finish();
    if query.is_empty() {
        "/integrations".to_owned()
    } else {
        format!("/integrations?{query}")
    }
}

async fn list(
    State(state): State<AppState>,
    signed: SignedIn,
    headers: HeaderMap,
    Query(mut params): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let notice = params.remove("done");
    params.retain(|_, v| !v.trim().is_empty());
    let kind = params.get("type").cloned().unwrap_or_default();
    let name = params.get("name").cloned().unwrap_or_default();
    let mut query = parse_query(params)?;
    query.subscription = policy::confine_list(&signed.caller, query.subscription.take())?;
    let data = list_data(&state, signed.caller.generation, &query).await?;
    let results = ListResults {
        range: data.range.clone(),
        filtered: !kind.is_empty() || !name.is_empty(),
        is_admin: signed.caller.is_admin(),
        csrf: signed.csrf.clone(),
        first_href: query
            .after
            .as_ref()
            .map(|_| list_href(&[("type", &kind), ("name", &name)])),
        previous_href: data.previous_after.as_deref().map(|after| {
            list_href(&[
                ("type", &kind),
                ("name", &name),
                ("cursor", &encode_cursor(after)),
            ])
        }),
        next_href: data.next_after.as_deref().map(|after| {
            list_href(&[
                ("type", &kind),
                ("name", &name),
                ("cursor", &encode_cursor(after)),
            ])
        }),
        rows: &data.rows,
        gitops: data.gitops,
    };
    if wants_fragment(&headers) {
        return Ok(html(StatusCode::OK, &results));
    }
    let mut chrome = chrome(&signed, "Integrations", "integrations");
    chrome.notice = notice;
    Ok(html(
        StatusCode::OK,
        &ListPage {
            chrome,
            kind,
            name,
            results: render(&results),
        },
    ))
}

/// A list page's rows and count, cached under the store's generation like the API's pages:
/// any write (a test result included) drops it on every replica.
pub struct ListData {
    rows: Vec<Row>,
    gitops: bool,
    range: String,
    next_after: Option<String>,
    previous_after: Option<String>,
}

async fn list_data(
    state: &AppState,
    generation: i64,
    query: &IntegrationQuery,
) -> Result<Arc<ListData>, PageError> {
    let key = format!(
        "{:?}|{:?}|{:?}|{:?}|{}",
        query.kind, query.name_contains, query.subscription, query.after, query.limit
    );
    if let Some(hit) = state.cache.web_list(generation, &key) {
        return Ok(hit);
    }
    let page = state.store.list_integrations(query).await?;
    let count = state.store.count_integrations(query).await?;
    let ids: Vec<String> = page.items.iter().map(|i| i.id.clone()).collect();
    let tests: HashMap<String, LastTest> = state
        .store
        .connection_tests(&ids)
        .await?
        .into_iter()
        .map(|t| {
            let last = LastTest {
                ok: t.ok,
                summary: t.summary,
                tested_at: timestamp(t.tested_at),
                tested_by: t.tested_by,
            };
            (t.integration_id, last)
        })
        .collect();
    let gitops = state.store.gitops_settings().await?.is_some();
    let marks: HashMap<String, SyncMark> = if gitops {
        state
            .store
            .sync_records()
            .await?
            .into_iter()
            .map(|r| {
                let mark = SyncMark {
                    state: r.state.as_str().to_owned(),
                    reason: r.reason,
                };
                (r.name_key, mark)
            })
            .collect()
    } else {
        HashMap::new()
    };
    let rows: Vec<Row> = page
        .items
        .iter()
        .map(|i| Row::new(&view(i), tests.get(&i.id)).with_sync(marks.get(&i.name.key())))
        .collect();
    let data = Arc::new(ListData {
        gitops,
        range: range_text(count.before, rows.len(), count.total),
        rows,
        next_after: page.next_after,
        previous_after: count.previous_after,
    });
    state.cache.put_web_list(generation, key, data.clone());
    Ok(data)
}

/// The form page with the subscription and runtime choices filled in.
async fn form_page(
    state: &AppState,
    signed: &SignedIn,
    form: IntegrationForm,
    stored: Option<&IntegrationView>,
) -> Result<FormPage, PageError> {
    let title = if stored.is_some() {
        "Edit integration"
    } else {
        "Add integration"
    };
    let mut page = FormPage::new(chrome(signed, title, "integrations"), form, stored);
    page.subscription_options = state
        .store
        .list_subscriptions()
        .await?
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    page.runtime_options = state
        .store
        .list_runtimes()
        .await?
        .iter()
        .map(|r| r.name.to_string())
        .collect();
    Ok(page)
}

async fn new_form(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    signed.caller.require_admin()?;
    if query.get("type").map(String::as_str) != Some("ecr") {
        let page = NewTypePage::new(chrome(&signed, "Add integration", "integrations"));
        return Ok(html(StatusCode::OK, &page));
    }
    let page = form_page(&state, &signed, IntegrationForm::blank(), None).await?;
    Ok(html(StatusCode::OK, &page))
}

/// The form again after a refusal: the server's message beside its field, typed values kept
/// (secrets never), nothing saved.
async fn refused(
    state: &AppState,
    signed: &SignedIn,
    fields: &Fields,
    stored: Option<&IntegrationView>,
    error: ApiError,
) -> Result<Response, PageError> {
    let mut page = form_page(state, signed, IntegrationForm::from_fields(fields), stored).await?;
    match error.body.field.as_deref() {
        Some(field) => {
            page.errors
                .insert(form_field(field).to_owned(), error.body.message.clone());
            page.general_error = Some("Nothing was saved: correct the field marked below.".into());
        }
        None => page.general_error = Some(format!("Nothing was saved: {}", error.body.message)),
    }
    Ok(html(error.status, &page))
}

/// A Test connection answer: the report alone for the script, else the form with it.
async fn tested(
    state: &AppState,
    signed: &SignedIn,
    headers: &HeaderMap,
    fields: &Fields,
    stored: Option<&IntegrationView>,
    report: Result<ConnectionTest, ApiError>,
) -> Result<Response, PageError> {
    let report = match report {
        Ok(report) => report,
        Err(e) if wants_fragment(headers) => {
            let text = render_refusal(&e);
            return Ok((e.status, Html(text)).into_response());
        }
        Err(e) => return refused(state, signed, fields, stored, e).await,
    };
    let fragment = TestReport {
        subject: String::new(),
        report: &report,
    };
    if wants_fragment(headers) {
        return Ok(html(StatusCode::OK, &fragment));
    }
    let mut page = form_page(state, signed, IntegrationForm::from_fields(fields), stored).await?;
    page.test = render(&fragment);
    Ok(html(StatusCode::OK, &page))
}

/// A refusal as a fragment: the server's words, which name the field.
fn render_refusal(e: &ApiError) -> String {
    render(&Refusal {
        message: e.body.message.clone(),
    })
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: SignedForm,
) -> Result<Response, PageError> {
    let SignedForm { signed, fields } = form;
    signed.caller.require_admin()?;
    if fields.get("action") == "test" {
        let report = test_draft(&state, &signed.caller, create_input(&fields)).await;
        return tested(&state, &signed, &headers, &fields, None, report).await;
    }
    match create_integration(&state, &signed.caller, create_input(&fields)).await {
        Ok(created) => Ok(done(&format!("Added integration {}.", created.name))),
        Err(e) => refused(&state, &signed, &fields, None, e).await,
    }
}

/// Back to the list with a notice.
fn done(notice: &str) -> Response {
    Redirect::to(&list_href(&[("done", notice)])).into_response()
}

async fn edit_form(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    signed.caller.require_admin()?;
    let stored = view(&policy::visible_integration(&state, &signed.caller, &name).await?);
    let page = form_page(&state, &signed, FormPage::form_of(&stored), Some(&stored)).await?;
    Ok(html(StatusCode::OK, &page))
}

async fn edit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let SignedForm { signed, fields } = form;
    signed.caller.require_admin()?;
    let stored = view(&policy::visible_integration(&state, &signed.caller, &name).await?);
    if fields.get("action") == "test" {
        let report = test_patched(&state, &signed.caller, &name, patch_input(&fields)).await;
        return tested(&state, &signed, &headers, &fields, Some(&stored), report).await;
    }
    match update_integration(&state, &signed.caller, &name, patch_input(&fields)).await {
        Ok(updated) => Ok(done(&format!("Saved integration {}.", updated.name))),
        Err(e) => refused(&state, &signed, &fields, Some(&stored), e).await,
    }
}

async fn test_row(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let signed = form.signed;
    let report = test_saved(&state, &signed.caller, &name, None).await?;
    let fragment = TestReport {
        subject: name.clone(),
        report: &report,
    };
    if wants_fragment(&headers) {
        return Ok(html(StatusCode::OK, &fragment));
    }
    let page = CardPage {
        chrome: chrome(
            &signed,
            format!("Test connection of {name}"),
            "integrations",
        ),
        body: format!(
            "{}<p><a href=\"/integrations\">Back to Integrations</a></p>",
            render(&fragment)
        ),
    };
    Ok(html(StatusCode::OK, &page))
}

/// What keeps the integration from being deleted, as the API lists it.
async fn dependencies(
    state: &AppState,
    signed: &SignedIn,
    name: &str,
) -> Result<Vec<DependencyItem>, PageError> {
    let deps = crate::routes::ci::dependencies_of(state, &signed.caller, name).await?;
    Ok(deps
        .dependencies
        .iter()
        .map(|d| DependencyItem::new(&d.kind, &d.name))
        .collect())
}

fn delete_answer(
    signed: &SignedIn,
    headers: &HeaderMap,
    status: StatusCode,
    body: DeleteBody,
) -> Response {
    if wants_fragment(headers) {
        return html(status, &body);
    }
    let page = CardPage {
        chrome: chrome(signed, format!("Delete {}", body.name), "integrations"),
        body: render(&body),
    };
    html(status, &page)
}

async fn delete_dialog(
    State(state): State<AppState>,
    signed: SignedIn,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    signed.caller.require_admin()?;
    let integration = policy::visible_integration(&state, &signed.caller, &name).await?;
    let body = DeleteBody {
        name: integration.name.to_string(),
        csrf: signed.csrf.clone(),
        dependencies: dependencies(&state, &signed, &name).await?,
        error: None,
    };
    Ok(delete_answer(&signed, &headers, StatusCode::OK, body))
}

async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let signed = form.signed;
    match delete_integration(&state, &signed.caller, &name).await {
        Ok(()) => Ok(done(&format!("Deleted integration {name}."))),
        Err(e) if e.status == StatusCode::CONFLICT => {
            let body = DeleteBody {
                name: name.clone(),
                csrf: signed.csrf.clone(),
                dependencies: dependencies(&state, &signed, &name).await?,
                error: Some(e.body.message.clone()),
            };
            Ok(delete_answer(&signed, &headers, StatusCode::CONFLICT, body))
        }
        Err(e) => Err(e.into()),
    }
}
