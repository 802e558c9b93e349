//! `berth login`, `berth logout` and `docker-credential-berth` with skopeo as the independent
//! client: a push to the local ECR with nothing but what Berth wrote (a Docker config, or a
//! credHelpers entry), and the Docker config handled with care.

mod common;

use berth_testkit::{TempDir, peer};
use common::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

#[test]
fn login_logout_and_the_credential_helper_with_skopeo() {
    let (Some(aws), Some(_)) = (peer("aws"), peer("skopeo")) else {
        return;
    };
    let u = up();
    let work = TempDir::new("work");
    let docker = work.0.join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let (key_id, secret) = demo_keys(&u);
    let host = u.ecr.trim_start_matches("http://").to_owned();

    // The repository, made with the AWS CLI against the local ECR.
    create_repository(&aws, &u, "team/app");
    ok(&berth(
        &u,
        &docker,
        &[
            "integration",
            "add",
            "local",
            "--endpoint",
            &u.ecr,
            "--access-key-id",
            &key_id,
            "--secret-access-key-stdin",
        ],
        &format!("{secret}\n"),
    ));

    // Login keeps what was there, writes mode 0600, and skopeo pushes with that file alone.
    std::fs::write(
        docker.join("config.json"),
        r#"{"auths": {"other.example": {"auth": "eDp5"}}, "psFormat": "table {{.ID}}"}"#,
    )
    .unwrap();
    ok(&berth(&u, &docker, &["login", "local"], ""));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(docker.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["psFormat"], "table {{.ID}}");
    assert_eq!(config["auths"]["other.example"]["auth"], "eDp5");
    assert!(config["auths"][&host]["auth"].is_string(), "{config}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(docker.join("config.json"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    let src = image(&work.0.join("img"));
    let authfile = docker.join("config.json");
    let push = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--authfile"])
        .arg(&authfile)
        .args([&src, &format!("docker://{host}/team/app:v1")])
        .output()
        .unwrap();
    ok(&push);

    // Logout removes exactly what login added.
    ok(&berth(&u, &docker, &["logout", "local"], ""));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(docker.join("config.json")).unwrap()).unwrap();
    assert!(config["auths"].get(&host).is_none(), "{config}");
    assert_eq!(config["auths"]["other.example"]["auth"], "eDp5");
    assert_eq!(config["psFormat"], "table {{.ID}}");

    // --print and --format k8s-secret.
    let password = ok(&berth(&u, &docker, &["login", "local", "--print"], ""));
    assert!(password.trim().len() > 20 && !password.contains(' '));
    let secret_yaml = ok(&berth(
        &u,
        &docker,
        &[
            "login",
            "local",
            "--format",
            "k8s-secret",
            "--namespace",
            "ci",
        ],
        "",
    ));
    assert!(
        secret_yaml.contains("type: kubernetes.io/dockerconfigjson")
            && secret_yaml.contains("namespace: ci"),
        "{secret_yaml}"
    );

    // A malformed Docker config is refused and left as it was.
    std::fs::write(docker.join("config.json"), "{\"auths\": {").unwrap();
    let o = berth(&u, &docker, &["login", "local"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not valid JSON (line"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(docker.join("config.json")).unwrap(),
        "{\"auths\": {"
    );
    std::fs::remove_file(docker.join("config.json")).unwrap();

    // The credential helper: skopeo finds docker-credential-berth on PATH through credHelpers.
    let bin = work.0.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("docker-credential-berth")).unwrap();
    let authjson = work.0.join("auth.json");
    std::fs::write(
        &authjson,
        format!(r#"{{"credHelpers": {{"{host}": "berth"}}}}"#),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let helper_env = |c: &mut Command| {
        c.env("PATH", &path)
            .env("BERTH_URL", &u.url)
            .env("BERTH_TOKEN", &u.token);
    };
    let mut c = Command::new("skopeo");
    c.args(["copy", "--dest-tls-verify=false", "--authfile"])
        .arg(&authjson)
        .args([&src, &format!("docker://{host}/team/app:v2")]);
    helper_env(&mut c);
    ok(&c.output().unwrap());
    let mut c = Command::new("skopeo");
    c.args(["inspect", "--tls-verify=false", "--authfile"])
        .arg(&authjson)
        .arg(format!("docker://{host}/team/app:v2"));
    helper_env(&mut c);
    ok(&c.output().unwrap());

    // The protocol directly: get for an unknown host, store and list.
    let helper = |action: &str, input: &str| {
        let mut c = Command::new(bin.join("docker-credential-berth"));
        c.arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        helper_env(&mut c);
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let o = helper("get", &host);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["ServerURL"].as_str(), v["Username"].as_str()),
        (Some(host.as_str()), Some("AWS"))
    );
    let o = helper("get", "registry.unknown.example");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "credentials not found in native keychain"
    );
    let o = helper("store", r#"{"ServerURL":"x","Username":"u","Secret":"s"}"#);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not supported"));
    let o = helper("list", "");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[&host], "AWS");
}

