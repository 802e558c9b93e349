//! `berth push|pull|copy|build|inspect|tags` against independent peers: Debian's docker-registry
//! (plain and htpasswd), skopeo and umoci, and the local ECR through an integration with the AWS
//! CLI checking what landed.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use berth_testkit::{TempDir, peer};
use common::*;
use serde_json::Value;

/// The CLI with no Berth server and its own Docker config.
fn cli(docker: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .args(["--progress", "plain"])
        .env("DOCKER_CONFIG", docker)
        .env_remove("BERTH_TOKEN")
        .env_remove("BERTH_SRC_CREDS")
        .env_remove("BERTH_DEST_CREDS")
        .output()
        .unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_str(&ok(o)).unwrap()
}

/// Files to add to images: a text file and an executable in a subdirectory.
fn files(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("files");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::write(root.join("hello.txt"), "hello from berth\n").unwrap();
    std::fs::write(root.join("bin/run.sh"), "#!/bin/sh\necho run\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            root.join("bin/run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    root
}

#[test]
fn docker_registry_skopeo_and_umoci_agree_with_berth() {
    let (Some(_), Some(_), Some(_)) = (peer("docker-registry"), peer("skopeo"), peer("umoci"))
    else {
        return;
    };
    let work = TempDir::new("xfer");
    let docker = work.0.join("docker");
    let plain = registry(false);
    let src = image(&work.0.join("random"));
    let random = work.0.join("random");

    // Berth pushes; skopeo pulls it back byte-identical.
    let pushed = json(&cli(
        &docker,
        &[
            "push",
            &src,
            &format!("{}/test/random:v1", plain.host),
            "-o",
            "json",
        ],
    ));
    assert_eq!(pushed["blobs_copied"], 3, "{pushed}");
    let back = work.0.join("skopeo-back");
    ok(&run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}/test/random:v1", plain.host),
            &format!("oci:{}:v1", back.display()),
        ],
    ));
    assert_eq!(blobs(&random), blobs(&back));

    // A second push moves nothing; a copy within the registry mounts.
    let again = json(&cli(
        &docker,
        &[
            "push",
            &src,
            &format!("{}/test/random:v1", plain.host),
            "-o",
            "json",
        ],
    ));
    assert_eq!(
        (
            again["blobs_skipped"].as_u64(),
            again["bytes_moved"].as_u64()
        ),
        (Some(3), Some(0))
    );
    let copied = json(&cli(
        &docker,
        &[
            "copy",
            &format!("{}/test/random:v1", plain.host),
            &format!("{}/other/random:v2", plain.host),
            "-o",
            "json",
        ],
    ));
    assert_eq!(copied["blobs_mounted"], 3, "{copied}");
    assert_eq!(copied["digest"], pushed["digest"]);

    // A real filesystem image: built from scratch by Berth, pushed by skopeo, pulled by Berth,
    // unpacked by umoci with the files where they were put.
    let content = files(&work.0);
    let built = work.0.join("built");
    ok(&cli(
        &docker,
        &[
            "build",
            "--from",
            "scratch",
            "--add",
            &format!("{}:/app", content.display()),
            "--env",
            "GREETING=hi",
            &format!("oci:{}:1", built.display()),
        ],
    ));
    ok(&run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:1", built.display()),
            &format!("docker://{}/test/fs:1", plain.host),
        ],
    ));
    let pulled = work.0.join("pulled");
    let digest = ok(&cli(
        &docker,
        &[
            "pull",
            &format!("{}/test/fs:1", plain.host),
            &format!("oci:{}:1", pulled.display()),
        ],
    ));
    assert!(digest.trim().starts_with("sha256:"), "{digest}");
    let bundle = work.0.join("bundle");
    umoci_unpack(&pulled, "1", &bundle);
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/app/hello.txt")).unwrap(),
        "hello from berth\n"
    );
    assert!(bundle.join("rootfs/app/bin/run.sh").exists());

    // A Docker archive Berth writes is one skopeo reads; Berth reads it back too.
    let archive = work.0.join("image.tar");
    ok(&cli(
        &docker,
        &[
            "copy",
            &format!("{}/test/fs:1", plain.host),
            &format!("docker-archive:{}:test/fs:1", archive.display()),
        ],
    ));
    ok(&run(
        "skopeo",
        &[
            "copy",
            &format!("docker-archive:{}", archive.display()),
            &format!("oci:{}:a", work.0.join("from-archive").display()),
        ],
    ));
    ok(&cli(
        &docker,
        &[
            "push",
            &format!("docker-archive:{}", archive.display()),
            &format!("{}/test/from-archive:1", plain.host),
        ],
    ));

    // htpasswd Basic auth: refused without credentials, accepted with them.
    let locked = registry(true);
    let dest = format!("{}/test/random:v1", locked.host);
    let err = fails(&cli(&docker, &["push", &src, &dest]));
    assert!(err.contains("requires credentials"), "{err}");
    ok(&cli(
        &docker,
        &["push", &src, &dest, "--dest-creds", "testuser:testpassword"],
    ));
    // ...and from the Docker config, as `docker login` would have left it.
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"dGVzdHVzZXI6dGVzdHBhc3N3b3Jk"}}}}}}"#,
            locked.host
        ),
    )
    .unwrap();
    let tags = ok(&cli(
        &docker,
        &["tags", &format!("{}/test/random", locked.host)],
    ));
    assert_eq!(tags.trim(), "v1");
}

