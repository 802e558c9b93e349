//! `berth resource …` and `berth ci post-resource-state`: a project's image resources and the
//! versions Berth keeps of them.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use berth_api::{
    EventSecret, ImageResourceInput, ImageResourceList, ImageResourceView, ImageVersionPage,
    PostedState, RecordedVersion, TriggerCreated, TriggerInput, TriggerList,
};
use berth_core::shippable;
use reqwest::Method;
use serde_json::json;

use crate::cli::{Global, PostResourceStateArgs, ResourceCmd};
use crate::client::{Api, encode};
use crate::output;

fn path(project: &str, name: &str) -> String {
    format!("/api/v1/projects/{project}/resources/{}", encode(name))
}

/// `versionName=…` and the other `key=value` arguments.
fn properties(args: &[String]) -> anyhow::Result<(Option<String>, BTreeMap<String, String>)> {
    let mut version_name = None;
    let mut rest = BTreeMap::new();
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            bail!("'{arg}' is not KEY=VALUE (for example versionName=v1.4)");
        };
        if key == "versionName" {
            version_name = Some(value.to_owned());
        } else {
            rest.insert(key.to_owned(), value.to_owned());
        }
    }
    Ok((version_name, rest))
}

/// The image resource as `shippable.yml` defines it, when the file is there and does.
fn from_file(args: &PostResourceStateArgs) -> anyhow::Result<Option<ImageResourceInput>> {
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", args.file.display())),
    };
    let yml =
        shippable::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    Ok(yml
        .resources
        .into_iter()
        .find(|r| r.name == args.resource)
        .and_then(|r| match r.kind {
            shippable::ResourceKind::Image {
                source_name,
                version_name,
            } => Some(ImageResourceInput {
                integration: r.integration,
                source_name,
                version_name: Some(version_name),
                poll_seconds: None,
            }),
            _ => None,
        }))
}

pub async fn post_state(global: &Global, args: &PostResourceStateArgs) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    let (version_name, properties) = properties(&args.properties)?;
    let resource = path(&args.project, &args.resource);
    if let Some(definition) = from_file(args)? {
        let _: ImageResourceView = api.call(Method::PUT, &resource, Some(&definition)).await?;
    }
    let body = PostedState {
        version_name,
        properties,
    };
    let v: RecordedVersion = api
        .call(Method::POST, &format!("{resource}/versions"), Some(&body))
        .await?;
    output::print(global.output, &v, |v| {
        let what = if v.new {
            "new version"
        } else {
            "already at version"
        };
        println!(
            "{} {what} {}: {} at {}",
            args.resource, v.version.version_number, v.version.version_name, v.version.digest
        )
    });
    Ok(())
}

pub async fn resource(global: &Global, cmd: ResourceCmd) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    match cmd {
        ResourceCmd::Add {
            project,
            name,
            integration,
            source_name,
            version_name,
            poll_seconds,
        } => {
            let body = ImageResourceInput {
                integration,
                source_name,
                version_name,
                poll_seconds,
            };
            let v: ImageResourceView = api
                .call(Method::PUT, &path(&project, &name), Some(&body))
                .await?;
            output::print(global.output, &v, show);
        }
        ResourceCmd::List { project } => {
            let v: ImageResourceList = api
                .get(&format!("/api/v1/projects/{project}/resources"))
                .await?;
            output::print(global.output, &v, print_resources);
        }
        ResourceCmd::Show { project, name } => {
            let v: ImageResourceView = api.get(&path(&project, &name)).await?;
            output::print(global.output, &v, show);
        }
        ResourceCmd::Versions {
            project,
            name,
            limit,
        } => {
            let v: ImageVersionPage = api
                .get(&format!("{}/versions?limit={limit}", path(&project, &name)))
                .await?;
            output::print(global.output, &v, print_versions);
        }
        ResourceCmd::EventSecret { project, name } => {
            let v: EventSecret = api
                .call(
                    Method::POST,
                    &format!("{}/event-secret", path(&project, &name)),
                    None::<&()>,
                )
                .await?;
            output::print(global.output, &v, |v| {
                eprintln!(
                    "send push events to {} with this X-Berth-Event-Secret (shown once):",
                    v.events_path
                );
                println!("{}", v.secret);
            });
        }
        ResourceCmd::AddTrigger {
            project,
            name,
            url,
            secret_stdin,
        } => add_trigger(global, &api, &path(&project, &name), url, secret_stdin).await?,
        ResourceCmd::Triggers { project, name } => {
            let v: TriggerList = api
                .get(&format!("{}/triggers", path(&project, &name)))
                .await?;
            output::print(global.output, &v, print_triggers);
        }
        ResourceCmd::RemoveTrigger { project, name, id } => {
            api.delete(&format!(
                "{}/triggers/{}",
                path(&project, &name),
                encode(&id)
            ))
            .await?;
            output::print(global.output, &json!({"deleted": id}), |_| {
                println!("removed trigger {id}")
            });
        }
        ResourceCmd::Delete { project, name } => {
            api.delete(&path(&project, &name)).await?;
            output::print(global.output, &json!({"deleted": name}), |_| {
                println!("deleted image resource {name} of {project}")
            });
        }
    }
    Ok(())
}

