//! Image resources from a CI job's side, end to end against `berth up`: a job records the tag
//! it pushed with `berth ci post-resource-state` (no registry login: Berth reads the digest),
//! the same push posted twice is one version, a moved tag is the next, and `berth ci
//! resource-env` hands later jobs the newest version or a pinned one.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use berth_testkit::TempDir;
use common::*;

fn job(u: &Up, token: &str, cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("BERTH_URL", &u.url)
        .env("BERTH_TOKEN", token)
        .env("BERTH_PROJECT", "acme/web")
        .env("DOCKER_CONFIG", cwd.join("no-docker-config"))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Builds `ecr://local/team/app:latest` from scratch with one file holding `content`; its digest.
fn build_app(u: &Up, admin: &Path, work: &Path, content: &str) -> String {
    let file = work.join("content.txt");
    std::fs::write(&file, content).unwrap();
    let add = format!("{}:/content.txt", file.display());
    let args = [
        "build",
        "--create-repo",
        "--from",
        "scratch",
        "--add",
        &add,
        "ecr://local/team/app:latest",
    ];
    ok(&berth(u, admin, &args, "")).trim().to_owned()
}

/// `NAME='value'` lines as pairs.
fn env_of(out: &str) -> std::collections::BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect()
}

#[test]
fn a_job_posts_versions_and_later_jobs_see_them() {
    let u = up();
    let work = TempDir::new("image-versions");
    let admin = work.0.join("admin-docker");
    let token = acme_with_local(&u, &admin);
    let host = u.ecr.trim_start_matches("http://").to_owned();
    let build = |content: &str| build_app(&u, &admin, &work.0, content);
    std::fs::write(
        work.0.join("shippable.yml"),
        format!(
            "resources:\n  - name: appImage\n    type: image\n    integration: local\n    versionTemplate:\n      sourceName: {host}/team/app\n      versionName: latest\n"
        ),
    )
    .unwrap();

    let first = build("one\n");
    let post = |extra: &[&str]| {
        let mut args = vec!["ci", "post-resource-state", "appImage"];
        args.extend_from_slice(extra);
        job(&u, &token, &work.0, &args)
    };
    let said = ok(&post(&["commit=abc123"]));
    assert!(
        said.contains("new version 1") && said.contains(&first),
        "{said}"
    );
    let said = ok(&post(&[]));
    assert!(
        said.contains("already at version 1"),
        "the same push is one version: {said}"
    );
    let second = build("two\n");
    assert_ne!(first, second);
    let said = ok(&post(&["commit=def456"]));
    assert!(
        said.contains("new version 2") && said.contains(&second),
        "{said}"
    );

    let env = env_of(&ok(&job(
        &u,
        &token,
        &work.0,
        &["ci", "resource-env", "appImage"],
    )));
    assert_eq!(env["APPIMAGE_VERSIONNUMBER"], "2");
    assert_eq!(env["APPIMAGE_VERSIONDIGEST"], second);
    assert_eq!(env["APPIMAGE_SOURCENAME"], format!("{host}/team/app"));
    let pinned = ok(&job(
        &u,
        &token,
        &work.0,
        &["ci", "resource-env", "--version-number", "1", "appImage"],
    ));
    assert_eq!(env_of(&pinned)["APPIMAGE_VERSIONDIGEST"], first);
    let missing = job(
        &u,
        &token,
        &work.0,
        &["ci", "resource-env", "--version-number", "9", "appImage"],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("version_number"));

    let listed = ok(&job(
        &u,
        &token,
        &work.0,
        &["resource", "versions", "acme/web", "appImage", "-o", "json"],
    ));
    let page: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(page["items"][0]["properties"]["commit"], "def456");
    assert_eq!(page["items"][1]["digest"], first.as_str());
    assert_eq!(page["items"][1]["source"], "post");

    // A tag that is not there is refused with the reason, and nothing is recorded.
    let absent = post(&["versionName=v9"]);
    assert!(!absent.status.success());
    let err = String::from_utf8_lossy(&absent.stderr);
    assert!(err.contains("v9") && err.contains("not found"), "{err}");
    let shown = ok(&job(
        &u,
        &token,
        &work.0,
        &["resource", "show", "acme/web", "appImage"],
    ));
    assert!(shown.contains("latest       version 2"), "{shown}");
}

