//! The CI scenarios of the first seed, end to end against the local ECR: a job logs in with its
//! subscription token, then builds on a private base image (daemonless with `berth build`, and
//! with buildah reading the Docker config Berth wrote), pushes, checks its Dockerfile's bases,
//! and fetches its custom CI image (`pre_ci_boot`), which becomes a dependency.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

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
    let work = Dir::new("scenarios");
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
    ok(&berth(
        &u,
        &admin,
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
    let token = ok(&berth(
        &u,
        &admin,
        &["token", "create", "--subscription", "acme"],
        "",
    ))
    .trim()
    .to_owned();

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
