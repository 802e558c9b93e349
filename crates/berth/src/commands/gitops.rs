//! `berth gitops configure|show|status|diff|reconcile`: the shared configuration repository
//! through `/api/v1/gitops`. The push password comes from stdin, never from an argument.

use std::io::Read;

use anyhow::{Context, bail};
use berth_api::{GitOpsDiff, GitOpsInput, GitOpsView, ImportReport, Reconciled, SyncList};
use reqwest::Method;
use secrecy::SecretString;

use crate::cli::{GitOpsCmd, Global};
use crate::client::Api;
use crate::output;

fn password_from_stdin() -> anyhow::Result<SecretString> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the password from stdin")?;
    let line = text.lines().next().unwrap_or("").trim().to_owned();
    if line.is_empty() {
        bail!("--password-stdin: no password on stdin");
    }
    Ok(SecretString::from(line))
}

fn show(v: &GitOpsView) {
    println!("repo:          {}", v.repo);
    println!("username:      {}", v.username.as_deref().unwrap_or("-"));
    println!(
        "password:      {}",
        if v.password_set { "set" } else { "not set" }
    );
    println!("namespace:     {}", v.namespace);
    match &v.account_cert_fingerprint {
        Some(fp) => println!(
            "account cert:  {fp} (expires {})",
            v.account_cert_expires_at.as_deref().unwrap_or("-")
        ),
        None => println!("account cert:  none"),
    }
}

fn import_report(v: &ImportReport) {
    for name in &v.imported {
        println!("imported {name}");
    }
    for n in &v.needs_secrets {
        let name = n.integration.as_deref().unwrap_or("-");
        println!("needs secrets: {name} ({}): {}", n.file, n.reason);
    }
    for n in &v.skipped {
        println!("skipped {}: {}", n.file, n.reason);
    }
    if v.imported.is_empty() && v.needs_secrets.is_empty() && v.skipped.is_empty() {
        println!("nothing to import: Berth already has every integration the repository holds");
    }
}

pub async fn gitops(global: &Global, cmd: GitOpsCmd) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    match cmd {
        GitOpsCmd::Configure {
            repo,
            username,
            password_stdin,
            account_cert,
            namespace,
        } => {
            let account_cert = match account_cert {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                ),
                None => None,
            };
            let body = GitOpsInput {
                repo,
                username,
                password: if password_stdin {
                    Some(password_from_stdin()?)
                } else {
                    None
                },
                account_cert,
                namespace,
            };
            let v: GitOpsView = api.call(Method::PUT, "/api/v1/gitops", Some(&body)).await?;
            output::print(global.output, &v, |v| {
                println!(
                    "GitOps repository set: {} (namespace {})",
                    v.repo, v.namespace
                )
            });
        }
        GitOpsCmd::Show => {
            let v: GitOpsView = api.get("/api/v1/gitops").await?;
            output::print(global.output, &v, show);
        }
        GitOpsCmd::Status => {
            let v: SyncList = api.get("/api/v1/gitops/status").await?;
            output::print(global.output, &v, |v| {
                let rows: Vec<Vec<String>> = v
                    .items
                    .iter()
                    .map(|i| {
                        vec![
                            i.integration.clone(),
                            i.status.clone(),
                            i.reason.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                output::table(&["INTEGRATION", "STATUS", "REASON"], &rows)
            });
        }
        GitOpsCmd::Diff => {
            let v: GitOpsDiff = api.get("/api/v1/gitops/diff").await?;
            output::print(global.output, &v, |v| print!("{}", v.diff));
        }
        GitOpsCmd::Import => {
            let v: ImportReport = api
                .call(Method::POST, "/api/v1/gitops/import", None::<&()>)
                .await?;
            output::print(global.output, &v, import_report);
        }
        GitOpsCmd::Reconcile => {
            let v: Reconciled = api
                .call(Method::POST, "/api/v1/gitops/reconcile", None::<&()>)
                .await?;
            output::print(global.output, &v, |v| {
                println!(
                    "queued {} integrations for one commit; `berth gitops status` shows when it lands",
                    v.queued
                )
            });
        }
    }
    Ok(())
}
