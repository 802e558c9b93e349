//! `berth runtime pull-secret` against `berth up`: a dockerconfigjson Secret that validates
//! against the Kubernetes schemas and whose credentials the local ECR accepts, annotated with
//! their expiry; refused for an integration not shared with the runtime; and the
//! external-secrets form, which carries no credential at all.

mod common;

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use berth_testkit::{TempDir, peer};
use common::{berth, demo_keys, ok, up};

#[test]
fn pull_secrets_for_a_runtime() {
    let Some(validate) = peer("kubernetes-validate") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "kubernetes-validate is missing in CI"
        );
        eprintln!(
            "SKIPPED: kubernetes-validate is not installed (scripts/install-peers installs it)"
        );
        return;
    };
    let u = up();
    let work = TempDir::new("pull-secret");
    let docker = work.0.join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let (key_id, secret) = demo_keys(&u);
    ok(&berth(&u, &docker, &["runtime", "add", "edge"], ""));
    let add = [
        "integration",
        "add",
        "local",
        "--endpoint",
        &u.ecr,
        "--access-key-id",
        &key_id,
        "--secret-access-key-stdin",
        "--runtime",
        "edge",
    ];
    ok(&berth(&u, &docker, &add, &format!("{secret}\n")));
    ok(&berth(
        &u,
        &docker,
        &["integration", "add", "elsewhere", "--auth", "ambient"],
        "",
    ));

    let yaml = ok(&berth(
        &u,
        &docker,
        &[
            "runtime",
            "pull-secret",
            "edge",
            "local",
            "--namespace",
            "ci",
        ],
        "",
    ));
    assert!(
        yaml.contains("type: kubernetes.io/dockerconfigjson") && yaml.contains("namespace: \"ci\""),
        "{yaml}"
    );
    assert!(yaml.contains("berth.io/expires-at:"), "{yaml}");
    let file = work.0.join("secret.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let checked = Command::new(&validate)
        .arg("--strict")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // The credentials in it open the registry.
    let encoded = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix(".dockerconfigjson: "))
        .expect("the dockerconfigjson")
        .trim_matches('"');
    let config: serde_json::Value =
        serde_json::from_slice(&B64.decode(encoded.trim()).unwrap()).unwrap();
    let host = u.ecr.trim_start_matches("http://");
    let entry = &config["auths"][host];
    let user_pass = format!(
        "{}:{}",
        entry["username"].as_str().unwrap(),
        entry["password"].as_str().unwrap()
    );
    let code = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-u",
            &user_pass,
        ])
        .arg(format!("{}/v2/", u.ecr))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&code.stdout), "200");

    let o = berth(
        &u,
        &docker,
        &["runtime", "pull-secret", "edge", "elsewhere"],
        "",
    );
    assert_eq!(o.status.code(), Some(1));
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(said.contains("not shared with runtime edge"), "{said}");

    let generated = ok(&berth(
        &u,
        &docker,
        &[
            "runtime",
            "pull-secret",
            "edge",
            "local",
            "--external-secrets",
        ],
        "",
    ));
    assert!(
        generated.contains("kind: ECRAuthorizationToken")
            && generated.contains("kind: ExternalSecret"),
        "{generated}"
    );
    assert!(generated.contains("refreshInterval: 6h"), "{generated}");
    assert!(
        !generated.contains(&secret) && !generated.contains(entry["password"].as_str().unwrap()),
        "no credential in it"
    );
}
