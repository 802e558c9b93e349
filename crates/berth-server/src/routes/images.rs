//! `/api/v1/images`: image enrichment. A CI build reports an image it made (`berth ci
//! report-image`); Berth reads the digest, size, platforms and creation time itself through an
//! integration the project may use, finds the issue keys in the build's git facts, and links the
//! digest to its commits, pull requests, issues and the resource versions it became. Reports
//! belong to their project: a subscription token sees its own projects' only.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use berth_api::{
    GitFacts, ImageDetail, ImageList, ImageReportInput, ImageReportView, ImageSummary, IssueView,
    VersionRef,
};
use berth_core::provenance::{IssueRule, issue_url};
use berth_store::{ImageReport, NewReport, ReportFilter};

use super::{Refusals, timestamp};
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::json::ApiJson;

const MAX_TEXT: usize = 4096;
const LIST_LIMIT: i64 = 200;

fn report_view(r: &ImageReport) -> ImageReportView {
    ImageReportView {
        id: r.id.clone(),
        digest: r.digest.clone(),
        repository: r.repository.clone(),
        tag: r.tag.clone(),
        media_type: r.media_type.clone(),
        size: r.size.max(0) as u64,
        platforms: r.platforms.clone(),
        created: r.created.clone(),
        project: r.project.to_string(),
        integration: r.integration.clone(),
        git: serde_json::from_str(&r.git).unwrap_or_default(),
        issues: r
            .issues
            .iter()
            .map(|(key, url)| IssueView {
                key: key.clone(),
                url: url.clone(),
            })
            .collect(),
        reported_at: timestamp(r.reported_at),
        reported_by: r.reported_by.clone(),
    }
}

/// The rule the request names, or the default `PROJ-123` pattern.
fn issue_rule(body: &ImageReportInput) -> Result<IssueRule, ApiError> {
    Ok(match (&body.issue_prefixes, &body.issue_pattern) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "issue_pattern",
                "give issue_prefixes or issue_pattern, not both",
            ));
        }
        (Some(p), None) => IssueRule::prefixes("issue_prefixes", p)?,
        (None, Some(p)) => IssueRule::pattern("issue_pattern", p)?,
        (None, None) => IssueRule::default_rule(),
    })
}

/// Bounded git facts: each at most 4 KiB, URLs http(s).
fn check_git(git: &GitFacts) -> Result<(), ApiError> {
    let fields = [
        ("git.commit", &git.commit),
        ("git.branch", &git.branch),
        ("git.author", &git.author),
        ("git.message", &git.message),
        ("git.pull_request", &git.pull_request),
        ("git.pull_request_title", &git.pull_request_title),
        ("git.ci", &git.ci),
    ];
    for (field, value) in fields {
        if value.as_ref().is_some_and(|v| v.len() > MAX_TEXT) {
            return Err(ApiError::invalid(
                field,
                format!("at most {MAX_TEXT} bytes"),
            ));
        }
    }
    for (field, value) in [
        ("git.repository_url", &git.repository_url),
        ("git.pull_request_url", &git.pull_request_url),
        ("git.build_url", &git.build_url),
    ] {
        if let Some(v) = value
            && (v.len() > MAX_TEXT || !(v.starts_with("https://") || v.starts_with("http://")))
        {
            return Err(ApiError::invalid(
                field,
                "must be an http(s) URL of at most 4 KiB",
            ));
        }
    }
    Ok(())
}

/// Records what a CI build says about an image it made.
#[utoipa::path(post, path = "/api/v1/images/reports", tag = "images",
    request_body = ImageReportInput,
    responses((status = 201, body = ImageReportView), Refusals))]
pub async fn report(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(body): ApiJson<ImageReportInput>,
) -> Result<(StatusCode, Json<ImageReportView>), ApiError> {
    check_git(&body.git)?;
    let rule = issue_rule(&body)?;
    if let Some(url) = &body.issue_tracker_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(ApiError::invalid(
            "issue_tracker_url",
            "must be an http(s) URL",
        ));
    }
    let project = crate::policy::lookup_project(&state, &caller, &body.project)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                "project",
                format!("project '{}' does not exist", body.project),
            )
        })?;
    let seen =
        crate::images::inspect(&state, &project, body.integration.as_deref(), &body.image).await?;
    let git = &body.git;
    let texts: Vec<&str> = [&git.branch, &git.message, &git.pull_request_title]
        .into_iter()
        .filter_map(|t| t.as_deref())
        .collect();
    let issues: Vec<(String, Option<String>)> = rule
        .keys(&texts)
        .into_iter()
        .map(|k| {
            let url = body
                .issue_tracker_url
                .as_deref()
                .map(|base| issue_url(base, &k));
            (k, url)
        })
        .collect();
    let git_json = serde_json::to_string(git).unwrap_or_default();
    let stored = state
        .store
        .add_report(&NewReport {
            project_id: &project.id,
            digest: &seen.digest,
            repository: &seen.repository,
            tag: seen.tag.as_deref(),
            media_type: &seen.media_type,
            size: seen.size as i64,
            platforms: &seen.platforms,
            created: seen.created.as_deref(),
            integration: seen.integration.as_str(),
            git: &git_json,
            commit: git.commit.as_deref(),
            issues: &issues,
            actor: &caller.actor(),
        })
        .await?;
    tracing::info!(target: "berth::audit", project = %project.name, digest = %stored.digest, actor = %caller.actor(), "image reported");
    Ok((StatusCode::CREATED, Json(report_view(&stored))))
}