/// The variables each CI system sets, as fixtures: `berth ci report-image` reads them and the
/// report links the commit, the pull request and the issues.
const CI_FIXTURES: &[(&str, &[(&str, &str)])] = &[
    (
        "github-actions",
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SHA", "c0ffee01"),
            ("GITHUB_REF", "refs/pull/42/merge"),
            ("GITHUB_HEAD_REF", "DEV-7-login"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/web"),
            ("GITHUB_RUN_ID", "9"),
        ],
    ),
    (
        "gitlab-ci",
        &[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", "c0ffee02"),
            ("CI_COMMIT_REF_NAME", "main"),
            ("CI_PROJECT_URL", "https://gitlab.example.com/acme/web"),
            ("CI_COMMIT_MESSAGE", "Fix DEV-7"),
            ("CI_MERGE_REQUEST_IID", "5"),
            ("CI_PIPELINE_URL", "https://gitlab.example.com/p/1"),
        ],
    ),
    (
        "jenkins",
        &[
            ("JENKINS_URL", "https://jenkins.example.com/"),
            ("GIT_COMMIT", "c0ffee03"),
            ("BRANCH_NAME", "PR-12"),
            ("CHANGE_ID", "12"),
            ("CHANGE_TITLE", "DEV-7: login"),
            ("CHANGE_URL", "https://github.com/acme/web/pull/12"),
            ("BUILD_URL", "https://jenkins.example.com/job/3/"),
        ],
    ),
    (
        "circleci",
        &[
            ("CIRCLECI", "true"),
            ("CIRCLE_SHA1", "c0ffee04"),
            ("CIRCLE_BRANCH", "dev-7-login"),
            ("CIRCLE_PULL_REQUEST", "https://github.com/acme/web/pull/77"),
            ("CIRCLE_BUILD_URL", "https://circleci.com/b/5"),
        ],
    ),
    (
        "shippable",
        &[
            ("SHIPPABLE", "true"),
            ("COMMIT", "c0ffee05"),
            ("BRANCH", "master"),
            ("COMMIT_MESSAGE", "DEV-7 done"),
            ("PULL_REQUEST", "8"),
            ("PULL_REQUEST_REPO_FULL_NAME", "acme/web"),
            ("BUILD_URL", "https://app.shippable.com/r/1"),
        ],
    ),
];

/// Every variable any fixture sets, removed first so the machine's own CI cannot leak in.
fn ci_variables() -> Vec<&'static str> {
    CI_FIXTURES
        .iter()
        .flat_map(|(_, vars)| vars.iter().map(|(k, _)| *k))
        .collect()
}

#[test]
fn report_image_reads_each_ci_systems_variables() {
    let u = up();
    let work = TempDir::new("report-image");
    let admin = work.0.join("admin-docker");
    let token = acme_with_local(&u, &admin);
    let host = u.ecr.trim_start_matches("http://").to_owned();
    let digest = build_app(&u, &admin, &work.0, "x\n");
    let image = format!("{host}/team/app:latest");
    for (ci, vars) in CI_FIXTURES {
        let mut cmd = Command::new(BIN);
        for k in ci_variables() {
            cmd.env_remove(k);
        }
        let o = cmd
            .args([
                "ci",
                "report-image",
                &image,
                "--issue-prefixes",
                "DEV",
                "-o",
                "json",
            ])
            .envs(vars.iter().copied())
            .env("BERTH_URL", &u.url)
            .env("BERTH_TOKEN", &token)
            .env("BERTH_PROJECT", "acme/web")
            .current_dir(&work.0)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
        assert_eq!(v["digest"], digest.as_str(), "{ci}");
        assert_eq!(v["git"]["ci"], *ci);
        let commit = vars
            .iter()
            .find(|(k, _)| k.contains("SHA") || *k == "GIT_COMMIT" || *k == "COMMIT")
            .unwrap()
            .1;
        assert_eq!(v["git"]["commit"], commit, "{ci}");
        assert_eq!(v["issues"][0]["key"], "DEV-7", "{ci}: {v}");
        assert!(
            v["git"]["pull_request"].is_string(),
            "{ci} names its pull request: {v}"
        );
    }
    let shown = ok(&job(
        &u,
        &token,
        &work.0,
        &["images", "show", &digest, "-o", "json"],
    ));
    let d: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(d["commits"].as_array().unwrap().len(), 5, "{d}");
    assert!(
        d["pull_requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "https://gitlab.example.com/acme/web/-/merge_requests/5"),
        "{d}"
    );
    let listed = ok(&job(
        &u,
        &token,
        &work.0,
        &["images", "list", "--issue", "DEV-7"],
    ));
    assert!(listed.contains(&digest), "{listed}");
}
