//! Integrations: what they are, how client input becomes a valid one, and how a patch applies.
//!
//! Secrets never live in [`IntegrationConfig`]: the config holds only what may be shown (such as
//! the last four characters of an access key id), and secret values travel beside it in
//! [`Secrets`], so a store can seal them and a renderer cannot print them by accident.

use std::collections::{BTreeMap, BTreeSet};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::validate::*;
use crate::{DomainError, FieldError, Name};

/// Registry kinds. Only `ecr` exists today; Docker registry, GCR and Quay become new variants
/// here and new [`IntegrationConfig`] arms, with no change to how integrations are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationType {
    Ecr,
}

impl IntegrationType {
    pub const ALL: &'static [IntegrationType] = &[IntegrationType::Ecr];

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        match value {
            "ecr" => Ok(IntegrationType::Ecr),
            other => Err(DomainError::UnknownType(other.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationType::Ecr => "ecr",
        }
    }

    pub fn master_type(self) -> MasterType {
        match self {
            IntegrationType::Ecr => MasterType::Hub,
        }
    }
}

/// The family an integration belongs to, as Shippable groups them; registries are `hub`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MasterType {
    Hub,
}

impl MasterType {
    pub fn as_str(self) -> &'static str {
        match self {
            MasterType::Hub => "hub",
        }
    }
}

/// Secret fields, by the stable name that sealing binds into the ciphertext's associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretField {
    AwsAccessKeyId,
    AwsSecretAccessKey,
}

impl SecretField {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretField::AwsAccessKeyId => "aws_access_key_id",
            SecretField::AwsSecretAccessKey => "aws_secret_access_key",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "aws_access_key_id" => Some(SecretField::AwsAccessKeyId),
            "aws_secret_access_key" => Some(SecretField::AwsSecretAccessKey),
            _ => None,
        }
    }
}

pub type Secrets = BTreeMap<SecretField, SecretString>;

/// The last four characters of an access key id: enough to tell keys apart, useless to an attacker.
pub fn key_hint(access_key_id: &str) -> String {
    let start = access_key_id.len().saturating_sub(4);
    access_key_id[start..].to_owned()
}

pub fn masked_key_id(hint: &str) -> String {
    format!("****{hint}")
}

/// Type-specific settings that may be shown and stored in clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IntegrationConfig {
    Ecr(EcrConfig),
}

impl IntegrationConfig {
    pub fn kind(&self) -> IntegrationType {
        match self {
            IntegrationConfig::Ecr(_) => IntegrationType::Ecr,
        }
    }

