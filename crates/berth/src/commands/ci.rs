//! `berth ci login|logout`: the CI side of `shippable.yml` hub entries. The server decides which
//! entries apply (so every job gets the same answer); this logs in to each and tells later steps
//! where the registries are.

use anyhow::{Context, bail};
use base64::Engine;
use berth_api::{
    AppliedEntry, Resolution, ResolveRequest, ResourceEnv, ResourcesRequest, SkippedEntry,
};
use reqwest::Method;
use serde_json::json;

use crate::cli::{BootImageArgs, CheckDockerfileArgs, CiLoginArgs, CiTarget, Global};
use crate::client::{Api, ApiFailure};
use crate::commands::transfer::Opener;
use crate::docker_config::DockerConfig;
use crate::output;

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// Branch or tag from flags, else from the environment common CI systems set.
fn reference(args: &CiTarget) -> anyhow::Result<(Option<String>, Option<String>)> {
    if args.branch.is_some() || args.tag.is_some() {
        return Ok((args.branch.clone(), args.tag.clone()));
    }
    if let Some(tag) = env(&["CI_COMMIT_TAG", "GIT_TAG_NAME"]).or_else(|| {
        (std::env::var("GITHUB_REF_TYPE").as_deref() == Ok("tag"))
            .then(|| env(&["GITHUB_REF_NAME"]))
            .flatten()
    }) {
        return Ok((None, Some(tag)));
    }
    match env(&[
        "GITHUB_REF_NAME",
        "CI_COMMIT_BRANCH",
        "BRANCH",
        "GIT_BRANCH",
    ]) {
        Some(b) => Ok((Some(b.trim_start_matches("origin/").to_owned()), None)),
        None => bail!(
            "no branch: pass --branch or --tag (or run where GITHUB_REF_NAME, CI_COMMIT_BRANCH or BRANCH is set)"
        ),
    }
}

fn env_name(integration: &str) -> String {
    integration
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Asks the server which hub entries apply to this build (and records the dependencies).
async fn resolve(api: &Api, target: &CiTarget) -> anyhow::Result<Resolution> {
    let yml = std::fs::read_to_string(&target.file)
        .with_context(|| format!("cannot read {}", target.file.display()))?;
    let project = target
        .project
        .clone()
        .or_else(|| env(&["GITHUB_REPOSITORY", "CI_PROJECT_PATH", "REPO_FULL_NAME"]))
        .context("no project: pass --project ORG/REPO (or set BERTH_PROJECT)")?;
    let (branch, tag) = reference(target)?;
    let body = ResolveRequest {
        project,
        branch,
        tag,
        shippable_yml: yml,
    };
    api.call(Method::POST, "/api/v1/ci/resolve", Some(&body))
        .await
        .map_err(|e| match e.downcast_ref::<ApiFailure>() {
            // As compilers do: FILE:LINE: message (the file stands for the field name).
            Some(f) if f.line.is_some() => anyhow::anyhow!(
                "{}:{}: {} (HTTP {}, {})",
                target.file.display(),
                f.line.unwrap_or_default(),
                f.message.trim_start_matches("shippable_yml: "),
                f.status.as_u16(),
                f.code
            ),
            _ => e,
        })
}

fn applied_row(e: &AppliedEntry, registry: Option<&str>, done: &str) -> Vec<String> {
    vec![
        e.integration.clone(),
        e.region.clone(),
        output::or_dash(registry),
        if e.agent_only {
            // Shippable's agent_only: meant for the build agent, not the job's containers.
            format!("{done} (agent_only)")
        } else {
            done.to_owned()
        },
    ]
}

fn skipped_row(s: &SkippedEntry) -> Vec<String> {
    vec![
        s.integration.clone(),
        "-".into(),
        "-".into(),
        format!("skipped: {}", s.reason),
    ]
}

fn print_notes(notes: &[String]) {
    for note in notes {
        eprintln!("note: {note}");
    }
}

pub async fn show_resolution(global: &Global, target: &CiTarget) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    let resolved = resolve(&api, target).await?;
    output::print(global.output, &resolved, |v| {
        let mut rows: Vec<Vec<String>> = v
            .integrations
            .iter()
            .map(|e| applied_row(e, e.registry.as_deref(), "applies"))
            .collect();
        rows.extend(v.skipped.iter().map(skipped_row));
        output::table(&["INTEGRATION", "REGION", "REGISTRY", "RESULT"], &rows);
        if let Some(boot) = &v.boot_image {
            println!(
                "pre_ci_boot image: {} ({})",
                boot.image,
                boot.integration
                    .as_deref()
                    .map(|i| format!("through integration {i}"))
                    .unwrap_or_else(|| "no applied integration serves its registry".into())
            );
        }
        print_notes(&v.notes);
    });
    Ok(())
}

pub async fn login(global: &Global, args: &CiLoginArgs) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    let resolved = resolve(&api, &args.target).await?;
    let mut config = DockerConfig::load()?;
    let mut rows = Vec::new();
    let mut env_lines = Vec::new();
    // All credentials at once: a file with many hub entries costs one round trip, not many.
    let fetched = futures_util::future::join_all(resolved.integrations.iter().map(|entry| {
        let api = &api;
        async move {
            super::login::credentials(api, &entry.integration, Some(&entry.region))
                .await
                .with_context(|| format!("credentials for {}", entry.integration))
        }
    }))
    .await;
    for (entry, c) in resolved.integrations.iter().zip(fetched) {
        let c = c?;
        let name = &entry.integration;
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", c.username, c.password));
        config.add(&c.registry, name, (!args.helper).then_some(auth.as_str()));
        env_lines.push(format!("BERTH_REGISTRY_{}={}", env_name(name), c.registry));
        rows.push(applied_row(entry, Some(&c.registry), "logged in"));
    }
    rows.extend(resolved.skipped.iter().map(skipped_row));
    if !env_lines.is_empty() {
        config.save()?;
    }
    std::fs::write(
        &args.env_file,
        env_lines
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .with_context(|| format!("cannot write {}", args.env_file.display()))?;
    let summary = json!({"project": resolved.project, "ref": resolved.reference, "logged_in": env_lines, "skipped": resolved.skipped, "notes": resolved.notes});
    output::print(global.output, &summary, |_| {
        output::table(&["INTEGRATION", "REGION", "REGISTRY", "RESULT"], &rows);
        print_notes(&resolved.notes);
    });
    Ok(())
}