/// A DELETE over a plain socket (this test runs without an async runtime); returns the status.
fn http_delete(url: &str, token: &str, path: &str) -> u16 {
    use std::io::{Read, Write};
    let host = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(s, "DELETE {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn berth_as(u: &Up, token: &str, docker: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env("BERTH_URL", &u.url)
        .env("BERTH_TOKEN", token)
        .env("DOCKER_CONFIG", docker)
        .env_remove("GITHUB_REF_NAME")
        .env_remove("GITHUB_REPOSITORY")
        .output()
        .unwrap()
}

/// Scenario 1 of the CI seed: a job logs in with its subscription token through its
/// shippable.yml, and pulls a private image; on a branch the entry excludes, it cannot.
#[test]
fn ci_login_pulls_a_private_image_only_on_matching_branches() {
    let (Some(aws), Some(_)) = (peer("aws"), peer("skopeo")) else {
        return;
    };
    let u = up();
    let work = TempDir::new("ci");
    let (key_id, secret) = demo_keys(&u);
    let host = u.ecr.trim_start_matches("http://").to_owned();
    create_repository(&aws, &u, "team/app");
    let admin_docker = work.0.join("admin-docker");
    ok(&berth(
        &u,
        &admin_docker,
        &["subscription", "add", "acme"],
        "",
    ));
    ok(&berth(
        &u,
        &admin_docker,
        &["project", "add", "acme/web", "--subscription", "acme"],
        "",
    ));
    ok(&berth(
        &u,
        &admin_docker,
        &[
            "integration",
            "add",
            "local",
            "--endpoint",
            &u.ecr,
            "--access-key-id",
            &key_id,
            "--secret-access-key-stdin",
            "--subscription",
            "acme",
        ],
        &format!("{secret}\n"),
    ));
    ok(&berth(
        &u,
        &admin_docker,
        &["integration", "add", "elsewhere", "--auth", "ambient"],
        "",
    ));
    let token = ok(&berth(
        &u,
        &admin_docker,
        &["token", "create", "--subscription", "acme"],
        "",
    ))
    .trim()
    .to_owned();

    // The private image, pushed by an admin.
    ok(&berth(&u, &admin_docker, &["login", "local"], ""));
    let src = image(&work.0.join("img"));
    ok(&Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--authfile"])
        .arg(admin_docker.join("config.json"))
        .args([&src, &format!("docker://{host}/team/app:v1")])
        .output()
        .unwrap());

    std::fs::write(work.0.join("shippable.yml"), "language: none\nintegrations:\n  hub:\n    - integrationName: local\n      type: ecr\n      branches:\n        only: [main, \"release/*\"]\n").unwrap();
    let job_docker = work.0.join("job-docker");
    let out = ok(&berth_as(
        &u,
        &token,
        &job_docker,
        &work.0,
        &["ci", "login", "--project", "acme/web", "--branch", "main"],
    ));
    assert!(out.contains("logged in") && out.contains(&host), "{out}");
    let env = std::fs::read_to_string(work.0.join("berth-registries.env")).unwrap();
    assert_eq!(env.trim(), format!("BERTH_REGISTRY_LOCAL={host}"));
    let pull = |docker: &Path, dest: &str| {
        Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false", "--authfile"])
            .arg(docker.join("config.json"))
            .args([
                &format!("docker://{host}/team/app:v1"),
                &format!("oci:{}:latest", work.0.join(dest).display()),
            ])
            .output()
            .unwrap()
    };
    ok(&pull(&job_docker, "pulled"));

    // On a branch the entry does not cover: nothing is logged in and the pull is refused.
    let other_docker = work.0.join("other-docker");
    std::fs::create_dir_all(&other_docker).unwrap();
    std::fs::write(other_docker.join("config.json"), "{}").unwrap();
    let out = ok(&berth_as(
        &u,
        &token,
        &other_docker,
        &work.0,
        &["ci", "login", "--project", "acme/web", "--branch", "dev"],
    ));
    assert!(out.contains("skipped"), "{out}");
    let refused = pull(&other_docker, "refused");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401")
            || String::from_utf8_lossy(&refused.stderr).contains("unauthorized"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // A name the subscription was not given: Shippable's message, exit 1.
    std::fs::write(
        work.0.join("shippable.yml"),
        "integrations:\n  hub:\n    - integrationName: elsewhere\n      type: ecr\n",
    )
    .unwrap();
    let o = berth_as(
        &u,
        &token,
        &other_docker,
        &work.0,
        &["ci", "login", "--project", "acme/web", "--branch", "main"],
    );
    assert_eq!(o.status.code(), Some(1));
    // Shippable's exact words, after the file and line of the entry.
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("shippable.yml:3: Integration name specified in yml does not match integrations present in Subscription settings: elsewhere"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    ok(&berth_as(
        &u,
        &token,
        &job_docker,
        &work.0,
        &["ci", "logout"],
    ));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(job_docker.join("config.json")).unwrap()).unwrap();
    assert!(
        config.get("auths").is_none_or(|a| a.get(&host).is_none()),
        "{config}"
    );

    // The project now depends on the integration: delete lists it and fails, until the project goes.
    let o = berth(&u, &admin_docker, &["integration", "delete", "local"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("project acme/web"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        http_delete(&u.url, &u.token, "/api/v1/projects/acme/web"),
        204
    );
    let out = ok(&berth(
        &u,
        &admin_docker,
        &["integration", "delete", "local"],
        "",
    ));
    assert!(out.contains("No dependency"), "{out}");
}
