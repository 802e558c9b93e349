//! What a CI job gets for its `integration` and `cliConfig` resources, end to end against the
//! local ECR, checked with the AWS CLI as a job would use it: short-lived STS sessions, never the
//! long-lived keys (unless an admin turned on the audited switch) and never the server's own
//! identity.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use berth_testkit::{TempDir, peer};
use common::*;

fn job(u: &Up, token: &str, cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("BERTH_URL", &u.url)
        .env("BERTH_TOKEN", token)
        .env_remove("AWS_ACCESS_KEY_ID")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `NAME='value'` lines (as `berth ci resource-env` prints them) as pairs.
fn env_lines(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect()
}

fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn jobs_get_sessions_not_keys_and_never_the_servers_identity() {
    let Some(aws) = peer("aws") else { return };
    let u = up();
    let docker = u.data.0.join("docker");
    let work = TempDir::new("jobcreds");
    for args in [
        vec!["subscription", "add", "acme"],
        vec!["project", "add", "acme/web", "--subscription", "acme"],
    ] {
        ok(&berth(&u, &docker, &args, ""));
    }
    let (key_id, secret) = demo_keys(&u);
    add_integration(
        &u,
        &docker,
        "keys",
        &u.ecr,
        (&key_id, &secret),
        Some("acme"),
    );
    ok(&berth(
        &u,
        &docker,
        &[
            "integration",
            "add",
            "server-identity",
            "--endpoint",
            &u.ecr,
            "--auth",
            "ambient",
            "--subscription",
            "acme",
        ],
        "",
    ));
    let sub = ok(&berth(
        &u,
        &docker,
        &["token", "create", "--subscription", "acme"],
        "",
    ))
    .trim()
    .to_owned();
    std::fs::write(
        work.0.join("shippable.yml"),
        "resources:\n  - name: aws-keys\n    type: integration\n    integration: keys\n  - name: mine\n    type: integration\n    integration: server-identity\n",
    )
    .unwrap();
    let resource_env = |resource: &str| {
        job(
            &u,
            &sub,
            &work.0,
            &[
                "ci",
                "resource-env",
                "--project",
                "acme/web",
                "--with-secrets",
                resource,
            ],
        )
    };

    // Access keys: a GetSessionToken session of them, with its token and expiry.
    let out = ok(&resource_env("aws-keys"));
    assert!(
        !out.contains(&secret) && !out.contains(&key_id),
        "long-lived keys leaked: {out}"
    );
    let env = env_lines(&out);
    let session_id = get(&env, "AWSKEYS_INTEGRATION_AWS_ACCESS_KEY_ID").expect("key id");
    assert!(session_id.starts_with("ASIA"), "{out}");
    let token = get(&env, "AWSKEYS_INTEGRATION_AWS_SESSION_TOKEN").expect("session token");
    let expires = get(&env, "AWSKEYS_INTEGRATION_AWS_SESSION_EXPIRATION").expect("expiry");
    let expires =
        time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left.whole_minutes() > 50 && left.whole_minutes() <= 60,
        "{left}"
    );
    // The AWS CLI uses the session as a job would.
    let who = Command::new(&aws)
        .args([
            "sts",
            "get-caller-identity",
            "--endpoint-url",
            &u.ecr,
            "--region",
            "us-east-1",
        ])
        .env("AWS_ACCESS_KEY_ID", session_id)
        .env(
            "AWS_SECRET_ACCESS_KEY",
            get(&env, "AWSKEYS_INTEGRATION_AWS_SECRET_ACCESS_KEY").unwrap(),
        )
        .env("AWS_SESSION_TOKEN", token)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    let who = ok(&who);
    assert!(
        who.contains(":user/"),
        "the session acts as the keys' user: {who}"
    );

    // Ambient: the server's own identity is refused, with what to do instead.
    let o = resource_env("mine");
    let err = fails(&o);
    assert!(
        err.contains("ambient") && err.contains("never handed to jobs"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("ACCESS_KEY_ID"));

    // The switch: off by default, shown, refused for other modes, and when on the keys go out.
    let shown = ok(&berth(&u, &docker, &["integration", "show", "keys"], ""));
    assert!(shown.contains("short-lived STS sessions"), "{shown}");
    let refused = berth(
        &u,
        &docker,
        &[
            "integration",
            "edit",
            "server-identity",
            "--export-long-lived-keys",
            "true",
        ],
        "",
    );
    let err = fails(&refused);
    assert!(err.contains("export_long_lived_keys"), "{err}");
    ok(&berth(
        &u,
        &docker,
        &[
            "integration",
            "edit",
            "keys",
            "--export-long-lived-keys",
            "true",
        ],
        "",
    ));
    let json = ok(&berth(
        &u,
        &docker,
        &["integration", "show", "keys", "-o", "json"],
        "",
    ));
    assert!(
        json.contains("\"export_long_lived_keys\": true")
            || json.contains("\"export_long_lived_keys\":true"),
        "{json}"
    );
    let env = env_lines(&ok(&resource_env("aws-keys")));
    assert_eq!(
        get(&env, "AWSKEYS_INTEGRATION_AWS_ACCESS_KEY_ID"),
        Some(key_id.as_str())
    );
    assert_eq!(get(&env, "AWSKEYS_INTEGRATION_AWS_SESSION_TOKEN"), None);
}
