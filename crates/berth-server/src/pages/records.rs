//! The small pages for what integrations are scoped to: subscriptions, projects, runtimes and
//! users. Each calls the API's own handler for the same record (so the policy and validation
//! are the API's) and shows a table plus, for admins, an add form and delete buttons.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use berth_api::{NewProject, NewRuntime, NewSubscription, NewUser};
use berth_web::forms::Fields;
use berth_web::pages::{AddForm, Input, RecordRow, RecordsPage, RowAction};
use secrecy::SecretString;

use super::session::{SignedForm, SignedIn};
use super::{PageError, chrome, html};
use crate::AppState;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::routes::{projects, runtimes, subscriptions, users};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/subscriptions",
            get(subscriptions_page).post(add_subscription),
        )
        .route("/subscriptions/{name}/delete", post(delete_subscription))
        .route("/projects", get(projects_page).post(add_project))
        .route("/projects/delete", post(delete_project))
        .route("/projects/release", post(release_project))
        .route("/runtimes", get(runtimes_page).post(add_runtime))
        .route("/runtimes/{name}/delete", post(delete_runtime))
        .route("/users", get(users_page).post(add_user))
        .route("/users/{name}/delete", post(delete_user))
}

/// After a change, back to the page (the list shows the result); a refusal shows on the page.
fn back(section: &str, result: Result<(), ApiError>) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/{section}")).into_response()),
        Err(e) => Ok(Redirect::to(&format!(
            "/{section}?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("error", &e.body.message)
                .finish()
        ))
        .into_response()),
    }
}

fn page(
    signed: &SignedIn,
    section: &'static str,
    heading: &'static str,
    error: Option<String>,
) -> RecordsPage {
    RecordsPage {
        chrome: chrome(signed, heading, section),
        heading,
        intro: "",
        empty: "",
        columns: Vec::new(),
        rows: Vec::new(),
        add: None,
        error,
    }
}

/// A row whose one action deletes it through `action`.
fn row(cells: Vec<String>, action: String) -> RecordRow {
    RecordRow {
        cells,
        actions: vec![RowAction {
            action,
            label: "Delete",
            name_field: None,
            danger: true,
        }],
    }
}

async fn subscriptions_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let Json(list) = subscriptions::list(State(state), signed.caller.clone()).await?;
    let mut p = page(
        &signed,
        "subscriptions",
        "Subscriptions",
        q.get("error").cloned(),
    );
    p.intro = "A subscription is a CI organisation: integrations assigned to it serve its jobs.";
    p.empty = "No subscription yet.";
    p.columns = vec!["Name", "Created at", "Created by"];
    p.rows = list
        .items
        .into_iter()
        .map(|s| {
            let delete = format!("/subscriptions/{}/delete", s.name);
            row(vec![s.name, s.meta.created_at, s.meta.created_by], delete)
        })
        .collect();
    if signed.caller.is_admin() {
        p.add = Some(AddForm {
            heading: "Add subscription",
            action: "/subscriptions",
            button: "Add subscription",
            inputs: vec![Input::text("name", "Name")],
        });
    }
    Ok(html(StatusCode::OK, &p))
}

async fn add_subscription(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let body = NewSubscription {
        name: form.fields.get("name").to_owned(),
    };
    let result = subscriptions::create(State(state), form.signed.caller, ApiJson(body)).await;
    back("subscriptions", result.map(|_| ()))
}

async fn delete_subscription(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let result = subscriptions::remove(State(state), form.signed.caller, Path(name)).await;
    back("subscriptions", result.map(|_| ()))
}

async fn projects_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let Json(list) = projects::list(
        State(state.clone()),
        signed.caller.clone(),
        Query(HashMap::new()),
    )
    .await?;
    let mut p = page(&signed, "projects", "Projects", q.get("error").cloned());
    p.chrome.notice = q.get("done").cloned();
    p.intro = "A project is a CI repository of one subscription. Its builds record which integrations it uses; release them after removing an integration from its shippable.yml.";
    p.empty = "No project yet.";
    p.columns = vec!["Name", "Subscription", "Created at"];
    p.rows = list
        .items
        .into_iter()
        .map(|pr| {
            let actions = [
                ("/projects/release", "Release dependencies", false),
                ("/projects/delete", "Delete", true),
            ]
            .into_iter()
            .map(|(action, label, danger)| RowAction {
                action: action.into(),
                label,
                name_field: Some(pr.name.clone()),
                danger,
            })
            .collect();
            RecordRow {
                cells: vec![pr.name, pr.subscription, pr.meta.created_at],
                actions,
            }
        })
        .collect();
    if signed.caller.is_admin() {
        let Json(subs) = subscriptions::list(State(state), signed.caller.clone()).await?;
        p.add = Some(AddForm {
            heading: "Add project",
            action: "/projects",
            button: "Add project",
            inputs: vec![
                Input::text("name", "Name (org/repo)"),
                Input {
                    name: "subscription",
                    label: "Subscription",
                    kind: "text",
                    options: subs
                        .items
                        .into_iter()
                        .map(|s| (s.name.clone(), s.name))
                        .collect(),
                },
            ],
        });
    }
    Ok(html(StatusCode::OK, &p))
}

