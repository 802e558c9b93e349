//! `/api/v1/integrations`: what clients send to create and edit an integration, and the view
//! they get back. Secrets are write-only: they appear in requests, never in a view.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use crate::MetaView;

/// How Berth authenticates to AWS for an integration, as a client sends it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthInput {
    /// A long-lived access key pair, sealed at rest.
    AccessKeys {
        /// Omitted on edit to keep the stored key.
        #[serde(
            default,
            serialize_with = "expose",
            skip_serializing_if = "Option::is_none"
        )]
        #[schema(value_type = Option<String>, format = Password)]
        access_key_id: Option<SecretString>,
        /// Omitted on edit to keep the stored secret.
        #[serde(
            default,
            serialize_with = "expose",
            skip_serializing_if = "Option::is_none"
        )]
        #[schema(value_type = Option<String>, format = Password)]
        secret_access_key: Option<SecretString>,
    },
    /// An IAM role assumed with STS, from access keys or the server's own identity.
    AssumeRole {
        /// `arn:aws:iam::<account>:role/<name>`.
        role_arn: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        external_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_name: Option<String>,
        /// `"ambient"` (the default) or the access keys that assume the role.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<RoleSourceInput>,
    },
    /// The server's own AWS identity (environment, profile, instance role).
    /// A struct variant, so that `deny_unknown_fields` refuses stray keys beside the mode.
    Ambient {},
}

/// Where an assumed role's calling credentials come from.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RoleSourceInput {
    /// `"ambient"`: the server's own identity.
    Keyword(String),
    /// Access keys that call STS.
    AccessKeys(AccessKeysInput),
}

/// An access key pair in a request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessKeysInput {
    #[serde(
        default,
        serialize_with = "expose",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = Password)]
    pub access_key_id: Option<SecretString>,
    #[serde(
        default,
        serialize_with = "expose",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = Password)]
    pub secret_access_key: Option<SecretString>,
}

/// Which GitOps runtimes an integration is shared with: `{"all": true}` or
/// `{"selected": [names]}`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuntimeScopeInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected: Option<Vec<String>>,
}

/// `POST /api/v1/integrations` and `POST /api/v1/connection-tests`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationInput {
    pub name: String,
    /// The integration type; `ecr` is the one supported.
    #[serde(rename = "type")]
    pub kind: String,
    /// Defaults to `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Defaults to access keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthInput>,
    /// The 12-digit account that owns the registry, when not the caller's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<String>,
    /// An ECR-compatible endpoint (such as the local ECR); AWS's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The subscriptions whose CI jobs may use it.
    #[serde(default)]
    pub subscriptions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtimes: Option<RuntimeScopeInput>,
    /// Hand CI jobs the long-lived access keys instead of STS sessions (off by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_long_lived_keys: Option<bool>,
}

/// `PATCH /api/v1/integrations/{name}`: absent means unchanged, and absent secrets stay as they
/// are. `registry_id` and `endpoint` are cleared with an explicit `null`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthInput>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub registry_id: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub endpoint: Option<Option<String>>,
    /// `null` is refused rather than read as "unchanged": `[]` removes every subscription.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Vec<String>>)]
    pub subscriptions: Option<Option<Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtimes: Option<RuntimeScopeInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_long_lived_keys: Option<bool>,
}

/// An explicit `null` is `Some(None)`; an absent field is `None`.
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Secrets are sent by clients; only this one place writes them out.
fn expose<S: Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_str(secret.expose_secret()),
        None => s.serialize_none(),
    }
}

/// A stored integration as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IntegrationView {
    pub id: String,
    pub name: String,
    /// `ecr`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The family the type belongs to (`hub` for registries).
    pub master_type: String,
    pub region: String,
    pub auth: AuthView,
    pub registry_id: Option<String>,
    pub endpoint: Option<String>,
    pub export_long_lived_keys: bool,
    pub subscriptions: Vec<String>,
    pub runtimes: RuntimesView,
    #[serde(flatten)]
    pub meta: MetaView,
}

/// The stored auth, with the access key id masked and the secret shown only as set or not.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum AuthView {
    AccessKeys {
        /// The key id masked to its last 4 characters.
        access_key_id: String,
        secret_access_key_set: bool,
    },
    AssumeRole {
        role_arn: String,
        external_id: Option<String>,
        session_name: Option<String>,
        source: RoleSourceView,
    },
    Ambient {},
}

impl AuthView {
    /// The mode's wire name: `access_keys`, `assume_role` or `ambient`.
    pub fn mode(&self) -> &'static str {
        match self {
            AuthView::AccessKeys { .. } => "access_keys",
            AuthView::AssumeRole { .. } => "assume_role",
            AuthView::Ambient {} => "ambient",
        }
    }
}

/// A masked access key pair.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    /// The key id masked to its last 4 characters.
    pub access_key_id: String,
    pub secret_access_key_set: bool,
}

/// `"ambient"` or the masked keys that assume the role.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RoleSourceView {
    Ambient(AmbientWord),
    AccessKeys(KeyView),
}

/// The word `"ambient"`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AmbientWord {
    Ambient,
}

/// `{"all": true}` or `{"selected": [runtime names]}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RuntimesView {
    All { all: bool },
    Selected { selected: Vec<String> },
}

/// One page of `GET /api/v1/integrations`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IntegrationPage {
    pub items: Vec<IntegrationView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}
