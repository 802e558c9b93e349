//! `berth subscription|project|runtime|token` commands.

use anyhow::Context;
use berth_api::{
    CreatedToken, NewProject, NewRuntime, NewSubscription, NewToken, ProjectList, ProjectView,
    ReleasedDependencies, RuntimeList, RuntimeView, SubscriptionList, SubscriptionView,
};
use reqwest::Method;
use serde_json::json;

use crate::cli::{Global, ProjectCmd, RuntimeCmd, SubscriptionCmd, TokenCmd};
use crate::client::{Api, encode};
use crate::output;

pub async fn subscription(global: &Global, cmd: SubscriptionCmd) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    match cmd {
        SubscriptionCmd::Add { name } => {
            let body = NewSubscription { name };
            let v: SubscriptionView = api
                .call(Method::POST, "/api/v1/subscriptions", Some(&body))
                .await?;
            output::print(global.output, &v, |v| {
                println!("added subscription {}", v.name)
            });
        }
        SubscriptionCmd::List => {
            let v: SubscriptionList = api.get("/api/v1/subscriptions").await?;
            output::print(global.output, &v, |v| {
                let rows: Vec<Vec<String>> = v
                    .items
                    .iter()
                    .map(|s| {
                        vec![
                            s.name.clone(),
                            s.meta.created_at.clone(),
                            s.meta.created_by.clone(),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "CREATED AT", "CREATED BY"], &rows)
            });
        }
    }
    Ok(())
}

pub async fn project(global: &Global, cmd: ProjectCmd) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    match cmd {
        ProjectCmd::Add { name, subscription } => {
            let body = NewProject { name, subscription };
            let v: ProjectView = api
                .call(Method::POST, "/api/v1/projects", Some(&body))
                .await?;
            output::print(global.output, &v, |v| {
                println!(
                    "added project {} to subscription {}",
                    v.name, v.subscription
                )
            });
        }
        ProjectCmd::Delete { name } => {
            api.delete(&format!("/api/v1/projects/{name}")).await?;
            output::print(global.output, &json!({"deleted": name}), |_| {
                println!("deleted project {name}")
            });
        }
        ProjectCmd::ReleaseDependencies { name } => {
            let v: ReleasedDependencies = api
                .call(
                    Method::POST,
                    &format!("/api/v1/projects/{name}/release-dependencies"),
                    None::<&()>,
                )
                .await?;
            output::print(global.output, &v, |v| {
                println!("released {} dependencies of project {name}", v.released)
            });
        }
        ProjectCmd::List { subscription } => {
            let path = match subscription {
                Some(sub) => format!("/api/v1/projects?subscription={}", encode(&sub)),
                None => "/api/v1/projects".into(),
            };
            let v: ProjectList = api.get(&path).await?;
            output::print(global.output, &v, |v| {
                let rows: Vec<Vec<String>> = v
                    .items
                    .iter()
                    .map(|p| {
                        vec![
                            p.name.clone(),
                            p.subscription.clone(),
                            p.meta.created_at.clone(),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "SUBSCRIPTION", "CREATED AT"], &rows)
            });
        }
    }
    Ok(())
}

/// A sealing certificate from a file, or from the controller (`…/v1/cert.pem`).
async fn certificate(source: &str) -> anyhow::Result<String> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let answer = reqwest::get(source)
            .await
            .with_context(|| format!("cannot fetch the sealing certificate from {source}"))?;
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        if !status.is_success() {
            anyhow::bail!("{source} answered {status}: {}", text.trim());
        }
        return Ok(text);
    }
    std::fs::read_to_string(source).with_context(|| format!("cannot read {source}"))
}

