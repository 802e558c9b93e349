//! `berth ci report-image` and `berth images list|show`: image enrichment from the CI side and
//! what Berth knows about a digest.

use berth_api::{GitFacts, ImageDetail, ImageList, ImageReportInput, ImageReportView};
use reqwest::Method;

use crate::cli::{Global, ImagesCmd, ReportImageArgs};
use crate::client::{Api, encode};
use crate::output;

/// The CI system's facts, with each flag given taking the place of what the variables say.
fn git_facts(args: &ReportImageArgs) -> GitFacts {
    let from_env =
        berth_core::provenance::from_ci_env(|k| std::env::var(k).ok()).unwrap_or_default();
    let pick = |flag: &Option<String>, env: Option<String>| flag.clone().or(env);
    GitFacts {
        ci: from_env.ci.clone(),
        commit: pick(&args.commit, from_env.commit),
        branch: pick(&args.branch, from_env.branch),
        repository_url: pick(&args.repository_url, from_env.repository_url),
        author: pick(&args.author, from_env.author),
        message: pick(&args.message, from_env.message),
        pull_request: pick(&args.pull_request, from_env.pull_request),
        pull_request_url: pick(&args.pull_request_url, from_env.pull_request_url),
        pull_request_title: pick(&args.pull_request_title, from_env.pull_request_title),
        build_url: pick(&args.build_url, from_env.build_url),
    }
}

pub async fn report(global: &Global, args: &ReportImageArgs) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    let body = ImageReportInput {
        image: args.image.clone(),
        project: args.project.clone(),
        integration: args.integration.clone(),
        git: git_facts(args),
        issue_prefixes: args.issue_prefixes.clone(),
        issue_pattern: args.issue_pattern.clone(),
        issue_tracker_url: args.issue_tracker_url.clone(),
    };
    let v: ImageReportView = api
        .call(Method::POST, "/api/v1/images/reports", Some(&body))
        .await?;
    output::print(global.output, &v, |v| {
        let issues: Vec<&str> = v.issues.iter().map(|i| i.key.as_str()).collect();
        println!(
            "reported {}@{} (commit {}, issues {})",
            v.repository,
            v.digest,
            output::or_dash(v.git.commit.as_deref()),
            if issues.is_empty() {
                "-".to_owned()
            } else {
                issues.join(", ")
            }
        )
    });
    Ok(())
}

pub async fn images(global: &Global, cmd: ImagesCmd) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    match cmd {
        ImagesCmd::List {
            repository,
            tag,
            issue,
            commit,
        } => {
            let query: Vec<String> = [
                ("repository", repository),
                ("tag", tag),
                ("issue", issue),
                ("commit", commit),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={}", encode(&v))))
            .collect();
            let v: ImageList = api
                .get(&format!("/api/v1/images?{}", query.join("&")))
                .await?;
            output::print(global.output, &v, |v| {
                let rows: Vec<Vec<String>> = v
                    .items
                    .iter()
                    .map(|i| {
                        vec![
                            i.digest.clone(),
                            i.repository.clone(),
                            i.tags.join(","),
                            i.commits.join(","),
                            i.issues.join(","),
                        ]
                    })
                    .collect();
                output::table(
                    &["DIGEST", "REPOSITORY", "TAGS", "COMMITS", "ISSUES"],
                    &rows,
                )
            });
        }
        ImagesCmd::Show { digest } => {
            let v: ImageDetail = api.get(&format!("/api/v1/images/{digest}")).await?;
            output::print(global.output, &v, show);
        }
    }
    Ok(())
}

fn show(v: &ImageDetail) {
    println!("{}", v.digest);
    println!("  repositories   {}", v.repositories.join(", "));
    println!("  tags           {}", v.tags.join(", "));
    println!("  commits        {}", v.commits.join(", "));
    println!("  pull requests  {}", v.pull_requests.join(", "));
    let issues: Vec<String> = v
        .issues
        .iter()
        .map(|i| match &i.url {
            Some(url) => format!("{} ({url})", i.key),
            None => i.key.clone(),
        })
        .collect();
    println!("  issues         {}", issues.join(", "));
    for version in &v.versions {
        println!(
            "  version        {} {} #{} ({})",
            version.project, version.resource, version.version_number, version.version_name
        );
    }
    println!("  reports        {}", v.reports.len());
}
