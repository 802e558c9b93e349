//! Registry credentials, repository creation and Test connection.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The optional body of credential and test requests.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionOptions {
    /// Another region than the integration's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// A registry login, valid until `expires_at`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegistryCredentials {
    pub integration: String,
    /// The registry host to log in to.
    pub registry: String,
    /// The registry's URL as ECR reports it (credentials by integration only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_endpoint: Option<String>,
    pub username: String,
    /// The short-lived registry password.
    pub password: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// `POST /api/v1/registry-credentials`: credentials by registry host.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostRequest {
    pub host: String,
}

/// `POST /api/v1/repositories`: name the integration, or the registry host it serves.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepositoryRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub repository: String,
}

/// A repository that exists now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RepositoryEnsured {
    pub integration: String,
    pub region: String,
    pub repository: String,
    /// `false` when it existed already.
    pub created: bool,
}

/// Test connection: each step, in order, and whether all passed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConnectionTest {
    pub ok: bool,
    pub steps: Vec<TestStep>,
}

/// One step of Test connection.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TestStep {
    /// `credentials`, `assume_role`, `authorization_token`, `registry`,
    /// `describe_repositories`, then `runtime_trust` once per runtime shared with.
    pub step: String,
    /// What a step that runs once per thing checked (`runtime_trust`: the runtime's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `ok`, `failed` or `skipped`.
    pub status: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    pub millis: u64,
}