/// The subscription a caller is confined to, `None` for an admin.
fn confined(caller: &Principal) -> Result<Option<String>, ApiError> {
    crate::policy::confine_list(caller, None)
}

/// Digests with reports, newest first, filtered by repository, tag, issue key or commit.
#[utoipa::path(get, path = "/api/v1/images", tag = "images",
    params(("repository" = Option<String>, Query, description = "`registry/repository`"),
        ("tag" = Option<String>, Query), ("issue" = Option<String>, Query, description = "An issue key"),
        ("commit" = Option<String>, Query)),
    responses((status = 200, body = ImageList), Refusals))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<ImageList>, ApiError> {
    let subscription = confined(&caller)?;
    let filter = ReportFilter {
        repository: q.get("repository").map(String::as_str),
        tag: q.get("tag").map(String::as_str),
        issue: q.get("issue").map(String::as_str),
        commit: q.get("commit").map(String::as_str),
        digest: None,
        subscription: subscription.as_deref(),
        limit: LIST_LIMIT,
    };
    let reports = state.store.find_reports(&filter).await?;
    let mut items: Vec<ImageSummary> = Vec::new();
    for r in &reports {
        let at = items.iter().position(|i| i.digest == r.digest);
        let item = match at {
            Some(i) => &mut items[i],
            None => {
                items.push(ImageSummary {
                    digest: r.digest.clone(),
                    repository: r.repository.clone(),
                    tags: Vec::new(),
                    commits: Vec::new(),
                    issues: Vec::new(),
                    reports: 0,
                    last_reported_at: timestamp(r.reported_at),
                });
                items.last_mut().expect("just pushed")
            }
        };
        item.reports += 1;
        push_new(&mut item.tags, r.tag.clone());
        push_new(&mut item.commits, r.commit.clone());
        for (key, _) in &r.issues {
            push_new(&mut item.issues, Some(key.clone()));
        }
    }
    Ok(Json(ImageList { items }))
}

fn push_new(list: &mut Vec<String>, value: Option<String>) {
    if let Some(v) = value
        && !list.contains(&v)
    {
        list.push(v);
    }
}

/// Every report of a digest, the tags it carries, the commits, pull requests and issues behind
/// it, and the resource versions it became.
#[utoipa::path(get, path = "/api/v1/images/{digest}", tag = "images",
    params(("digest" = String, Path, description = "`sha256:…`")),
    responses((status = 200, body = ImageDetail), Refusals))]
pub async fn show(
    State(state): State<AppState>,
    caller: Principal,
    Path(digest): Path<String>,
) -> Result<Json<ImageDetail>, ApiError> {
    berth_core::validate_digest(&digest).map_err(|rule| ApiError::invalid("digest", rule))?;
    let subscription = confined(&caller)?;
    let filter = ReportFilter {
        digest: Some(&digest),
        subscription: subscription.as_deref(),
        limit: LIST_LIMIT,
        ..Default::default()
    };
    let reports = state.store.find_reports(&filter).await?;
    let versions = state
        .store
        .versions_of(&digest, subscription.as_deref())
        .await?;
    if reports.is_empty() && versions.is_empty() {
        return Err(ApiError::not_found(format!(
            "no report or version of image {digest}"
        )));
    }
    let mut detail = ImageDetail {
        digest: digest.clone(),
        repositories: Vec::new(),
        tags: Vec::new(),
        commits: Vec::new(),
        pull_requests: Vec::new(),
        issues: Vec::new(),
        versions: versions
            .into_iter()
            .map(
                |(project, resource, version_number, version_name)| VersionRef {
                    project: project.to_string(),
                    resource,
                    version_number,
                    version_name,
                },
            )
            .collect(),
        reports: reports.iter().map(report_view).collect(),
    };
    let mut issues = BTreeSet::new();
    for r in &detail.reports {
        push_new(&mut detail.repositories, Some(r.repository.clone()));
        push_new(&mut detail.tags, r.tag.clone());
        push_new(&mut detail.commits, r.git.commit.clone());
        push_new(
            &mut detail.pull_requests,
            r.git
                .pull_request_url
                .clone()
                .or(r.git.pull_request.clone()),
        );
        for i in &r.issues {
            if issues.insert(i.key.clone()) {
                detail.issues.push(i.clone());
            }
        }
    }
    for v in &detail.versions {
        push_new(&mut detail.tags, Some(v.version_name.clone()));
    }
    Ok(Json(detail))
}
