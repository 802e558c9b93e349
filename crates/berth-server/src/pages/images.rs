//! The Images page (reported digests, filtered, and one digest's links) and the Image
//! resources page (a project's resources with their newest versions). Each calls the API's
//! own handlers, so what a token may see is the API's policy.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use berth_web::pages::{ImagePage, ImagesPage, ResourceSection, ResourcesPage};

use super::session::SignedIn;
use super::{PageError, chrome, html};
use crate::AppState;
use crate::routes::{images, projects, resources};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/images", get(images_page))
        .route("/images/{digest}", get(image_page))
        .route("/resources", get(resources_page))
}

async fn images_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let filters: HashMap<String, String> = q
        .iter()
        .filter(|(k, v)| {
            ["repository", "tag", "issue", "commit"].contains(&k.as_str()) && !v.trim().is_empty()
        })
        .map(|(k, v)| (k.clone(), v.trim().to_owned()))
        .collect();
    let Json(list) = images::list(State(state), signed.caller.clone(), Query(filters)).await?;
    let field = |k: &str| q.get(k).cloned().unwrap_or_default();
    let page = ImagesPage {
        chrome: chrome(&signed, "Images", "images"),
        error: None,
        items: list.items,
        repository: field("repository"),
        tag: field("tag"),
        issue: field("issue"),
        commit: field("commit"),
    };
    Ok(html(StatusCode::OK, &page))
}

async fn image_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(digest): Path<String>,
) -> Result<Response, PageError> {
    let Json(d) = images::show(State(state), signed.caller.clone(), Path(digest)).await?;
    let page = ImagePage {
        chrome: chrome(&signed, format!("Image {}", d.digest), "images"),
        d,
    };
    Ok(html(StatusCode::OK, &page))
}

async fn resources_page(
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
    let names: Vec<String> = list.items.iter().map(|p| p.name.clone()).collect();
    let project = q
        .get("project")
        .cloned()
        .or_else(|| names.first().cloned())
        .unwrap_or_default();
    let mut sections = Vec::new();
    if !project.is_empty() {
        let Json(found) = resources::list(&state, &signed.caller, &project).await?;
        let newest = HashMap::from([("limit".to_owned(), "10".to_owned())]);
        for view in found.items {
            let Json(page) =
                resources::versions(&state, &signed.caller, &project, &view.name, &newest).await?;
            sections.push(ResourceSection {
                view,
                versions: page.items,
            });
        }
    }
    let page = ResourcesPage {
        chrome: chrome(&signed, "Image resources", "resources"),
        error: None,
        projects: names,
        project,
        resources: sections,
    };
    Ok(html(StatusCode::OK, &page))
}
