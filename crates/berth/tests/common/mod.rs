//! Test support for the CLI's end-to-end tests: `berth up` on free ports, the CLI run against it,
//! peers found (or skipped loudly outside CI), and small images made for pushing.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use berth_testkit::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_berth");

pub struct Up {
    pub child: Child,
    pub url: String,
    pub ecr: String,
    pub token: String,
    pub data: TempDir,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn up() -> Up {
    up_logging("warn", None)
}

/// `berth up` with `BERTH_LOG=level`, its log written to `log` (else discarded).
pub fn up_logging(level: &str, log: Option<&Path>) -> Up {
    up_at(TempDir::new("up"), level, log)
}

/// `berth up` with its data directory in `data`.
pub fn up_at(data: TempDir, level: &str, log: Option<&Path>) -> Up {
    up_via(Command::new(BIN), data, &[("BERTH_LOG", level)], log)
}

/// `berth up` started through `launcher` (the binary itself, or e.g. `prlimit … -- berth`),
/// with `env` set and its log written to `log` (else discarded).
pub fn up_via(
    mut launcher: Command,
    data: TempDir,
    env: &[(&str, &str)],
    log: Option<&Path>,
) -> Up {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::null(),
    };
    for (k, v) in env {
        launcher.env(k, v);
    }
    let mut child = launcher
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--local-ecr-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data.0)
        .env_remove("BERTH_MASTER_KEY")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let (mut url, mut ecr) = (String::new(), String::new());
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(r) = line.trim().strip_prefix("export BERTH_URL=") {
            url = r.to_owned();
        }
        if let Some(r) = line.trim().strip_prefix("local ECR:") {
            ecr = r.split_whitespace().next().unwrap().to_owned();
        }
        if line.contains("export BERTH_TOKEN") {
            break;
        }
    }
    let token = std::fs::read_to_string(data.0.join("initial-admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    Up {
        child,
        url,
        ecr,
        token,
        data,
    }
}

pub fn berth(u: &Up, docker: &Path, args: &[&str], stdin: &str) -> Output {
    let mut c = Command::new(BIN)
        .args(args)
        .env("BERTH_URL", &u.url)
        .env("BERTH_TOKEN", &u.token)
        .env("DOCKER_CONFIG", docker)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `aws ecr ARGS…` against the local ECR of `berth up` with the demo profile.
pub fn local_ecr_cli(aws: &Path, u: &Up, args: &[&str]) -> Output {
    Command::new(aws)
        .args(["--profile", "berth-local", "--endpoint-url", &u.ecr])
        .args(["--region", "us-east-1", "ecr"])
        .args(args)
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            u.data.0.join("local-ecr/credentials"),
        )
        .env("AWS_CONFIG_FILE", "/dev/null")
        .output()
        .unwrap()
}

/// A repository in the local ECR, made with the AWS CLI and the demo profile.
pub fn create_repository(aws: &Path, u: &Up, name: &str) {
    ok(&local_ecr_cli(
        aws,
        u,
        &["create-repository", "--repository-name", name],
    ));
}

/// Unpacks `layout:tag` with umoci into `bundle` (its files end up under `bundle/rootfs`).
pub fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) {
    ok(&run(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:{tag}", layout.display()),
            bundle.to_str().unwrap(),
        ],
    ));
}

pub fn demo_keys(u: &Up) -> (String, String) {
    let creds = std::fs::read_to_string(u.data.0.join("local-ecr/credentials")).unwrap();
    let field = |k: &str| {
        creds
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k} = ")))
            .unwrap()
            .to_owned()
    };
    (field("aws_access_key_id"), field("aws_secret_access_key"))
}

pub fn image(dir: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/make-image.py");
    let o = Command::new("python3")
        .arg(script)
        .args(["2", "2"])
        .arg(dir)
        .output()
        .unwrap();
    ok(&o);
    format!("oci:{}:latest", dir.display())
}

/// Debian's docker-registry (distribution 2.8) on a free port, optionally with htpasswd Basic
/// auth for user `testuser` / `testpassword`.
pub struct Registry {
    pub child: Child,
    pub host: String,
    pub dir: TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn registry(auth: bool) -> Registry {
    let dir = TempDir::new("registry");
    let port = free_port();
    let mut config = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
        dir.0.join("data").display()
    );
    if auth {
        // distribution 2.8 accepts bcrypt hashes only.
        let o = Command::new("python3")
            .args([
                "-W",
                "ignore",
                "-c",
                "import crypt; print('testuser:' + crypt.crypt('testpassword', crypt.mksalt(crypt.METHOD_BLOWFISH)))",
            ])
            .output()
            .unwrap();
        std::fs::write(dir.0.join("htpasswd"), ok(&o)).unwrap();
        config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            dir.0.join("htpasswd").display()
        ));
    }
    std::fs::write(dir.0.join("config.yml"), config).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.0.join("config.yml"))
        .env_remove("REGISTRY_AUTH_FILE")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let host = format!("127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(&host).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Registry { child, host, dir }
}

/// Every blob file of an OCI layout, by name, for byte-for-byte comparisons.
pub fn blobs(layout: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Runs a command and returns its output (no Berth environment).
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap()
}

pub fn fails(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "expected a failure; stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `berth integration add NAME --endpoint … --access-key-id …` with the secret on stdin,
/// assigned to `subscription` when given.
pub fn add_integration(
    u: &Up,
    docker: &Path,
    name: &str,
    endpoint: &str,
    keys: (&str, &str),
    subscription: Option<&str>,
) {
    let mut args = vec![
        "integration",
        "add",
        name,
        "--endpoint",
        endpoint,
        "--access-key-id",
        keys.0,
        "--secret-access-key-stdin",
    ];
    if let Some(s) = subscription {
        args.extend(["--subscription", s]);
    }
    ok(&berth(u, docker, &args, &format!("{}\n", keys.1)));
}

/// Subscription `acme` with project `acme/web`, integration `local` on the local ECR (its demo
/// keys) assigned to it, and a token of the subscription: what a CI job of the project holds.
pub fn acme_with_local(u: &Up, admin: &Path) -> String {
    std::fs::create_dir_all(admin).unwrap();
    let (key_id, secret) = demo_keys(u);
    for args in [
        vec!["subscription", "add", "acme"],
        vec!["project", "add", "acme/web", "--subscription", "acme"],
    ] {
        ok(&berth(u, admin, &args, ""));
    }
    add_integration(u, admin, "local", &u.ecr, (&key_id, &secret), Some("acme"));
    ok(&berth(
        u,
        admin,
        &["token", "create", "--subscription", "acme"],
        "",
    ))
    .trim()
    .to_owned()
}
