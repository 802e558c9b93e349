//! No log level prints a secret: `berth up` at every `BERTH_LOG` level, from `error` to `trace`,
//! through the paths that handle secrets (an integration with keys, registry credentials, a
//! job's STS session, tokens), and its whole log scanned for each secret value.

mod common;

use std::process::{Command, Stdio};

use berth_testkit::TempDir;
use common::*;

fn call(u: &Up, token: &str, path: &str, body: &str) -> String {
    let o = Command::new("curl")
        .args(["-s", "-X", "POST", "-H", "content-type: application/json"])
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"))
        .args(["--data", body])
        .arg(format!("{}{path}", u.url))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn field<'a>(json: &'a str, key: &str) -> &'a str {
    let start = json
        .find(&format!("\"{key}\":\""))
        .unwrap_or_else(|| panic!("{key} in {json}"))
        + key.len()
        + 4;
    &json[start..start + json[start..].find('"').unwrap()]
}

#[test]
fn no_log_level_prints_a_key_a_token_or_a_password() {
    for level in ["error", "warn", "info", "debug", "trace"] {
        let work = TempDir::new(&format!("logs-{level}"));
        let log = work.0.join("berth.log");
        let u = up_logging(level, Some(&log));
        let docker = work.0.join("docker");
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
            "local",
            &u.ecr,
            (&key_id, &secret),
            Some("acme"),
        );
        let sub = ok(&berth(
            &u,
            &docker,
            &["token", "create", "--subscription", "acme"],
            "",
        ))
        .trim()
        .to_owned();
        let creds = call(&u, &sub, "/api/v1/integrations/local/credentials", "{}");
        let password = field(&creds, "password").to_owned();
        let yml = "resources:\\n  - name: k\\n    type: integration\\n    integration: local\\n";
        let env = call(
            &u,
            &sub,
            "/api/v1/ci/resources",
            &format!(
                r#"{{"project": "acme/web", "shippable_yml": "{yml}", "with_secrets": true}}"#
            ),
        );
        let session_key = field(&env, "K_INTEGRATION_AWS_ACCESS_KEY_ID").to_owned();
        let session_secret = field(&env, "K_INTEGRATION_AWS_SECRET_ACCESS_KEY").to_owned();
        let session_token = field(&env, "K_INTEGRATION_AWS_SESSION_TOKEN").to_owned();
        drop(u);
        let text = std::fs::read_to_string(&log).unwrap();
        if level == "trace" {
            assert!(text.lines().count() > 10, "trace logs something: {text}");
        }
        for (what, value) in [
            ("access key id", key_id.as_str()),
            ("secret access key", secret.as_str()),
            ("registry password", password.as_str()),
            ("session key id", session_key.as_str()),
            ("session secret", session_secret.as_str()),
            ("session token", session_token.as_str()),
            ("subscription token", sub.as_str()),
        ] {
            assert!(
                !text.contains(value),
                "BERTH_LOG={level} printed the {what}: {}",
                text.lines().find(|l| l.contains(value)).unwrap_or("")
            );
        }
        println!(
            "log_secrets: BERTH_LOG={level}: {} lines scanned, no secret",
            text.lines().count()
        );
    }
}