    /// The secrets this configuration cannot work without.
    pub fn required_secrets(&self) -> BTreeSet<SecretField> {
        match self {
            IntegrationConfig::Ecr(ecr) => {
                if ecr.auth.uses_access_keys() {
                    [SecretField::AwsAccessKeyId, SecretField::AwsSecretAccessKey].into()
                } else {
                    BTreeSet::new()
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcrConfig {
    pub region: String,
    pub auth: AwsAuth,
    pub registry_id: Option<String>,
    pub endpoint: Option<String>,
    /// Whether a CI job may be handed the long-lived access keys themselves, for tools that
    /// cannot use session tokens. Off by default and only for `access_keys` auth: otherwise jobs
    /// get short-lived STS sessions.
    #[serde(default)]
    pub export_long_lived_keys: bool,
}

/// The export switch is only for access keys: roles are always exported as sessions, and an
/// ambient identity is the server's own, never exported.
fn export_switch(value: bool, auth: &AwsAuth) -> Result<bool, FieldError> {
    if value && !matches!(auth, AwsAuth::AccessKeys { .. }) {
        return Err(FieldError::new(
            "export_long_lived_keys",
            format!(
                "can be true only with auth.mode access_keys, not {}: such integrations give jobs short-lived session credentials",
                auth.mode()
            ),
        ));
    }
    Ok(value)
}

/// How Berth gets AWS credentials for an ECR integration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum AwsAuth {
    /// Long-lived keys, sealed in the store; only a hint of the key id is kept in clear.
    AccessKeys { access_key_hint: String },
    /// A role assumed with STS, starting from sealed keys or from the machine's own identity.
    AssumeRole {
        role_arn: String,
        external_id: Option<String>,
        session_name: Option<String>,
        source: RoleSource,
    },
    /// The AWS credential chain of the machine Berth runs on (env, profile, IRSA, IMDS).
    Ambient,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoleSource {
    AccessKeys { access_key_hint: String },
    Ambient,
}

impl AwsAuth {
    pub fn mode(&self) -> &'static str {
        match self {
            AwsAuth::AccessKeys { .. } => "access_keys",
            AwsAuth::AssumeRole { .. } => "assume_role",
            AwsAuth::Ambient => "ambient",
        }
    }

    pub fn uses_access_keys(&self) -> bool {
        self.access_key_hint().is_some()
    }

    pub fn access_key_hint(&self) -> Option<&str> {
        match self {
            AwsAuth::AccessKeys { access_key_hint }
            | AwsAuth::AssumeRole {
                source: RoleSource::AccessKeys { access_key_hint },
                ..
            } => Some(access_key_hint),
            _ => None,
        }
    }
}

/// Which GitOps runtimes may use an integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeScope {
    All,
    Selected(Vec<Name>),
}

/// Who made a record and when, plus a version that increases with every write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub created_by: String,
    pub updated_by: String,
    pub version: i64,
}

/// An integration as stored: settings, assignments and which secrets are set, never their values.
#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    pub id: String,
    pub name: Name,
    pub config: IntegrationConfig,
    pub subscriptions: Vec<Name>,
    pub runtimes: RuntimeScope,
    pub secrets_set: BTreeSet<SecretField>,
    pub meta: Meta,
}

impl Integration {
    /// Whether the integration is assigned to `subscription` (names compare case-insensitively).
    pub fn is_assigned_to(&self, subscription: &Name) -> bool {
        self.subscriptions
            .iter()
            .any(|s| s.key() == subscription.key())
    }
}

/// A validated integration ready to be written: the full new state plus the secret changes.
#[derive(Debug)]
pub struct IntegrationDraft {
    pub name: Name,
    pub config: IntegrationConfig,
    pub subscriptions: Vec<Name>,
    pub runtimes: RuntimeScope,
    /// Secrets to (re)write.
    pub set_secrets: Secrets,
    /// Secrets the new configuration no longer uses; they are deleted, not kept around.
    pub clear_secrets: BTreeSet<SecretField>,
}

// ---- input: the JSON contract clients send, defined once in `berth-api` ----

pub use berth_api::{
    AccessKeysInput, AuthInput, IntegrationInput, IntegrationPatch, RoleSourceInput,
    RuntimeScopeInput,
};

pub const AUTH_MODES: &[&str] = &["access_keys", "assume_role", "ambient"];

fn parse_names(field: &str, values: &[String]) -> Result<Vec<Name>, FieldError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let name = Name::parse(&format!("{field}[{i}]"), v)?;
        if !seen.insert(name.key()) {
            return Err(FieldError::new(
                format!("{field}[{i}]"),
                format!("'{v}' is listed twice"),
            ));
        }
        out.push(name);
    }
    Ok(out)
}

fn parse_scope(input: RuntimeScopeInput) -> Result<RuntimeScope, FieldError> {
    match (input.all, input.selected) {
        (Some(true), None) => Ok(RuntimeScope::All),
        (None, Some(list)) => Ok(RuntimeScope::Selected(parse_names(
            "runtimes.selected",
            &list,
        )?)),
        _ => Err(FieldError::new(
            "runtimes",
            "must be {\"all\": true} or {\"selected\": [runtime names]}",
        )),
    }
}

fn opt_checked(
    field: &str,
    value: Option<String>,
    check: fn(&str, &str) -> Result<(), FieldError>,
) -> Result<Option<String>, FieldError> {
    match value {
        Some(v) => check(field, &v).map(|_| Some(v)),
        None => Ok(None),
    }
}

