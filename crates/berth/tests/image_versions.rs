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
    std::fs::create_dir_all(&admin).unwrap();
    let (key_id, secret) = demo_keys(&u);
    let host = u.ecr.trim_start_matches("http://").to_owned();
    for args in [
        vec!["subscription", "add", "acme"],
        vec!["project", "add", "acme/web", "--subscription", "acme"],
    ] {
        ok(&berth(&u, &admin, &args, ""));
    }
    add_integration(
        &u,
        &admin,
        "local",
        &u.ecr,
        (&key_id, &secret),
        Some("acme"),
    );
    let token = ok(&berth(
        &u,
        &admin,
        &["token", "create", "--subscription", "acme"],
        "",
    ))
    .trim()
    .to_owned();
    let build = |content: &str| {
        let file = work.0.join("content.txt");
        std::fs::write(&file, content).unwrap();
        let add = format!("{}:/content.txt", file.display());
        ok(&berth(
            &u,
            &admin,
            &[
                "build",
                "--create-repo",
                "--from",
                "scratch",
                "--add",
                &add,
                "ecr://local/team/app:latest",
            ],
            "",
        ))
        .trim()
        .to_owned()
    };
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