async fn add_project(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let body = NewProject {
        name: form.fields.get("name").to_owned(),
        subscription: form.fields.get("subscription").to_owned(),
    };
    let result = projects::create(State(state), form.signed.caller, ApiJson(body)).await;
    back("projects", result.map(|_| ()))
}

/// Project names contain `/`, so they travel in the form, not the path.
fn project_name(fields: &Fields) -> String {
    fields.get("name").to_owned()
}

async fn delete_project(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let name = project_name(&form.fields);
    let result = projects::remove(State(state), form.signed.caller, Path(name)).await;
    back("projects", result.map(|_| ()))
}

async fn release_project(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let name = format!("{}{}", project_name(&form.fields), projects::RELEASE_SUFFIX);
    let result = projects::release_dependencies(State(state), form.signed.caller, Path(name)).await;
    match result {
        // Said on the page it lands on (which is the same page: the notice marks the answer).
        Ok(Json(r)) => Ok(Redirect::to(&format!(
            "/projects?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair(
                    "done",
                    &format!("Released {} dependencies of {}", r.released, r.project)
                )
                .finish()
        ))
        .into_response()),
        Err(e) => back("projects", Err(e)),
    }
}

async fn runtimes_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let Json(list) = runtimes::list(State(state), signed.caller.clone()).await?;
    let mut p = page(&signed, "runtimes", "Runtimes", q.get("error").cloned());
    p.intro = "A runtime is a GitOps cluster; integrations shared with All runtimes or with it are available there.";
    p.empty = "No runtime yet.";
    p.columns = vec![
        "Name",
        "Sealing certificate",
        "Expires",
        "Cluster role",
        "Created at",
    ];
    p.rows = list
        .items
        .into_iter()
        .map(|r| {
            let delete = format!("/runtimes/{}/delete", r.name);
            let cert = r
                .sealing_cert_fingerprint
                .unwrap_or_else(|| "not set".into());
            let expires = r.sealing_cert_expires_at.unwrap_or_default();
            let role = r.cluster_role_arn.unwrap_or_else(|| "not set".into());
            row(vec![r.name, cert, expires, role, r.meta.created_at], delete)
        })
        .collect();
    let mut cert = Input::text("sealing_cert", "Sealing certificate (PEM, optional)");
    cert.kind = "textarea";
    p.add = Some(AddForm {
        heading: "Add runtime",
        action: "/runtimes",
        button: "Add runtime",
        inputs: vec![
            Input::text("name", "Name"),
            Input::text("cluster_role_arn", "Cluster IAM role ARN (optional)"),
            cert,
        ],
    });
    Ok(html(StatusCode::OK, &p))
}

async fn add_runtime(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let optional =
        |field: &str| Some(form.fields.get(field).trim().to_owned()).filter(|v| !v.is_empty());
    let body = NewRuntime {
        name: form.fields.get("name").to_owned(),
        sealing_cert: optional("sealing_cert"),
        namespace: None,
        cluster_role_arn: optional("cluster_role_arn"),
    };
    let result = runtimes::create(State(state), form.signed.caller, ApiJson(body)).await;
    back("runtimes", result.map(|_| ()))
}

async fn delete_runtime(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let result = runtimes::remove(State(state), form.signed.caller, Path(name)).await;
    back("runtimes", result.map(|_| ()))
}

async fn users_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let Json(list) = users::list(State(state.clone()), signed.caller.clone()).await?;
    let mut p = page(&signed, "users", "Users", q.get("error").cloned());
    p.intro = "People who sign in to these pages: admins, or members of one subscription who see only its integrations.";
    p.empty = "No user yet: admins sign in with the admin token until one exists.";
    p.columns = vec!["Name", "Role", "Subscription", "Created at"];
    p.rows = list
        .items
        .into_iter()
        .map(|u| {
            let delete = format!("/users/{}/delete", u.name);
            row(
                vec![
                    u.name,
                    u.role,
                    u.subscription.unwrap_or_default(),
                    u.meta.created_at,
                ],
                delete,
            )
        })
        .collect();
    let Json(subs) = subscriptions::list(State(state), signed.caller.clone()).await?;
    let mut roles = vec![("admin".to_owned(), "Admin".to_owned())];
    roles.extend(
        subs.items
            .into_iter()
            .map(|s| (s.name.clone(), format!("Member of {}", s.name))),
    );
    p.add = Some(AddForm {
        heading: "Add user",
        action: "/users",
        button: "Add user",
        inputs: vec![
            Input::text("name", "Name"),
            Input {
                name: "password",
                label: "Password (at least 12 characters)",
                kind: "password",
                options: Vec::new(),
            },
            Input {
                name: "role",
                label: "Role",
                kind: "text",
                options: roles,
            },
        ],
    });
    Ok(html(StatusCode::OK, &p))
}

async fn add_user(State(state): State<AppState>, form: SignedForm) -> Result<Response, PageError> {
    let role = form.fields.get("role");
    let body = NewUser {
        name: form.fields.get("name").to_owned(),
        password: SecretString::from(form.fields.get("password").to_owned()),
        admin: role == "admin",
        subscription: (role != "admin").then(|| role.to_owned()),
    };
    let result = users::create(State(state), form.signed.caller, ApiJson(body)).await;
    back("users", result.map(|_| ()))
}

async fn delete_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let result = users::remove(State(state), form.signed.caller, Path(name)).await;
    back("users", result.map(|_| ()))
}