/// Validates a pair of keys; `previous_hint` says whether sealed keys already exist, so a patch
/// may omit them.
fn access_keys(
    field: &str,
    id: Option<SecretString>,
    secret: Option<SecretString>,
    previous_hint: Option<&str>,
    set: &mut Secrets,
) -> Result<String, FieldError> {
    let hint = match id {
        Some(id) => {
            validate_access_key_id(&format!("{field}.access_key_id"), id.expose_secret())?;
            let hint = key_hint(id.expose_secret());
            set.insert(SecretField::AwsAccessKeyId, id);
            hint
        }
        None => previous_hint.map(str::to_owned).ok_or_else(|| {
            FieldError::new(
                format!("{field}.access_key_id"),
                "is required when access keys are used",
            )
        })?,
    };
    match secret {
        Some(secret) => {
            validate_secret(
                &format!("{field}.secret_access_key"),
                secret.expose_secret(),
            )?;
            set.insert(SecretField::AwsSecretAccessKey, secret);
        }
        None if previous_hint.is_some() && !set.contains_key(&SecretField::AwsAccessKeyId) => {}
        None => {
            return Err(FieldError::new(
                format!("{field}.secret_access_key"),
                if previous_hint.is_some() {
                    "is required when the access key id changes"
                } else {
                    "is required when access keys are used"
                },
            ));
        }
    }
    Ok(hint)
}

fn parse_auth(
    input: AuthInput,
    previous: Option<&AwsAuth>,
    set: &mut Secrets,
) -> Result<AwsAuth, FieldError> {
    let previous_hint = previous.and_then(AwsAuth::access_key_hint);
    Ok(match input {
        AuthInput::AccessKeys {
            access_key_id,
            secret_access_key,
        } => AwsAuth::AccessKeys {
            access_key_hint: access_keys(
                "auth",
                access_key_id,
                secret_access_key,
                previous_hint,
                set,
            )?,
        },
        AuthInput::AssumeRole {
            role_arn,
            external_id,
            session_name,
            source,
        } => {
            validate_role_arn("auth.role_arn", &role_arn)?;
            let external_id = opt_checked("auth.external_id", external_id, validate_external_id)?;
            let session_name =
                opt_checked("auth.session_name", session_name, validate_session_name)?;
            let source = match source {
                None => RoleSource::Ambient,
                Some(RoleSourceInput::Keyword(word)) if word == "ambient" => RoleSource::Ambient,
                Some(RoleSourceInput::Keyword(word)) => {
                    return Err(FieldError::new(
                        "auth.source",
                        format!(
                            "'{word}' is not a role source: use \"ambient\" or {{\"access_key_id\", \"secret_access_key\"}}"
                        ),
                    ));
                }
                Some(RoleSourceInput::AccessKeys(keys)) => RoleSource::AccessKeys {
                    access_key_hint: access_keys(
                        "auth.source",
                        keys.access_key_id,
                        keys.secret_access_key,
                        previous_hint,
                        set,
                    )?,
                },
            };
            AwsAuth::AssumeRole {
                role_arn,
                external_id,
                session_name,
                source,
            }
        }
        AuthInput::Ambient {} => AwsAuth::Ambient,
    })
}

fn secret_delta(config: &IntegrationConfig, draft_secrets: &Secrets) -> BTreeSet<SecretField> {
    let required = config.required_secrets();
    [SecretField::AwsAccessKeyId, SecretField::AwsSecretAccessKey]
        .into_iter()
        .filter(|f| !required.contains(f) && !draft_secrets.contains_key(f))
        .collect()
}

impl IntegrationDraft {
    /// Validates a create request.
    pub fn create(input: IntegrationInput) -> Result<Self, DomainError> {
        let kind = IntegrationType::parse(&input.kind)?;
        let name = Name::parse("name", &input.name)?;
        let mut set_secrets = Secrets::new();
        let config = match kind {
            IntegrationType::Ecr => {
                let region = input.region.unwrap_or_else(|| DEFAULT_REGION.to_owned());
                validate_region("region", &region)?;
                let auth = input.auth.ok_or_else(|| {
                    FieldError::new(
                        "auth",
                        "is required: {\"mode\": \"access_keys\" | \"assume_role\" | \"ambient\", ...}",
                    )
                })?;
                let auth = parse_auth(auth, None, &mut set_secrets)?;
                let export_long_lived_keys =
                    export_switch(input.export_long_lived_keys.unwrap_or(false), &auth)?;
                IntegrationConfig::Ecr(EcrConfig {
                    region,
                    auth,
                    export_long_lived_keys,
                    registry_id: opt_checked(
                        "registry_id",
                        input.registry_id,
                        validate_registry_id,
                    )?,
                    endpoint: opt_checked("endpoint", input.endpoint, validate_endpoint)?,
                })
            }
        };
        let subscriptions = parse_names("subscriptions", &input.subscriptions)?;
        let runtimes = match input.runtimes {
            Some(scope) => parse_scope(scope)?,
            None => RuntimeScope::Selected(Vec::new()),
        };
        Ok(IntegrationDraft {
            name,
            config,
            subscriptions,
            runtimes,
            set_secrets,
            clear_secrets: BTreeSet::new(),
        })
    }

