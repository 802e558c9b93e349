//! `berth runtime pull-secret RUNTIME INTEGRATION`: an image pull secret for a cluster, for an
//! integration shared with it. Either a `kubernetes.io/dockerconfigjson` Secret holding fresh
//! short-lived credentials (to apply, never to commit: it expires), annotated with when; or,
//! with `--external-secrets`, an `ExternalSecret` and its `ECRAuthorizationToken` generator, so
//! the cluster's external-secrets operator mints and refreshes the token itself and nothing
//! short-lived ever goes into Git.

use anyhow::bail;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use berth_api::{AuthView, IntegrationView, RuntimeView, RuntimesView};
use serde_json::json;

use crate::cli::Global;
use crate::client::{Api, encode};

/// How often the operator refreshes the token: well inside ECR's 12 hours.
const REFRESH: &str = "6h";

pub struct PullSecretArgs {
    pub runtime: String,
    pub integration: String,
    pub namespace: String,
    pub name: Option<String>,
    pub external_secrets: bool,
}

fn shared_with(i: &IntegrationView, runtime: &str) -> bool {
    match &i.runtimes {
        RuntimesView::All { .. } => true,
        RuntimesView::Selected { selected } => {
            selected.iter().any(|r| r.eq_ignore_ascii_case(runtime))
        }
    }
}

pub async fn pull_secret(global: &Global, a: PullSecretArgs) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    let runtime: RuntimeView = api
        .get(&format!("/api/v1/runtimes/{}", encode(&a.runtime)))
        .await?;
    let integration: IntegrationView = api
        .get(&format!("/api/v1/integrations/{}", encode(&a.integration)))
        .await?;
    if !shared_with(&integration, &runtime.name) {
        bail!(
            "integration {} is not shared with runtime {}: share it first (berth integration edit {} --runtime {})",
            integration.name,
            runtime.name,
            integration.name,
            runtime.name
        );
    }
    // The same Kubernetes name the integration's GitOps resources carry.
    let label = berth_gitops::resources::kubernetes_name(&integration.name);
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| format!("{label}-pull-secret"));
    if a.external_secrets {
        print!("{}", external_secret(&integration, &name, &a.namespace));
        return Ok(());
    }
    let c = super::login::credentials(&api, &integration.name, None).await?;
    let expires = time::OffsetDateTime::from_unix_timestamp(c.expires_at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let auth = B64.encode(format!("{}:{}", c.username, c.password));
    let docker = json!({"auths": {c.registry.as_str(): {"username": c.username, "password": c.password, "auth": auth}}});
    // Every scalar double-quoted (JSON strings are YAML): an RFC 3339 time left bare would be
    // read back as a timestamp, not the string an annotation must be.
    let q = |v: &str| serde_json::to_string(v).unwrap_or_default();
    print!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {}\n  namespace: {}\n  labels:\n    berth.io/integration-name: {}\n  annotations:\n    berth.io/expires-at: {}\n    berth.io/runtime: {}\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {}\n",
        q(&name),
        q(&a.namespace),
        q(&label),
        q(&expires),
        q(&runtime.name),
        q(&B64.encode(docker.to_string())),
    );
    eprintln!(
        "{name}: credentials for {} expire at {expires}; apply it, do not commit it",
        c.registry
    );
    Ok(())
}

/// The generator and the ExternalSecret that renders its token as a dockerconfigjson Secret.
fn external_secret(i: &IntegrationView, name: &str, namespace: &str) -> String {
    let generator = format!("{name}-ecr-token");
    let mut spec = json!({"region": i.region});
    if let AuthView::AssumeRole { role_arn, .. } = &i.auth {
        spec["role"] = json!(role_arn);
    }
    let token = json!({
        "apiVersion": "generators.external-secrets.io/v1alpha1",
        "kind": "ECRAuthorizationToken",
        "metadata": {"name": generator, "namespace": namespace},
        "spec": spec,
    });
    let config = r#"{"auths":{"{{ .proxy_endpoint }}":{"username":"{{ .username }}","password":"{{ .password }}","auth":"{{ printf "%s:%s" .username .password | b64enc }}"}}}"#;
    let external = json!({
        "apiVersion": "external-secrets.io/v1beta1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "refreshInterval": REFRESH,
            "target": {
                "name": name,
                "template": {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": config}},
            },
            "dataFrom": [{"sourceRef": {"generatorRef": {
                "apiVersion": "generators.external-secrets.io/v1alpha1",
                "kind": "ECRAuthorizationToken",
                "name": generator,
            }}}],
        },
    });
    format!(
        "{}---\n{}",
        yaml_serde::to_string(&token).unwrap_or_default(),
        yaml_serde::to_string(&external).unwrap_or_default()
    )
}
