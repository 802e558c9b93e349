//! The CI scenarios of the first seed, end to end against the local ECR: a job logs in with its
//! subscription token, then builds on a private base image (daemonless with `berth build`, and
//! with buildah reading the Docker config Berth wrote), pushes, checks its Dockerfile's bases,
//! and fetches its custom CI image (`pre_ci_boot`), which becomes a dependency.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use berth_testkit::{TempDir, peer};
use common::*;

fn job(u: &Up, token: &str, docker: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("BERTH_URL", &u.url)
        .env("BERTH_TOKEN", token)
        .env("DOCKER_CONFIG", docker)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn build_on_a_private_base_push_check_the_dockerfile_and_fetch_the_boot_image() {
    let (Some(_), Some(_)) = (peer("buildah"), peer("skopeo")) else {
        return;
    };
    let u = up();
    let work = TempDir::new("scenarios");
    let admin = work.0.join("admin-docker");
    let token = acme_with_local(&u, &admin);
    let host = u.ecr.trim_start_matches("http://").to_owned();

    // The private base image and the custom CI image, pushed by an admin.
    std::fs::write(work.0.join("hello.txt"), "hello\n").unwrap();
    for repo in ["team/base:1", "team/ci:2", "team/app:seed"] {
        ok(&berth(
            &u,
            &admin,
            &[
                "build",
                "--create-repo",
                "--from",
                "scratch",
                "--add",
                &format!("{}:/etc/hello.txt", work.0.join("hello.txt").display()),
                &format!("ecr://local/{repo}"),
            ],
            "",
        ));
    }
    std::fs::write(
        work.0.join("shippable.yml"),
        format!(
            "language: none\nbuild:\n  pre_ci_boot:\n    image_name: {host}/team/ci\n    image_tag: \"2\"\n    pull: true\nintegrations:\n  hub:\n    - integrationName: local\n      type: ecr\n      branches:\n        only: [master]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        work.0.join("Dockerfile"),
        "ARG REG\nFROM ${REG}/team/base:1 AS base\nFROM base\nCOPY hello.txt /app/hello.txt\n",
    )
    .unwrap();
    let docker = work.0.join("job-docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(docker.join("config.json"), "{}").unwrap();
    let reg_arg = format!("REG={host}");

    // Before login the Dockerfile's private base is named as not pullable.
    let o = job(
        &u,
        &token,
        &docker,
        &work.0,
        &["ci", "check-dockerfile", "--build-arg", &reg_arg],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{host}/team/base:1 (line 2)")),
        "{err}"
    );

    ok(&job(
        &u,
        &token,
        &docker,
        &work.0,
        &["ci", "login", "--project", "acme/web", "--branch", "master"],
    ));
    let out = ok(&job(
        &u,
        &token,
        &docker,
        &work.0,
        &["ci", "check-dockerfile", "--build-arg", &reg_arg],
    ));
    assert!(
        out.contains(&format!("{host}/team/base:1")) && out.contains("ok sha256:"),
        "{out}"
    );

    // Scenario 2, daemonless: build on the private base and push.
    let built = ok(&job(
        &u,
        &token,
        &docker,
        &work.0,
        &[
            "build",
            "--from",
            &format!("{host}/team/base:1"),
            "--add",
            "hello.txt:/app/hello.txt",
            &format!("{host}/team/app:built"),
        ],
    ));
    assert!(built.trim().starts_with("sha256:"), "{built}");

    // Scenario 2 with buildah, which reads the Docker config `berth ci login` wrote.
    let storage = work.0.join("buildah");
    let buildah = |args: &[&str]| {
        Command::new("buildah")
            .arg("--root")
            .arg(storage.join("root"))
            .arg("--runroot")
            .arg(storage.join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("REGISTRY_AUTH_FILE", docker.join("config.json"))
            .current_dir(&work.0)
            .output()
            .unwrap()
    };
    let tag = format!("{host}/team/app:buildah");
    ok(&buildah(&[
        "build",
        "--isolation",
        "chroot",
        "--tls-verify=false",
        "--build-arg",
        &reg_arg,
        "-t",
        &tag,
        ".",
    ]));
    ok(&buildah(&["push", "--tls-verify=false", &tag]));

    // Scenario 3: push a built image to the registry the env file names.
    let env = std::fs::read_to_string(work.0.join("berth-registries.env")).unwrap();
    let registry = env
        .trim()
        .strip_prefix("BERTH_REGISTRY_LOCAL=")
        .unwrap()
        .to_owned();
    let layout = work.0.join("layout");
    ok(&job(
        &u,
        &token,
        &docker,
        &work.0,
        &[
            "build",
            "--from",
            "scratch",
            "--add",
            "hello.txt:/x",
            &format!("oci:{}:1", layout.display()),
        ],
    ));
    ok(&job(
        &u,
        &token,
        &docker,
        &work.0,
        &[
            "push",
            &format!("oci:{}:1", layout.display()),
            &format!("{registry}/team/app:pushed"),
        ],
    ));
    let tags = ok(&job(
        &u,
        &token,
        &docker,
        &work.0,
        &["tags", &format!("{registry}/team/app")],
    ));
    for t in ["built", "buildah", "pushed"] {
        assert!(tags.lines().any(|l| l == t), "{t} missing from {tags}");
    }

    // pre_ci_boot: pullable through the integration, pulled to a layout, recorded as a dependency.
    ok(&job(
        &u,
        &token,
        &docker,
        &work.0,
        &[
            "ci",
            "boot-image",
            "--project",
            "acme/web",
            "--branch",
            "master",
            "--output-dir",
            "boot",
        ],
    ));
    assert!(work.0.join("boot/index.json").exists());
    let deps = ok(&berth(
        &u,
        &admin,
        &["integration", "dependencies", "local", "-o", "json"],
        "",
    ));
    assert!(
        deps.contains("subscription_image")
            && deps.contains(&format!("acme/web pre_ci_boot {host}/team/ci:2")),
        "{deps}"
    );
    // Deleting the project releases it with the project's other dependencies.
    ok(&berth(&u, &admin, &["project", "delete", "acme/web"], ""));
    let deps = ok(&berth(
        &u,
        &admin,
        &["integration", "dependencies", "local", "-o", "json"],
        "",
    ));
    assert!(!deps.contains("subscription_image"), "{deps}");
}

fn random_key_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    format!(
        "AKIA{}",
        b.iter()
            .map(|x| alphabet[(*x as usize) % 32] as char)
            .collect::<String>()
    )
}

/// The AWS CLI against one local ECR with explicit keys.
fn aws(aws: &Path, endpoint: &str, keys: (&str, &str), region: &str, args: &[&str]) -> Output {
    Command::new(aws)
        .args(["--endpoint-url", endpoint, "--region", region, "ecr"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", keys.0)
        .env("AWS_SECRET_ACCESS_KEY", keys.1)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap()
}

fn tags_in(aws_bin: &Path, endpoint: &str, keys: (&str, &str), region: &str) -> Vec<String> {
    let o = aws(
        aws_bin,
        endpoint,
        keys,
        region,
        &["list-images", "--repository-name", "team/app"],
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    let mut tags: Vec<String> = v["imageIds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["imageTag"].as_str().map(str::to_owned))
        .collect();
    tags.sort();
    tags
}

/// Two hub entries for two accounts (two local ECRs, accounts 0… and 222222222222): a master build
/// pushes to both and each image lands in its own account; a dev build's region override lands in
/// us-west-2; a v1.2 tag matches `v1.*`; agent_only is reported.
#[test]
fn two_accounts_per_branch_a_region_override_and_release_tags() {
    let (Some(aws_bin), Some(_)) = (peer("aws"), peer("skopeo")) else {
        return;
    };
    let u = up();
    let work = TempDir::new("accounts");
    let admin = work.0.join("admin-docker");
    std::fs::create_dir_all(&admin).unwrap();
    let (key1, secret1) = demo_keys(&u);

    // The second account: its own local ECR with its own IAM file.
    let second = work.0.join("second");
    std::fs::create_dir_all(second.join("local-ecr")).unwrap();
    let key2 = random_key_id();
    let secret2 = format!("{}/second", random_key_id().to_lowercase());
    std::fs::write(
        second.join("local-ecr/iam.toml"),
        format!(
            "account_id = \"222222222222\"\n[[users]]\nname = \"ci\"\naccess_key_id = \"{key2}\"\nsecret_access_key = \"{secret2}\"\npolicy = {{ actions = [\"ecr:*\"] }}\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let mut ecr2 = Command::new(BIN)
        .args([
            "local-ecr",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&second)
        .env("BERTH_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ecr2_url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let host1 = u.ecr.trim_start_matches("http://").to_owned();
    let host2 = format!("127.0.0.1:{port}");

    ok(&berth(&u, &admin, &["subscription", "add", "acme"], ""));
    ok(&berth(
        &u,
        &admin,
        &["project", "add", "acme/web", "--subscription", "acme"],
        "",
    ));
    for (name, endpoint, key, secret) in [
        ("one", u.ecr.as_str(), key1.as_str(), secret1.as_str()),
        ("two", ecr2_url.as_str(), key2.as_str(), secret2.as_str()),
    ] {
        add_integration(&u, &admin, name, endpoint, (key, secret), Some("acme"));
    }
    for (endpoint, keys, region) in [
        (
            u.ecr.as_str(),
            (key1.as_str(), secret1.as_str()),
            "us-east-1",
        ),
        (
            u.ecr.as_str(),
            (key1.as_str(), secret1.as_str()),
            "us-west-2",
        ),
        (
            ecr2_url.as_str(),
            (key2.as_str(), secret2.as_str()),
            "us-east-1",
        ),
    ] {
        ok(&aws(
            &aws_bin,
            endpoint,
            keys,
            region,
            &["create-repository", "--repository-name", "team/app"],
        ));
    }
    let token = ok(&berth(
        &u,
        &admin,
        &["token", "create", "--subscription", "acme"],
        "",
    ))
    .trim()
    .to_owned();
    std::fs::write(
        work.0.join("shippable.yml"),
        "language: none\nintegrations:\n  hub:\n    - integrationName: one\n      type: ecr\n      branches:\n        only: [master]\n    - integrationName: two\n      type: ecr\n      agent_only: true\n      branches:\n        only: [master, \"v1.*\"]\n    - integrationName: one\n      type: ecr\n      region: us-west-2\n      branches:\n        only: [dev]\n",
    )
    .unwrap();
    std::fs::write(work.0.join("hello.txt"), "hello\n").unwrap();
    let image = format!("oci:{}:1", work.0.join("image").display());
    let job_docker = work.0.join("job-docker");
    std::fs::create_dir_all(&job_docker).unwrap();
    ok(&job(
        &u,
        &token,
        &job_docker,
        &work.0,
        &[
            "build",
            "--from",
            "scratch",
            "--add",
            "hello.txt:/hello.txt",
            &image,
        ],
    ));

    // master: both accounts; each push lands in its own account only.
    let out = ok(&job(
        &u,
        &token,
        &job_docker,
        &work.0,
        &["ci", "login", "--project", "acme/web", "--branch", "master"],
    ));
    assert!(out.contains("logged in (agent_only)"), "{out}");
    let env = std::fs::read_to_string(work.0.join("berth-registries.env")).unwrap();
    assert!(
        env.contains(&format!("BERTH_REGISTRY_ONE={host1}")),
        "{env}"
    );
    assert!(
        env.contains(&format!("BERTH_REGISTRY_TWO={host2}")),
        "{env}"
    );
    // Pushed with only what the login wrote (no Berth token): what a docker or skopeo step sees.
    let push_as_docker = |dest: &str| {
        let o = Command::new(BIN)
            .args(["push", "--progress", "none", &image, dest])
            .env("DOCKER_CONFIG", &job_docker)
            .env_remove("BERTH_TOKEN")
            .output()
            .unwrap();
        ok(&o);
    };
    push_as_docker(&format!("{host1}/team/app:master-one"));
    push_as_docker(&format!("{host2}/team/app:master-two"));
    let k1 = (key1.as_str(), secret1.as_str());
    let k2 = (key2.as_str(), secret2.as_str());
    assert_eq!(tags_in(&aws_bin, &u.ecr, k1, "us-east-1"), ["master-one"]);
    assert_eq!(
        tags_in(&aws_bin, &ecr2_url, k2, "us-east-1"),
        ["master-two"]
    );

    // dev: only the region override applies; the push lands in us-west-2.
    ok(&job(&u, &token, &job_docker, &work.0, &["ci", "logout"]));
    let out = ok(&job(
        &u,
        &token,
        &job_docker,
        &work.0,
        &["ci", "login", "--project", "acme/web", "--branch", "dev"],
    ));
    assert!(out.contains("us-west-2"), "{out}");
    push_as_docker(&format!("{host1}/team/app:dev"));
    assert_eq!(tags_in(&aws_bin, &u.ecr, k1, "us-west-2"), ["dev"]);
    assert_eq!(tags_in(&aws_bin, &u.ecr, k1, "us-east-1"), ["master-one"]);

    // `berth ci resolve` shows the same decision without logging in.
    let shown = ok(&job(
        &u,
        &token,
        &job_docker,
        &work.0,
        &["ci", "resolve", "--project", "acme/web", "--branch", "dev"],
    ));
    let one_line = shown
        .lines()
        .find(|l| l.contains("us-west-2"))
        .unwrap_or("");
    assert!(
        one_line.starts_with("one") && one_line.contains("applies"),
        "{shown}"
    );
    assert_eq!(shown.matches("skipped:").count(), 2, "{shown}");

    // A release tag v1.2 matches v1.*: account two only.
    ok(&job(&u, &token, &job_docker, &work.0, &["ci", "logout"]));
    let out = ok(&job(
        &u,
        &token,
        &job_docker,
        &work.0,
        &["ci", "login", "--project", "acme/web", "--tag", "v1.2"],
    ));
    let env = std::fs::read_to_string(work.0.join("berth-registries.env")).unwrap();
    assert_eq!(env.trim(), format!("BERTH_REGISTRY_TWO={host2}"), "{out}");
    assert!(out.contains("skipped"), "{out}");
    let _ = ecr2.kill();
    let _ = ecr2.wait();
}
