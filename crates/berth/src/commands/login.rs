//! `berth login`, `berth logout` and the `docker-credential-berth` helper protocol.

use std::io::Read;

use anyhow::bail;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use berth_api::{HostRequest, IntegrationPage, RegionOptions, RegistryCredentials};
use reqwest::Method;
use serde_json::json;

use crate::cli::{Global, LoginFormat};
use crate::client::{Api, ApiFailure, encode};
use crate::docker_config::{DockerConfig, HelperAnswer};

pub struct LoginOptions {
    pub integration: String,
    pub region: Option<String>,
    pub print: bool,
    pub format: LoginFormat,
    pub helper: bool,
    pub secret_name: Option<String>,
    pub namespace: Option<String>,
}

/// Registry credentials through an integration, in its own region or `region`.
pub async fn credentials(
    api: &Api,
    integration: &str,
    region: Option<&str>,
) -> anyhow::Result<RegistryCredentials> {
    let body = RegionOptions {
        region: region.map(str::to_owned),
    };
    api.call(
        Method::POST,
        &format!("/api/v1/integrations/{}/credentials", encode(integration)),
        Some(&body),
    )
    .await
}

/// Registry credentials by registry host, through whichever integration serves it.
pub async fn credentials_by_host(api: &Api, host: &str) -> anyhow::Result<RegistryCredentials> {
    let body = HostRequest {
        host: host.to_owned(),
    };
    api.call(Method::POST, "/api/v1/registry-credentials", Some(&body))
        .await
}

fn k8s_secret(
    name: &str,
    namespace: Option<&str>,
    host: &str,
    user: &str,
    password: &str,
) -> String {
    let auth = B64.encode(format!("{user}:{password}"));
    let docker = json!({"auths": {host: {"username": user, "password": password, "auth": auth}}});
    let mut out = String::from("apiVersion: v1\nkind: Secret\nmetadata:\n");
    out.push_str(&format!("  name: {name}\n"));
    if let Some(ns) = namespace {
        out.push_str(&format!("  namespace: {ns}\n"));
    }
    out.push_str("type: kubernetes.io/dockerconfigjson\ndata:\n");
    out.push_str(&format!(
        "  .dockerconfigjson: {}\n",
        B64.encode(docker.to_string())
    ));
    out
}

pub async fn login(global: &Global, o: LoginOptions) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    let c = credentials(&api, &o.integration, o.region.as_deref()).await?;
    let (host, user, password) = (c.registry, c.username, c.password);
    if o.print {
        eprintln!("username {user} for {host} (expires at {})", c.expires_at);
        println!("{password}");
        return Ok(());
    }
    if o.format == LoginFormat::K8sSecret {
        let name = o
            .secret_name
            .unwrap_or_else(|| format!("berth-{}", o.integration.to_ascii_lowercase()));
        print!(
            "{}",
            k8s_secret(&name, o.namespace.as_deref(), &host, &user, &password)
        );
        return Ok(());
    }
    let mut config = DockerConfig::load()?;
    let auth = B64.encode(format!("{user}:{password}"));
    config.add(&host, &o.integration, (!o.helper).then_some(auth.as_str()));
    config.save()?;
    if o.helper {
        eprintln!(
            "{host}: credHelpers → docker-credential-berth in {} (it reads BERTH_URL and BERTH_TOKEN; link it with `ln -s \"$(command -v berth)\" ~/.local/bin/docker-credential-berth`)",
            config.path().display()
        );
    } else {
        eprintln!(
            "logged in to {host} with integration {} (in {})",
            o.integration,
            config.path().display()
        );
    }
    Ok(())
}

pub fn logout(integration: &str) -> anyhow::Result<()> {
    let mut config = DockerConfig::load()?;
    let hosts = config.remove(integration);
    if hosts.is_empty() {
        eprintln!(
            "nothing to remove: berth login did not add {integration} to {}",
            config.path().display()
        );
        return Ok(());
    }
    config.save()?;
    for h in hosts {
        eprintln!("logged out of {h}");
    }
    Ok(())
}

/// The Docker credential-helper protocol, for when `berth` runs as `docker-credential-berth`.
/// Returns the process exit code.
pub async fn helper(global: &Global, action: &str) -> anyhow::Result<u8> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    match action {
        "get" => {
            let server_url = input.trim();
            let api = Api::new(global)?;
            match credentials_by_host(&api, server_url).await {
                Ok(c) => {
                    let answer = HelperAnswer {
                        server_url: server_url.to_owned(),
                        username: c.username,
                        secret: c.password,
                    };
                    println!("{}", serde_json::to_string(&answer)?);
                    Ok(0)
                }
                Err(e)
                    if e.downcast_ref::<ApiFailure>()
                        .is_some_and(|f| f.status == reqwest::StatusCode::NOT_FOUND) =>
                {
                    // The protocol's own words, which docker and skopeo recognise.
                    println!("credentials not found in native keychain");
                    Ok(1)
                }
                Err(e) => Err(e),
            }
        }
        "list" => {
            let api = Api::new(global)?;
            let mut hosts = std::collections::BTreeMap::new();
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(c) => format!("/api/v1/integrations?limit=500&cursor={}", encode(c)),
                    None => "/api/v1/integrations?limit=500".into(),
                };
                let page: IntegrationPage = api.get(&path).await?;
                for i in page.items {
                    let host = match (&i.endpoint, &i.registry_id) {
                        (Some(e), _) => berth_core::normalize_host(e),
                        (None, Some(id)) => format!("{id}.dkr.ecr.{}.amazonaws.com", i.region),
                        _ => continue,
                    };
                    hosts.insert(host, "AWS");
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            println!("{}", serde_json::to_string(&hosts)?);
            Ok(0)
        }
        "store" | "erase" => {
            // Berth issues short-lived credentials per integration; there is nothing to keep.
            // Succeeding quietly keeps `docker login` / `docker logout` flows working.
            eprintln!(
                "docker-credential-berth: '{action}' is not supported: Berth issues registry credentials per integration (use `berth login`); nothing was stored"
            );
            Ok(0)
        }
        other => bail!(
            "docker-credential-berth: unknown action '{other}' (expected get, list, store or erase)"
        ),
    }
}
