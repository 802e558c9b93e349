//! What the repository should hold for an integration: its files for every target, each with a
//! tag naming what it was made from. A ConfigMap is compared by its bytes; a SealedSecret cannot
//! be (sealing is randomized, and only the cluster can open it), so it is compared by its tag —
//! the integration's revision, the certificate's fingerprint and the namespace it is sealed
//! for — and by the hash of the bytes Berth last wrote. The tag holds no secret and no hash of one.

use std::collections::BTreeMap;

use berth_core::{AwsAuth, Integration, IntegrationConfig, RuntimeScope};

use crate::resources::{self, Target};
use crate::seal::{SealError, SealingKey};

/// Where a runtime's files are applied and what they are sealed for.
#[derive(Debug, Clone)]
pub struct RuntimePlace {
    pub name: String,
    pub namespace: String,
    pub key: Option<SealingKey>,
}

/// Everything rendering needs besides the integration: the runtimes it may be shared with, and
/// the namespace and account-wide key of `resources/all-runtimes-all-clusters/`.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    pub all_runtimes_namespace: String,
    pub account_key: Option<SealingKey>,
    pub runtimes: Vec<RuntimePlace>,
}

/// One file as Berth would write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredFile {
    pub path: String,
    pub content: String,
    /// What the file was made from: a SealedSecret is current when its tag is.
    pub tag: String,
    pub sealed: bool,
}

/// Why an integration cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(
        "integration {0} holds secrets and is shared with All runtimes, but no account-wide sealing certificate is configured: give one with `berth gitops configure --account-cert FILE` (PUT /api/v1/gitops account_cert)"
    )]
    NoAccountKey(String),
    #[error(
        "integration {integration} holds secrets, but runtime {runtime} has no sealing certificate: add one to the runtime first"
    )]
    NoRuntimeKey {
        integration: String,
        runtime: String,
    },
    #[error("integration {integration} is shared with runtime {runtime}, which does not exist")]
    UnknownRuntime {
        integration: String,
        runtime: String,
    },
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// The secret values of an integration under the keys its SealedSecret holds: the access keys
/// it was given, and the external id of a role.
pub fn secret_values(
    integration: &Integration,
    access_keys: Option<(&str, &str)>,
) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    let IntegrationConfig::Ecr(ecr) = &integration.config;
    if let AwsAuth::AssumeRole {
        external_id: Some(id),
        ..
    } = &ecr.auth
    {
        values.insert("externalId".to_owned(), id.clone());
    }
    if let Some((id, secret)) = access_keys {
        values.insert("awsAccessKeyId".to_owned(), id.to_owned());
        values.insert("awsSecretAccessKey".to_owned(), secret.to_owned());
    }
    values
}

/// Every file `integration` should have in the repository; none when it is not shared with
/// runtimes.
pub fn render(
    integration: &Integration,
    secrets: &BTreeMap<String, String>,
    placement: &Placement,
) -> Result<Vec<DesiredFile>, RenderError> {
    let name = integration.name.to_string();
    let mut files = Vec::new();
    for target in resources::targets(&integration.runtimes) {
        let (namespace, key) = match &target {
            Target::AllRuntimes => (
                placement.all_runtimes_namespace.as_str(),
                placement.account_key.as_ref(),
            ),
            Target::Runtime(runtime) => {
                let place = placement
                    .runtimes
                    .iter()
                    .find(|r| r.name.eq_ignore_ascii_case(runtime))
                    .ok_or_else(|| RenderError::UnknownRuntime {
                        integration: name.clone(),
                        runtime: runtime.clone(),
                    })?;
                (place.namespace.as_str(), place.key.as_ref())
            }
        };
        let map = resources::config_map(integration, namespace, &target);
        files.push(DesiredFile {
            tag: format!("revision {}", integration.meta.version),
            path: map.path,
            content: map.yaml,
            sealed: false,
        });
        if secrets.is_empty() {
            continue;
        }
        let key = key.ok_or_else(|| match &target {
            Target::AllRuntimes => RenderError::NoAccountKey(name.clone()),
            Target::Runtime(runtime) => RenderError::NoRuntimeKey {
                integration: name.clone(),
                runtime: runtime.clone(),
            },
        })?;
        if let Some(file) = resources::sealed_secret(integration, namespace, &target, key, secrets)?
        {
            files.push(DesiredFile {
                // The namespace is part of the strict scope the value is sealed under.
                tag: format!(
                    "revision {}, sealed for {} in {namespace}",
                    integration.meta.version,
                    key.fingerprint()
                ),
                path: file.path,
                content: file.yaml,
                sealed: true,
            });
        }
    }
    Ok(files)
}

/// Whether the integration is shared with any runtime (and so has files).
pub fn is_shared(scope: &RuntimeScope) -> bool {
    !resources::targets(scope).is_empty()
}

/// Why `text` is not a YAML document, if it is not (a hand edit gone wrong).
pub fn yaml_problem(text: &str) -> Option<String> {
    parse_yaml(text).err()
}

/// A YAML document as JSON values.
pub fn parse_yaml(text: &str) -> Result<serde_json::Value, String> {
    yaml_serde::from_str::<serde_json::Value>(text).map_err(|e| e.to_string())
}

/// An integration found in the repository: what its ConfigMaps say, and where they lie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    /// The ConfigMap's `data`: type, region, authMode, roleArn, registryId, endpoint, ….
    pub data: BTreeMap<String, String>,
    /// `None` for All runtimes, else the runtime folders it lies in.
    pub runtimes: Option<Vec<String>>,
    /// The first file it was found in.
    pub file: String,
}

/// Groups the integration ConfigMaps among `files` (path, YAML) by integration name; files that
/// are not one are skipped, with why when they look like one but cannot be read.
pub fn found_integrations(files: &[(String, String)]) -> (Vec<Found>, Vec<(String, String)>) {
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    let mut skipped = Vec::new();
    for (path, text) in files {
        let doc = match parse_yaml(text) {
            Ok(d) => d,
            Err(e) => {
                skipped.push((path.clone(), format!("not valid YAML: {e}")));
                continue;
            }
        };
        if doc["kind"] != "ConfigMap" || doc["data"]["type"] != "ecr" {
            continue;
        }
        let data: BTreeMap<String, String> = doc["data"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let Some(name) = data.get("name").cloned() else {
            skipped.push((path.clone(), "an ecr ConfigMap without data.name".into()));
            continue;
        };
        let runtime = path
            .strip_prefix("resources/runtimes/")
            .and_then(|rest| rest.split_once('/'))
            .map(|(r, _)| r.to_owned());
        let entry = found.entry(name.clone()).or_insert_with(|| Found {
            name,
            data,
            runtimes: Some(Vec::new()),
            file: path.clone(),
        });
        match (runtime, &mut entry.runtimes) {
            (Some(r), Some(list)) => list.push(r),
            (None, _) if path.starts_with(&format!("{}/", crate::resources::ALL_RUNTIMES_DIR)) => {
                entry.runtimes = None
            }
            _ => {}
        }
    }
    (found.into_values().collect(), skipped)
}