async fn add_trigger(
    global: &Global,
    api: &Api,
    resource: &str,
    url: String,
    secret_stdin: bool,
) -> anyhow::Result<()> {
    let secret = match secret_stdin {
        true => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("cannot read the trigger secret from stdin")?;
            Some(text.lines().next().unwrap_or("").to_owned())
        }
        false => None,
    };
    let body = TriggerInput { url, secret };
    let v: TriggerCreated = api
        .call(Method::POST, &format!("{resource}/triggers"), Some(&body))
        .await?;
    output::print(global.output, &v, |v| {
        println!(
            "trigger {} announces new versions to {}",
            v.trigger.id, v.trigger.url
        );
        if let Some(secret) = &v.secret {
            eprintln!("its HMAC-SHA256 key (shown once):");
            println!("{secret}");
        }
    });
    Ok(())
}

fn print_resources(v: &ImageResourceList) {
    let rows: Vec<Vec<String>> = v
        .items
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                format!("{}:{}", r.source_name, r.version_name),
                r.integration.clone(),
                poll_text(r),
                r.latest_version.to_string(),
            ]
        })
        .collect();
    output::table(&["NAME", "FOLLOWS", "INTEGRATION", "POLL", "LATEST"], &rows)
}

fn print_versions(v: &ImageVersionPage) {
    let rows: Vec<Vec<String>> = v
        .items
        .iter()
        .map(|x| {
            vec![
                x.version_number.to_string(),
                x.version_name.clone(),
                x.digest.clone(),
                x.source.clone(),
                x.pushed_at.clone(),
            ]
        })
        .collect();
    output::table(&["VERSION", "TAG", "DIGEST", "SOURCE", "PUSHED AT"], &rows)
}

fn print_triggers(v: &TriggerList) {
    for t in &v.items {
        println!(
            "{}  {}  (added by {} at {})",
            t.id, t.url, t.created_by, t.created_at
        );
        for d in &t.deliveries {
            let detail = d.last_error.as_deref().unwrap_or("");
            println!(
                "  version {:<5} {:<10} attempts {:<3} {}",
                d.version_number, d.state, d.attempts, detail
            );
        }
    }
}

fn poll_text(r: &ImageResourceView) -> String {
    match (r.poll_seconds, &r.last_error) {
        (0, _) => "off".into(),
        (s, None) => format!("every {s} s"),
        (s, Some(e)) => format!("every {s} s, failing ({} in a row: {e})", r.poll_failures),
    }
}

fn show(r: &ImageResourceView) {
    println!("{} ({})", r.name, r.project);
    println!("  follows      {}:{}", r.source_name, r.version_name);
    println!("  integration  {}", r.integration);
    println!("  polling      {}", poll_text(r));
    println!(
        "  events       {}",
        if r.event_secret_set {
            "accepted"
        } else {
            "no secret issued"
        }
    );
    println!("  latest       version {}", r.latest_version);
}
