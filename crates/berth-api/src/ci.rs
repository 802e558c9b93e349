//! What CI jobs ask: which `shippable.yml` hub entries apply to a build, the environment of its
//! pipeline resources, and what depends on an integration.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/ci/resolve`: give exactly one of `branch` and `tag`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// The project (`org/repo`) the build belongs to.
    pub project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The file's text.
    pub shippable_yml: String,
}

/// Which hub entries apply to the build and which were skipped, and why.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Resolution {
    pub project: String,
    /// The branch or tag resolved for.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The entries that apply, in file order.
    pub integrations: Vec<AppliedEntry>,
    pub skipped: Vec<SkippedEntry>,
    /// `pre_ci_boot`'s image, when the file names one.
    pub boot_image: Option<BootImage>,
    /// Things in the file Berth read but does not act on.
    pub notes: Vec<String>,
}

/// A hub entry that applies to the build.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AppliedEntry {
    pub integration: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub region: String,
    /// The registry host the entry serves, when it can be known before credentials are issued
    /// (an endpoint or a registry id); `null` otherwise.
    pub registry: Option<String>,
    /// `agent_only`: only the build agent logs in, not the job's containers.
    pub agent_only: bool,
}

/// A hub entry that does not apply, with the reason.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SkippedEntry {
    pub integration: String,
    pub reason: String,
}

/// `pre_ci_boot`'s image and the integration that serves its registry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BootImage {
    pub image: String,
    pub registry: String,
    /// The applied integration serving the image's registry, if any.
    pub integration: Option<String>,
    pub pull: bool,
}

/// `POST /api/v1/ci/resources`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourcesRequest {
    pub project: String,
    pub shippable_yml: String,
    /// Resource names; all integration-backed resources of the file when empty.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Include short-lived credentials (`*_INTEGRATION_AWS_ACCESS_KEY_ID`, ...).
    #[serde(default)]
    pub with_secrets: bool,
    /// Pin the one image resource named to this version number (`<NAME>_VERSIONNUMBER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_number: Option<i64>,
    /// Pin the one image resource named to the newest version of this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_name: Option<String>,
}

/// The environment a pipeline job sees for its resources.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResourceEnv {
    /// `<NAME>_SOURCENAME`, `<NAME>_VERSIONNAME`, `<NAME>_VERSIONNUMBER`,
    /// `<NAME>_VERSIONDIGEST`, `<NAME>_INTEGRATION_AWS_REGION`, ... and their values.
    pub env: BTreeMap<String, String>,
}

/// `GET /api/v1/integrations/{name}/dependencies`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Dependencies {
    pub dependencies: Vec<Dependency>,
}

/// A record that uses an integration and keeps it from being deleted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Dependency {
    /// `environment`, `project`, `pipeline_resource` or `subscription_image`.
    pub kind: String,
    pub name: String,
}
