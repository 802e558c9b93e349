//! An integration as the files the shared configuration repository holds, in Codefresh's
//! layout: `resources/all-runtimes-all-clusters/` for one shared with All runtimes,
//! `resources/runtimes/<runtime>/` for each selected runtime. Each directory gets a ConfigMap
//! with the non-secret settings and, when the integration holds secrets, a SealedSecret sealed
//! for that runtime's controller.

use std::collections::BTreeMap;

use berth_core::{AwsAuth, Integration, IntegrationConfig, RoleSource, RuntimeScope};
use serde_json::{Value, json};

use crate::seal::{Scope, SealError, SealingKey};

pub const ALL_RUNTIMES_DIR: &str = "resources/all-runtimes-all-clusters";

/// Where an integration's files go for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    AllRuntimes,
    Runtime(String),
}

impl Target {
    pub fn directory(&self) -> String {
        match self {
            Target::AllRuntimes => ALL_RUNTIMES_DIR.to_owned(),
            Target::Runtime(name) => format!("resources/runtimes/{}", kubernetes_name(name)),
        }
    }
}

/// The targets an integration's scope names: none, All runtimes, or each selected runtime.
pub fn targets(scope: &RuntimeScope) -> Vec<Target> {
    match scope {
        RuntimeScope::All => vec![Target::AllRuntimes],
        RuntimeScope::Selected(names) => names
            .iter()
            .map(|n| Target::Runtime(n.to_string()))
            .collect(),
    }
}

/// A Berth name as a Kubernetes object name (RFC 1123 subdomain label rules, 63 characters):
/// lower case, `_` and `.` as `-`. A name that had to change keeps a short hash of the original,
/// so two Berth names never meet in one Kubernetes name.
pub fn kubernetes_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let trimmed = mapped.trim_matches('-');
    if trimmed == name && trimmed.len() <= 63 {
        return trimmed.to_owned();
    }
    let hash = fnv1a(name.as_bytes());
    let keep: String = trimmed.chars().take(63 - 9).collect();
    format!("{}-{hash:08x}", keep.trim_end_matches('-'))
}

/// A small, stable hash for name suffixes (not for security).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// One file to write: its path in the repository and its YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub yaml: String,
}

fn labels(integration: &Integration) -> Value {
    json!({
        "berth.io/entity": "integration",
        "berth.io/integration-type": integration.config.kind().as_str(),
        "berth.io/integration-name": kubernetes_name(integration.name.as_str()),
    })
}

fn annotations(integration: &Integration) -> Value {
    json!({
        "berth.io/revision": integration.meta.version.to_string(),
        "berth.io/name": integration.name.as_str(),
    })
}

fn secret_name(integration: &Integration) -> String {
    format!("{}-secrets", kubernetes_name(integration.name.as_str()))
}

fn yaml(value: &Value) -> String {
    yaml_serde::to_string(value).expect("JSON values always render as YAML")
}

/// The ConfigMap with the integration's non-secret settings, in `namespace`.
pub fn config_map(integration: &Integration, namespace: &str, target: &Target) -> File {
    let IntegrationConfig::Ecr(ecr) = &integration.config;
    let mut data = BTreeMap::new();
    data.insert("type", integration.config.kind().as_str().to_owned());
    data.insert("name", integration.name.to_string());
    data.insert("region", ecr.region.clone());
    let (mode, role) = match &ecr.auth {
        AwsAuth::AccessKeys { .. } => ("access_keys", None),
        AwsAuth::AssumeRole {
            role_arn,
            external_id,
            source,
            ..
        } => {
            if external_id.is_some() {
                data.insert(
                    "externalIdRef",
                    format!("{}/externalId", secret_name(integration)),
                );
            }
            if let RoleSource::AccessKeys { .. } = source {
                data.insert("roleSource", "access_keys".to_owned());
            }
            ("assume_role", Some(role_arn.clone()))
        }
        AwsAuth::Ambient => ("ambient", None),
    };
    data.insert("authMode", mode.to_owned());
    if let Some(arn) = role {
        data.insert("roleArn", arn);
    }
    if let Some(id) = &ecr.registry_id {
        data.insert("registryId", id.clone());
    }
    if let Some(endpoint) = &ecr.endpoint {
        data.insert("endpoint", endpoint.clone());
    }
    let name = kubernetes_name(integration.name.as_str());
    let doc = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels(integration),
            "annotations": annotations(integration),
        },
        "data": data,
    });
    File {
        path: format!("{}/{name}.configmap.yaml", target.directory()),
        yaml: yaml(&doc),
    }
}

/// The SealedSecret holding `values` (key → plain value) sealed strictly for its name and
/// `namespace` with the runtime's key; `None` when there is nothing secret.
pub fn sealed_secret(
    integration: &Integration,
    namespace: &str,
    target: &Target,
    key: &SealingKey,
    values: &BTreeMap<String, String>,
) -> Result<Option<File>, SealError> {
    if values.is_empty() {
        return Ok(None);
    }
    let name = secret_name(integration);
    let mut encrypted = BTreeMap::new();
    for (k, v) in values {
        encrypted.insert(
            k.clone(),
            key.seal(Scope::Strict, namespace, &name, v.as_bytes())?,
        );
    }
    let metadata = json!({
        "name": name,
        "namespace": namespace,
        "labels": labels(integration),
        "annotations": annotations(integration),
    });
    let doc = json!({
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": metadata,
        "spec": {
            "encryptedData": encrypted,
            "template": {
                "type": "Opaque",
                "metadata": metadata,
            },
        },
    });
    Ok(Some(File {
        path: format!("{}/{name}.sealedsecret.yaml", target.directory()),
        yaml: yaml(&doc),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn berth_names_become_distinct_kubernetes_names() {
        assert_eq!(kubernetes_name("ecr-prod"), "ecr-prod");
        let a = kubernetes_name("ECR_Prod");
        let b = kubernetes_name("ecr.prod");
        assert!(a.starts_with("ecr-prod-") && b.starts_with("ecr-prod-"));
        assert_ne!(a, b, "different Berth names stay different");
        let long = kubernetes_name(&"a".repeat(100));
        assert!(long.len() <= 63);
        for n in [a, b, long] {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
            assert!(!n.starts_with('-') && !n.ends_with('-'));
        }
    }
}
