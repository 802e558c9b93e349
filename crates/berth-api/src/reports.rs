//! Image enrichment: what CI reports about an image it built (`POST /api/v1/images/reports`)
//! and what Berth knows about a digest (`GET /api/v1/images…`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The git facts of the build that made an image (from the CI system's variables or flags).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GitFacts {
    /// `github-actions`, `gitlab-ci`, `jenkins`, `circleci`, `shippable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The pull (merge) request's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_url: Option<String>,
}

/// `POST /api/v1/images/reports` (`berth ci report-image`): Berth reads the image's digest,
/// size, platforms and creation time itself, through the integration.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageReportInput {
    /// `registry/repository:tag` or `registry/repository@sha256:…`.
    pub image: String,
    /// `org/repo`: the project whose build made it.
    pub project: String,
    /// The integration to read it through [default: the one serving its registry].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
    #[serde(default)]
    pub git: GitFacts,
    /// Issue keys are these prefixes' (`DEV,OPS`)…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_prefixes: Option<String>,
    /// …or this regular expression's matches (`/[A-Z]{2,}-\d+/`) [default: `PROJ-123` keys].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_pattern: Option<String>,
    /// Where an issue's page is: the key is appended (`https://jira.example.com/browse/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_tracker_url: Option<String>,
}

/// An issue key found in a build's branch, commit message or pull request title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IssueView {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One report of an image.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImageReportView {
    pub id: String,
    pub digest: String,
    /// `registry/repository`.
    pub repository: String,
    pub tag: Option<String>,
    pub media_type: String,
    /// Bytes: the manifest, its config and its layers (for an index, its manifests).
    pub size: u64,
    /// `linux/amd64`, … (several for an index).
    pub platforms: Vec<String>,
    /// When the image says it was made (its config's `created`).
    pub created: Option<String>,
    pub project: String,
    pub integration: String,
    pub git: GitFacts,
    pub issues: Vec<IssueView>,
    pub reported_at: String,
    pub reported_by: String,
}

/// A digest as the list shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImageSummary {
    pub digest: String,
    pub repository: String,
    pub tags: Vec<String>,
    pub commits: Vec<String>,
    pub issues: Vec<String>,
    pub reports: usize,
    pub last_reported_at: String,
}

/// `GET /api/v1/images`: newest report first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImageList {
    pub items: Vec<ImageSummary>,
}

/// A resource version that is this digest.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionRef {
    pub project: String,
    pub resource: String,
    pub version_number: i64,
    pub version_name: String,
}

/// `GET /api/v1/images/{digest}`: every report of the digest and what it links.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImageDetail {
    pub digest: String,
    pub repositories: Vec<String>,
    pub tags: Vec<String>,
    pub commits: Vec<String>,
    /// Pull request URLs (or numbers when no URL was reported).
    pub pull_requests: Vec<String>,
    pub issues: Vec<IssueView>,
    pub versions: Vec<VersionRef>,
    pub reports: Vec<ImageReportView>,
}
