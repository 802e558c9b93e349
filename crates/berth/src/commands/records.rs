//! `berth subscription|project|runtime|token` commands.

use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{Global, ProjectCmd, RuntimeCmd, SubscriptionCmd, TokenCmd};
use crate::client::{Api, encode};
use crate::output::{self, s};

fn rows(v: &Value, cols: &[&str]) -> Vec<Vec<String>> {
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| cols.iter().map(|c| s(&i[*c])).collect())
        .collect()
}

pub async fn subscription(global: &Global, cmd: SubscriptionCmd) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    match cmd {
        SubscriptionCmd::Add { name } => {
            let v = api
                .call(
                    Method::POST,
                    "/api/v1/subscriptions",
                    Some(&json!({"name": name})),
                )
                .await?;
            output::print(global.output, &v, |v| {
                println!("added subscription {}", s(&v["name"]))
            });
        }
        SubscriptionCmd::List => {
            let v = api.get("/api/v1/subscriptions").await?;
            output::print(global.output, &v, |v| {
                output::table(
                    &["NAME", "CREATED AT", "CREATED BY"],
                    &rows(v, &["name", "created_at", "created_by"]),
                )
            });
        }
    }
    Ok(())
}

pub async fn project(global: &Global, cmd: ProjectCmd) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    match cmd {
        ProjectCmd::Add { name, subscription } => {
            let body = json!({"name": name, "subscription": subscription});
            let v = api
                .call(Method::POST, "/api/v1/projects", Some(&body))
                .await?;
            output::print(global.output, &v, |v| {
                println!(
                    "added project {} to subscription {}",
                    s(&v["name"]),
                    s(&v["subscription"])
                )
            });
        }
        ProjectCmd::Delete { name } => {
            api.call(Method::DELETE, &format!("/api/v1/projects/{name}"), None)
                .await?;
            output::print(global.output, &json!({"deleted": name}), |_| {
                println!("deleted project {name}")
            });
        }
        ProjectCmd::ReleaseDependencies { name } => {
            let v = api
                .call(
                    Method::POST,
                    &format!("/api/v1/projects/{name}/release-dependencies"),
                    Some(&json!({})),
                )
                .await?;
            output::print(global.output, &v, |v| {
                println!("released {} dependencies of project {name}", v["released"])
            });
        }
        ProjectCmd::List { subscription } => {
            let path = match subscription {
                Some(sub) => format!("/api/v1/projects?subscription={}", encode(&sub)),
                None => "/api/v1/projects".into(),
            };
            let v = api.get(&path).await?;
            output::print(global.output, &v, |v| {
                output::table(
                    &["NAME", "SUBSCRIPTION", "CREATED AT"],
                    &rows(v, &["name", "subscription", "created_at"]),
                )
            });
        }
    }
    Ok(())
}

pub async fn runtime(global: &Global, cmd: RuntimeCmd) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    match cmd {
        RuntimeCmd::Add { name, sealing_cert } => {
            let cert = match sealing_cert {
                Some(p) => Some(
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("cannot read {}", p.display()))?,
                ),
                None => None,
            };
            let body = json!({"name": name, "sealing_cert": cert});
            let v = api
                .call(Method::POST, "/api/v1/runtimes", Some(&body))
                .await?;
            output::print(global.output, &v, |v| {
                println!("added runtime {}", s(&v["name"]))
            });
        }
        RuntimeCmd::List => {
            let v = api.get("/api/v1/runtimes").await?;
            output::print(global.output, &v, |v| {
                output::table(
                    &["NAME", "CREATED AT", "CREATED BY"],
                    &rows(v, &["name", "created_at", "created_by"]),
                )
            });
        }
    }
    Ok(())
}

pub async fn token(global: &Global, cmd: TokenCmd) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create {
            subscription,
            description,
        } => {
            let api = Api::new(global)?;
            let body = json!({"subscription": subscription, "description": description});
            let v = api
                .call(Method::POST, "/api/v1/tokens", Some(&body))
                .await?;
            output::print(global.output, &v, |v| {
                eprintln!(
                    "token {} for subscription {} (shown once; store it as a CI secret):",
                    s(&v["id"]),
                    s(&v["subscription"])
                );
                println!("{}", s(&v["token"]));
            });
        }
        TokenCmd::RotateAdmin(args) => super::admin::rotate_admin(global, &args).await?,
    }
    Ok(())
}