#[test]
fn bad_input_is_refused_with_the_reason() {
    let work = TempDir::new("bad");
    let docker = work.0.join("docker");
    let err = fails(&cli(&docker, &["copy", "s3://bucket/x", "oci:/tmp/x"]));
    assert!(err.contains("unknown transport 's3://'"), "{err}");
    let err = fails(&cli(&docker, &["copy", "host.io/Bad:1", "oci:/tmp/x"]));
    assert!(err.contains("repository 'Bad'"), "{err}");
    let err = fails(&cli(
        &docker,
        &["copy", &format!("oci:{}", work.0.display()), "oci:/tmp/x"],
    ));
    assert!(err.contains("has no index.json"), "{err}");

    // A layout with a missing blob and one with a corrupted blob.
    let src = image(&work.0.join("img"));
    let err = fails(&cli(
        &docker,
        &["copy", &src.replace(":latest", ":nope"), "oci:/tmp/never"],
    ));
    assert!(err.contains("tag 'nope' not found in OCI layout"), "{err}");
    let layers: Vec<_> = std::fs::read_dir(work.0.join("img/blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| std::fs::metadata(p).unwrap().len() > 100_000)
        .collect();
    let victim = &layers[0];
    let mut bytes = std::fs::read(victim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(victim, &bytes).unwrap();
    let out = work.0.join("out");
    let err = fails(&cli(
        &docker,
        &["copy", &src, &format!("oci:{}:x", out.display())],
    ));
    let name = victim.file_name().unwrap().to_string_lossy();
    assert!(
        err.contains(&*name) && err.contains("does not match its content"),
        "{err}"
    );
    assert!(
        !out.join("index.json").exists(),
        "no tag may point at an incomplete image"
    );
    assert!(
        !out.join("blobs/sha256").join(&*name).exists(),
        "the bad blob must not be kept"
    );
    std::fs::remove_file(victim).unwrap();
    let err = fails(&cli(
        &docker,
        &["copy", &src, &format!("oci:{}:x", out.display())],
    ));
    assert!(err.contains("is missing from OCI layout"), "{err}");

    // An archive that is not a tar.
    let not_tar = work.0.join("not.tar");
    std::fs::write(&not_tar, vec![7u8; 4096]).unwrap();
    let err = fails(&cli(
        &docker,
        &[
            "copy",
            &format!("docker-archive:{}", not_tar.display()),
            "oci:/tmp/never",
        ],
    ));
    assert!(err.contains("is not a tar archive"), "{err}");
}

#[test]
fn push_build_and_pull_through_an_ecr_integration() {
    let (Some(aws), Some(_), Some(_)) = (peer("aws"), peer("skopeo"), peer("umoci")) else {
        return;
    };
    let u = up();
    let work = TempDir::new("ecr");
    let docker = work.0.join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let (key_id, secret) = demo_keys(&u);
    let host = u.ecr.trim_start_matches("http://").to_owned();
    add_integration(&u, &docker, "local", &u.ecr, (&key_id, &secret), None);
    let content = files(&work.0);
    let base = work.0.join("base");
    ok(&berth(
        &u,
        &docker,
        &[
            "build",
            "--from",
            "scratch",
            "--add",
            &format!("{}:/app", content.display()),
            &format!("oci:{}:1", base.display()),
        ],
        "",
    ));

    // ECR does not create on push: without --create-repo the error says so.
    let err = fails(&berth(
        &u,
        &docker,
        &[
            "push",
            &format!("oci:{}:1", base.display()),
            "ecr://local/team/base:1",
        ],
        "",
    ));
    assert!(err.contains("--create-repo"), "{err}");
    let pushed: Value = serde_json::from_str(&ok(&berth(
        &u,
        &docker,
        &[
            "push",
            "--create-repo",
            &format!("oci:{}:1", base.display()),
            "ecr://local/team/base:1",
            "-o",
            "json",
        ],
        "",
    )))
    .unwrap();

    // The AWS CLI sees the digest, the tag and the size.
    let described = local_ecr_cli(
        &aws,
        &u,
        &["describe-images", "--repository-name", "team/base"],
    );
    let described: Value = serde_json::from_str(&ok(&described)).unwrap();
    let detail = &described["imageDetails"][0];
    assert_eq!(detail["imageDigest"], pushed["digest"]);
    assert_eq!(detail["imageTags"][0], "1");
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(
            base.join("blobs/sha256")
                .join(&pushed["digest"].as_str().unwrap()[7..]),
        )
        .unwrap(),
    )
    .unwrap();
    let size: u64 = manifest["config"]["size"].as_u64().unwrap()
        + manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["size"].as_u64().unwrap())
            .sum::<u64>();
    assert_eq!(detail["imageSizeInBytes"].as_u64(), Some(size));

    // A plain host reference finds the integration that serves the host.
    ok(&berth(
        &u,
        &docker,
        &[
            "push",
            &format!("oci:{}:1", base.display()),
            &format!("{host}/team/base:by-host"),
        ],
        "",
    ));

    // Build on the private base: base layers are mounted, not downloaded; same inputs, same digest.
    let motd = work.0.join("motd");
    std::fs::write(&motd, "built on a private base\n").unwrap();
    let build = |tag: &str| -> Value {
        serde_json::from_str(&ok(&berth(
            &u,
            &docker,
            &[
                "build",
                "--create-repo",
                "--from",
                "ecr://local/team/base:1",
                "--add",
                &format!("{}:/etc/motd", motd.display()),
                "--env",
                "A=1",
                "--label",
                "team=platform",
                &format!("ecr://local/team/app:{tag}"),
                "-o",
                "json",
            ],
            "",
        )))
        .unwrap()
    };
    let first = build("2");
    assert_eq!(first["blobs_mounted"], 1, "{first}");
    assert_eq!(first["blobs_copied"], 2, "{first}");
    let second = build("2b");
    assert_eq!(first["digest"], second["digest"], "reproducible builds");
    assert_eq!(second["blobs_copied"], 0, "{second}");

    // Pull it back and unpack it with umoci; skopeo pulls the same bytes.
    let pulled = work.0.join("pulled");
    ok(&berth(
        &u,
        &docker,
        &[
            "pull",
            "ecr://local/team/app:2",
            &format!("oci:{}:2", pulled.display()),
        ],
        "",
    ));
    let bundle = work.0.join("bundle");
    umoci_unpack(&pulled, "2", &bundle);
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/etc/motd")).unwrap(),
        "built on a private base\n"
    );
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/app/hello.txt")).unwrap(),
        "hello from berth\n"
    );
    let password = ok(&berth(&u, &docker, &["login", "local", "--print"], ""));
    let sk = work.0.join("skopeo");
    ok(&run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &format!("AWS:{}", password.trim()),
            &format!("docker://{host}/team/app:2"),
            &format!("oci:{}:2", sk.display()),
        ],
    ));
    assert_eq!(blobs(&pulled), blobs(&sk));

    let inspected: Value = serde_json::from_str(&ok(&berth(
        &u,
        &docker,
        &["inspect", "ecr://local/team/app:2"],
        "",
    )))
    .unwrap();
    assert!(
        inspected["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "A=1"),
        "{inspected}"
    );
    assert_eq!(inspected["Labels"]["team"], "platform");
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 2);
    let tags = ok(&berth(&u, &docker, &["tags", "ecr://local/team/app"], ""));
    assert_eq!(tags.lines().collect::<Vec<_>>(), ["2", "2b"]);
    let err = fails(&berth(
        &u,
        &docker,
        &[
            "pull",
            "ecr://local/team/app:nope",
            &format!("oci:{}:x", pulled.display()),
        ],
        "",
    ));
    assert!(err.contains("tag 'nope' not found in repository"), "{err}");
}
