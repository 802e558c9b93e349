//! `/api/v1/gitops`: the shared configuration repository and each integration's sync status.
//! The push password is write-only.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;

/// `PUT /api/v1/gitops`: where the shared configuration lives and how Berth pushes to it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GitOpsInput {
    /// Codefresh's form: `<repo_url>.git[/<path>][?ref=<branch>]`; no credentials in it.
    pub repo: String,
    /// HTTPS user name (with a token as the password, any non-empty name works on most hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The HTTPS token or password; sealed, never shown. Absent keeps the stored one.
    #[serde(
        default,
        serialize_with = "expose",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    /// PEM certificate that `resources/all-runtimes-all-clusters/` is sealed for (one sealing
    /// key shared by the account's clusters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_cert: Option<String>,
    /// Namespace the resources are written for [default: codefresh].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

fn expose<S: Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_str(secret.expose_secret()),
        None => s.serialize_none(),
    }
}

/// The repository settings as the API shows them: never the password.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GitOpsView {
    pub repo: String,
    pub username: Option<String>,
    pub password_set: bool,
    /// `sha256:<hex>` of the account-wide sealing certificate.
    pub account_cert_fingerprint: Option<String>,
    /// RFC 3339.
    pub account_cert_expires_at: Option<String>,
    pub namespace: String,
    pub updated_at: String,
    pub updated_by: String,
}

/// One integration's place in the repository.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SyncView {
    pub integration: String,
    /// `SYNCED`, `OUT_OF_SYNC`, `SYNCING` or `UNKNOWN`.
    pub status: String,
    /// Why it is not `SYNCED`: the failed push's error, or what differs in the repository.
    pub reason: Option<String>,
    /// The commit that last carried it.
    pub commit: Option<String>,
    /// Failed pushes since the last success.
    pub attempts: i64,
    /// When a failed push is tried again (RFC 3339).
    pub next_attempt_at: Option<String>,
    /// Files it has (or should have) in the repository.
    pub files: Vec<String>,
}

/// `GET /api/v1/gitops/status`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SyncList {
    /// The branch head the status was read at; `None` when the repository was unreachable.
    pub head: Option<String>,
    pub items: Vec<SyncView>,
}

/// `GET /api/v1/gitops/diff`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GitOpsDiff {
    /// Unified diff, repository (`a/`) to what Berth would write (`b/`); empty when in sync.
    pub diff: String,
}

/// `POST /api/v1/gitops/reconcile`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Reconciled {
    /// Integrations queued for the one commit.
    pub queued: usize,
}

/// `POST /api/v1/gitops/import`: what the repository held that Berth did not.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    /// Integrations created from their ConfigMaps.
    pub imported: Vec<String>,
    /// Found, but their secrets are sealed for a cluster (Berth cannot open them): add them
    /// with the secrets (`berth integration add`), and Berth takes the files over.
    pub needs_secrets: Vec<ImportNote>,
    /// Files or integrations not imported, and why.
    pub skipped: Vec<ImportNote>,
}

/// One thing import did not take, and why.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportNote {
    pub integration: Option<String>,
    pub file: String,
    pub reason: String,
}
