//! Subscriptions, projects, runtimes, environments, tokens and the health answer.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Who made a record and when, beside every record's own fields.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MetaView {
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    pub created_by: String,
    pub updated_by: String,
    /// Increases by one on each change.
    pub version: i64,
}

/// `POST /api/v1/subscriptions`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    pub name: String,
}

/// A CI organisation that integrations are assigned to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub meta: MetaView,
}

/// `GET /api/v1/subscriptions`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionList {
    pub items: Vec<SubscriptionView>,
}

/// `POST /api/v1/projects`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    /// `org/repo` (more parts for nested groups).
    pub name: String,
    pub subscription: String,
}

/// A CI repository in one subscription.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectView {
    pub id: String,
    pub name: String,
    pub subscription: String,
    #[serde(flatten)]
    pub meta: MetaView,
}

/// `GET /api/v1/projects`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectList {
    pub items: Vec<ProjectView>,
}

/// `POST /api/v1/projects/{name}/release-dependencies`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReleasedDependencies {
    pub project: String,
    /// How many recorded dependencies were forgotten.
    pub released: u64,
}

/// `POST /api/v1/runtimes`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRuntime {
    pub name: String,
    /// The cluster's sealed-secrets public certificate (PEM), for GitOps resources.
    #[serde(default)]
    pub sealing_cert: Option<String>,
    /// The namespace its GitOps resources are applied in [default: the repository's].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The IAM role the cluster assumes integration roles as
    /// (`arn:aws:iam::<account>:role/<name>`); Test connection checks that they trust it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_role_arn: Option<String>,
}

/// A GitOps cluster that integrations are shared with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RuntimeView {
    pub id: String,
    pub name: String,
    pub sealing_cert: Option<String>,
    /// The namespace its GitOps resources are applied in; `None`: the repository's.
    pub namespace: Option<String>,
    /// `sha256:<hex>` of the sealing certificate.
    pub sealing_cert_fingerprint: Option<String>,
    /// When the sealing certificate expires (RFC 3339).
    pub sealing_cert_expires_at: Option<String>,
    /// The IAM role the cluster assumes integration roles as.
    pub cluster_role_arn: Option<String>,
    #[serde(flatten)]
    pub meta: MetaView,
}

/// `PUT /api/v1/runtimes/{name}/sealing-cert`: a new certificate; every SealedSecret sealed
/// for the runtime is re-sealed to it in one commit.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuntimeCertificate {
    pub sealing_cert: String,
}

/// `PUT /api/v1/runtimes/{name}/namespace`: where its GitOps resources are applied from now on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuntimeNamespace {
    pub namespace: String,
}

/// `PUT /api/v1/runtimes/{name}/cluster-role`: the IAM role the cluster assumes integration
/// roles as; `null` forgets it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuntimeClusterRole {
    pub cluster_role_arn: Option<String>,
}

/// `GET /api/v1/runtimes`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RuntimeList {
    pub items: Vec<RuntimeView>,
}

/// `POST /api/v1/environments`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnvironment {
    pub name: String,
    pub subscription: String,
    /// Integrations the environment holds; they cannot be deleted while it exists.
    #[serde(default)]
    pub integrations: Vec<String>,
}

/// A named set of integrations a subscription's pipelines use.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentView {
    pub id: String,
    pub name: String,
    pub subscription: String,
    pub integrations: Vec<String>,
    #[serde(flatten)]
    pub meta: MetaView,
}

/// `GET /api/v1/environments`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentList {
    pub items: Vec<EnvironmentView>,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub subscription: String,
    /// At most 200 characters.
    #[serde(default)]
    pub description: String,
}

/// An API token, without its text.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    /// `admin` or `subscription`.
    pub role: String,
    /// The subscription a `subscription` token belongs to.
    pub subscription: Option<String>,
    pub description: String,
    /// RFC 3339.
    pub created_at: String,
    pub created_by: String,
}

/// The answer to `POST /api/v1/tokens`: the only time the token's text is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: TokenView,
    /// The bearer token; store it as a CI secret.
    pub token: String,
}

/// `GET /api/v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    pub items: Vec<TokenView>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub store: String,
    pub version: String,
}