pub fn logout() -> anyhow::Result<()> {
    let mut config = DockerConfig::load()?;
    let mut removed = Vec::new();
    for integration in config.logged_in() {
        removed.extend(config.remove(&integration));
    }
    if removed.is_empty() {
        eprintln!("nothing to remove");
        return Ok(());
    }
    config.save()?;
    for h in removed {
        eprintln!("logged out of {h}");
    }
    Ok(())
}

/// Single-quoted for POSIX shells.
fn shell_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\\''"))
}

pub async fn resource_env(
    global: &Global,
    args: &crate::cli::ResourceEnvArgs,
) -> anyhow::Result<()> {
    let file = &args.file;
    let yml =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let api = Api::new(global)?;
    let body = ResourcesRequest {
        project: args.project.clone(),
        shippable_yml: yml,
        resources: args.resources.clone(),
        with_secrets: args.with_secrets,
        version_number: args.version_number,
        version_name: args.version_name.clone(),
    };
    let v: ResourceEnv = api
        .call(Method::POST, "/api/v1/ci/resources", Some(&body))
        .await?;
    output::print(global.output, &v, |v| {
        for (k, val) in &v.env {
            println!("{k}={}", shell_quote(val));
        }
    });
    Ok(())
}

/// Whether an image's manifest can be read with the credentials a pull would use.
async fn pullable(opener: &Opener<'_>, image: &str) -> Result<String, String> {
    let side = opener
        .open(image, true)
        .await
        .map_err(|e| format!("{e:#}"))?;
    side.source()
        .root()
        .await
        .map(|m| m.digest)
        .map_err(|e| e.to_string())
}

pub async fn check_dockerfile(global: &Global, args: &CheckDockerfileArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.dockerfile)
        .with_context(|| format!("cannot read {}", args.dockerfile.display()))?;
    let mut build_args = std::collections::HashMap::new();
    for a in &args.build_arg {
        let (k, v) = a
            .split_once('=')
            .with_context(|| format!("--build-arg '{a}' must be KEY=VALUE"))?;
        build_args.insert(k.to_owned(), v.to_owned());
    }
    let images = berth_core::dockerfile::base_images(&text, &build_args);
    if images.is_empty() {
        eprintln!(
            "{}: no base image to check (only scratch or earlier stages)",
            args.dockerfile.display()
        );
        return Ok(());
    }
    // What docker, buildah and kaniko will use: the Docker config, not the Berth API.
    let opener = Opener {
        global,
        options: &args.registry,
        docker_config_only: true,
    };
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for b in &images {
        let result = pullable(&opener, &b.image).await;
        let where_ = format!("{}:{}", args.dockerfile.display(), b.line);
        match result {
            Ok(digest) => rows.push(vec![where_, b.image.clone(), format!("ok {digest}")]),
            Err(why) => {
                rows.push(vec![where_, b.image.clone(), "NOT PULLABLE".into()]);
                failed.push(format!("{} (line {}): {why}", b.image, b.line));
            }
        }
    }
    output::table(&["FROM", "IMAGE", "RESULT"], &rows);
    if !failed.is_empty() {
        bail!(
            "{} base image(s) cannot be pulled with the current login (run `berth ci login` first?):\n  {}",
            failed.len(),
            failed.join("\n  ")
        );
    }
    Ok(())
}

pub async fn boot_image(global: &Global, args: &BootImageArgs) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    let resolved = resolve(&api, &args.target).await?;
    let boot = resolved.boot_image.with_context(|| {
        format!(
            "{} has no build.pre_ci_boot image",
            args.target.file.display()
        )
    })?;
    let image = boot.image.as_str();
    let location = match boot.integration.as_deref() {
        Some(integration) => {
            let r = berth_core::ImageRef::parse(image)?;
            format!("ecr://{integration}/{}:{}", r.repository, r.reference())
        }
        None => image.to_owned(),
    };
    let opener = Opener {
        global,
        options: &args.registry,
        docker_config_only: false,
    };
    let digest = pullable(&opener, &location)
        .await
        .map_err(|why| anyhow::anyhow!("the pre_ci_boot image {image} is not pullable: {why}"))?;
    eprintln!(
        "pre_ci_boot image {image} is pullable ({digest}){}",
        boot.integration
            .as_deref()
            .map(|i| format!(" through integration {i}"))
            .unwrap_or_default()
    );
    if boot.pull {
        let tag = berth_core::ImageRef::parse(image)?
            .tag
            .unwrap_or_else(|| "latest".into());
        let transfer = crate::cli::TransferArgs {
            source: location,
            destination: format!("oci:{}:{tag}", args.output_dir.display()),
            platform: None,
            registry: args.registry.clone(),
        };
        crate::commands::transfer::copy(global, &transfer).await?;
    } else {
        println!("{digest}");
    }
    Ok(())
}