pub async fn runtime(global: &Global, cmd: RuntimeCmd) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    match cmd {
        RuntimeCmd::Add {
            name,
            sealing_cert,
            namespace,
            cluster_role,
        } => {
            let sealing_cert = match sealing_cert {
                Some(source) => Some(certificate(&source).await?),
                None => None,
            };
            let body = NewRuntime {
                name,
                sealing_cert,
                namespace,
                cluster_role_arn: cluster_role,
            };
            let v: RuntimeView = api
                .call(Method::POST, "/api/v1/runtimes", Some(&body))
                .await?;
            output::print(global.output, &v, |v| println!("added runtime {}", v.name));
        }
        RuntimeCmd::PullSecret {
            runtime,
            integration,
            namespace,
            name,
            external_secrets,
        } => {
            let args = super::pull_secret::PullSecretArgs {
                runtime,
                integration,
                namespace,
                name,
                external_secrets,
            };
            return super::pull_secret::pull_secret(global, args).await;
        }
        RuntimeCmd::SetNamespace { name, namespace } => {
            let body = berth_api::RuntimeNamespace { namespace };
            let path = format!("/api/v1/runtimes/{}/namespace", encode(&name));
            let v: RuntimeView = api.call(Method::PUT, &path, Some(&body)).await?;
            output::print(global.output, &v, |v| {
                let ns = v.namespace.as_deref().unwrap_or("-");
                println!(
                    "runtime {}'s resources move to namespace {ns} in one commit",
                    v.name
                )
            });
        }
        RuntimeCmd::SetClusterRole { name, arn, .. } => {
            let body = berth_api::RuntimeClusterRole {
                cluster_role_arn: arn,
            };
            let path = format!("/api/v1/runtimes/{}/cluster-role", encode(&name));
            let v: RuntimeView = api.call(Method::PUT, &path, Some(&body)).await?;
            output::print(global.output, &v, |v| match &v.cluster_role_arn {
                Some(arn) => println!("runtime {}'s cluster assumes roles as {arn}", v.name),
                None => println!("runtime {} records no cluster role", v.name),
            });
        }
        RuntimeCmd::SetCert { name, sealing_cert } => {
            let text = certificate(&sealing_cert).await?;
            let body = berth_api::RuntimeCertificate { sealing_cert: text };
            let path = format!("/api/v1/runtimes/{}/sealing-cert", encode(&name));
            let v: RuntimeView = api.call(Method::PUT, &path, Some(&body)).await?;
            output::print(global.output, &v, |v| {
                println!(
                    "runtime {} now seals for {}; its SealedSecrets are re-sealed in one commit",
                    v.name,
                    v.sealing_cert_fingerprint.as_deref().unwrap_or("-")
                )
            });
        }
        RuntimeCmd::List => {
            let v: RuntimeList = api.get("/api/v1/runtimes").await?;
            output::print(global.output, &v, print_runtimes);
        }
    }
    Ok(())
}

fn print_runtimes(v: &RuntimeList) {
    let rows: Vec<Vec<String>> = v
        .items
        .iter()
        .map(|r| {
            let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            vec![
                r.name.clone(),
                or_dash(&r.sealing_cert_fingerprint),
                or_dash(&r.sealing_cert_expires_at),
                or_dash(&r.cluster_role_arn),
                r.meta.created_at.clone(),
            ]
        })
        .collect();
    output::table(
        &[
            "NAME",
            "SEALING CERT",
            "EXPIRES",
            "CLUSTER ROLE",
            "CREATED AT",
        ],
        &rows,
    )
}

pub async fn token(global: &Global, cmd: TokenCmd) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create {
            subscription,
            description,
        } => {
            let api = Api::new(global)?;
            let body = NewToken {
                subscription,
                description,
            };
            let v: CreatedToken = api
                .call(Method::POST, "/api/v1/tokens", Some(&body))
                .await?;
            output::print(global.output, &v, |v| {
                eprintln!(
                    "token {} for subscription {} (shown once; store it as a CI secret):",
                    v.info.id,
                    output::or_dash(v.info.subscription.as_deref())
                );
                println!("{}", v.token);
            });
        }
        TokenCmd::RotateAdmin(args) => super::admin::rotate_admin(global, &args).await?,
    }
    Ok(())
}