    /// Applies a patch to a stored integration. Omitted fields, and omitted secrets of an auth
    /// mode that keeps using them, stay as they are.
    pub fn patch(current: &Integration, patch: IntegrationPatch) -> Result<Self, DomainError> {
        if let Some(kind) = &patch.kind {
            let kind = IntegrationType::parse(kind)?;
            if kind != current.config.kind() {
                return Err(FieldError::new(
                    "type",
                    format!(
                        "cannot change from {} to {}: create a new integration instead",
                        current.config.kind().as_str(),
                        kind.as_str()
                    ),
                )
                .into());
            }
        }
        let name = match &patch.name {
            Some(n) => Name::parse("name", n)?,
            None => current.name.clone(),
        };
        let mut set_secrets = Secrets::new();
        let config = match &current.config {
            IntegrationConfig::Ecr(ecr) => {
                let region = patch.region.unwrap_or_else(|| ecr.region.clone());
                validate_region("region", &region)?;
                let auth = match patch.auth {
                    Some(auth) => parse_auth(auth, Some(&ecr.auth), &mut set_secrets)?,
                    None => ecr.auth.clone(),
                };
                // Changing away from access keys turns the switch off with them.
                let export_long_lived_keys = match patch.export_long_lived_keys {
                    Some(v) => export_switch(v, &auth)?,
                    None => {
                        ecr.export_long_lived_keys && matches!(auth, AwsAuth::AccessKeys { .. })
                    }
                };
                IntegrationConfig::Ecr(EcrConfig {
                    region,
                    auth,
                    export_long_lived_keys,
                    registry_id: match patch.registry_id {
                        Some(v) => opt_checked("registry_id", v, validate_registry_id)?,
                        None => ecr.registry_id.clone(),
                    },
                    endpoint: match patch.endpoint {
                        Some(v) => opt_checked("endpoint", v, validate_endpoint)?,
                        None => ecr.endpoint.clone(),
                    },
                })
            }
        };
        let subscriptions = match &patch.subscriptions {
            Some(Some(list)) => parse_names("subscriptions", list)?,
            Some(None) => {
                return Err(FieldError::new(
                    "subscriptions",
                    "must be a list of subscription names, not null (use [] to remove them all)",
                )
                .into());
            }
            None => current.subscriptions.clone(),
        };
        let runtimes = match patch.runtimes {
            Some(scope) => parse_scope(scope)?,
            None => current.runtimes.clone(),
        };
        let clear_secrets = secret_delta(&config, &set_secrets)
            .intersection(&current.secrets_set)
            .copied()
            .collect();
        Ok(IntegrationDraft {
            name,
            config,
            subscriptions,
            runtimes,
            set_secrets,
            clear_secrets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(v: serde_json::Value) -> IntegrationInput {
        serde_json::from_value(v).unwrap()
    }

    fn stored(draft: IntegrationDraft) -> Integration {
        Integration {
            id: "i1".into(),
            name: draft.name,
            config: draft.config,
            subscriptions: draft.subscriptions,
            runtimes: draft.runtimes,
            secrets_set: draft.set_secrets.keys().copied().collect(),
            meta: Meta {
                created_at: OffsetDateTime::UNIX_EPOCH,
                updated_at: OffsetDateTime::UNIX_EPOCH,
                created_by: "t".into(),
                updated_by: "t".into(),
                version: 1,
            },
        }
    }

    fn keys_input() -> serde_json::Value {
        json!({"name": "ecr-integration", "type": "ecr",
               "auth": {"mode": "access_keys", "access_key_id": "AKIAFAKEFAKE1234", "secret_access_key": "s3cr3t/xyz"}})
    }

    #[test]
    fn create_with_keys_defaults_region_and_keeps_only_a_hint() {
        let d = IntegrationDraft::create(input(keys_input())).unwrap();
        let IntegrationConfig::Ecr(ecr) = &d.config;
        assert_eq!(ecr.region, "us-east-1");
        assert_eq!(
            ecr.auth,
            AwsAuth::AccessKeys {
                access_key_hint: "1234".into()
            }
        );
        assert_eq!(d.set_secrets.len(), 2);
        assert_eq!(d.runtimes, RuntimeScope::Selected(vec![]));
        let shown = serde_json::to_string(&d.config).unwrap();
        assert!(!shown.contains("s3cr3t") && !shown.contains("AKIAFAKEFAKEFAKE"));
    }

    #[test]
    fn unknown_type_is_its_own_error() {
        let mut v = keys_input();
        v["type"] = json!("gcr-ish");
        assert_eq!(
            IntegrationDraft::create(input(v)).unwrap_err(),
            DomainError::UnknownType("gcr-ish".into())
        );
    }

    #[test]
    fn access_keys_without_secret_names_the_field() {
        let mut v = keys_input();
        v["auth"] = json!({"mode": "access_keys", "access_key_id": "AKIAFAKEFAKE1234"});
        let DomainError::Invalid(e) = IntegrationDraft::create(input(v)).unwrap_err() else {
            panic!()
        };
        assert_eq!(e.field, "auth.secret_access_key");
    }

    #[test]
    fn assume_role_from_keys_or_ambient() {
        let mut v = keys_input();
        v["auth"] = json!({"mode": "assume_role", "role_arn": "arn:aws:iam::123456789012:role/pull",
                           "external_id": "ext-1", "source": {"access_key_id": "AKIAFAKEFAKE9999", "secret_access_key": "x"}});
        let d = IntegrationDraft::create(input(v)).unwrap();
        assert_eq!(d.config.required_secrets().len(), 2);
        let mut v = keys_input();
        v["auth"] = json!({"mode": "assume_role", "role_arn": "arn:aws:iam::123456789012:role/pull", "source": "ambient"});
        let d = IntegrationDraft::create(input(v)).unwrap();
        assert!(d.set_secrets.is_empty());
        let mut v = keys_input();
        v["auth"] = json!({"mode": "assume_role", "role_arn": "arn:aws:iam::1:role/pull"});
        let DomainError::Invalid(e) = IntegrationDraft::create(input(v)).unwrap_err() else {
            panic!()
        };
        assert_eq!(e.field, "auth.role_arn");
    }

    #[test]
    fn patch_keeps_omitted_secrets_and_drops_unused_ones() {
        let current = stored(IntegrationDraft::create(input(keys_input())).unwrap());
        let p: IntegrationPatch = serde_json::from_value(json!({"region": "eu-west-1"})).unwrap();
        let d = IntegrationDraft::patch(&current, p).unwrap();
        assert!(d.set_secrets.is_empty() && d.clear_secrets.is_empty());
        assert_eq!(d.config.required_secrets().len(), 2);

        // Rotating only the secret keeps the id.
        let p: IntegrationPatch = serde_json::from_value(
            json!({"auth": {"mode": "access_keys", "secret_access_key": "new"}}),
        )
        .unwrap();
        let d = IntegrationDraft::patch(&current, p).unwrap();
        assert_eq!(d.set_secrets.len(), 1);

        // A new key id without its secret is refused.
        let p: IntegrationPatch = serde_json::from_value(
            json!({"auth": {"mode": "access_keys", "access_key_id": "AKIAFAKEFAKE5678"}}),
        )
        .unwrap();
        assert!(IntegrationDraft::patch(&current, p).is_err());

        let p: IntegrationPatch =
            serde_json::from_value(json!({"auth": {"mode": "ambient"}})).unwrap();
        let d = IntegrationDraft::patch(&current, p).unwrap();
        assert_eq!(d.clear_secrets.len(), 2);
    }

    #[test]
    fn patch_cannot_change_type_and_scope_must_be_one_shape() {
        let current = stored(IntegrationDraft::create(input(keys_input())).unwrap());
        let p: IntegrationPatch =
            serde_json::from_value(json!({"runtimes": {"all": true, "selected": ["a"]}})).unwrap();
        assert!(IntegrationDraft::patch(&current, p).is_err());
        let p: IntegrationPatch =
            serde_json::from_value(json!({"runtimes": {"selected": ["a", "A"]}})).unwrap();
        let DomainError::Invalid(e) = IntegrationDraft::patch(&current, p).unwrap_err() else {
            panic!()
        };
        assert_eq!(e.field, "runtimes.selected[1]");
    }
}
