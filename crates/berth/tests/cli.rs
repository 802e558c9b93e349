//! The `berth` binary end to end: `berth up` prints how to reach it and stops cleanly on SIGTERM;
//! the README's quick start works through the CLI; exit codes are 0/1/2; the secret never shows
//! in CLI output.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use berth_testkit::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_berth");

/// Starts `berth up` on a free port and returns it with its URL, read from the banner.
fn up(data_dir: &Path, extra_env: &[(&str, &str)]) -> (Child, String, Vec<String>) {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "up",
        "--listen",
        "127.0.0.1:0",
        "--local-ecr-listen",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(data_dir)
    .current_dir(data_dir)
    .env_remove("BERTH_MASTER_KEY")
    .env("BERTH_LOG", "warn")
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = Vec::new();
    let mut url = String::new();
    let reader = BufReader::new(child.stdout.take().unwrap());
    for line in reader.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("export BERTH_URL=") {
            url = rest.to_owned();
        }
        let done = line.contains("export BERTH_TOKEN");
        lines.push(line);
        if done {
            break;
        }
    }
    assert!(!url.is_empty(), "banner: {lines:?}");
    (child, url, lines)
}

fn berth(url: &str, token: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("BERTH_URL", url)
        .env("BERTH_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit}");
}

#[test]
fn quick_start_through_the_cli() {
    let dir = TempDir::new("quick");
    let (child, url, banner) = up(&dir.0, &[]);
    let token_line = banner.iter().find(|l| l.contains("admin token:")).unwrap();
    let token = std::fs::read_to_string(dir.0.join("initial-admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(
        token_line.contains(&token),
        "the first start prints the admin token"
    );

    let secret = format!("CliSecret/{}", "q".repeat(30));
    let key_id = format!("AKIA{}", "CLITEST0WXYZ");
    let mut all_output = String::new();

    let o = berth(&url, &token, &["subscription", "add", "acme"], None);
    assert!(o.status.success(), "{}", text(&o));
    let o = berth(
        &url,
        &token,
        &[
            "integration",
            "add",
            "ecr-integration",
            "--type",
            "ecr",
            "--region",
            "us-west-2",
            "--access-key-id",
            &key_id,
            "--secret-access-key-stdin",
            "--subscription",
            "acme",
            // Without the switch a job gets an STS session (tests/job_credentials.rs); with it,
            // the keys themselves, which shows how values are quoted.
            "--export-long-lived-keys",
            "true",
        ],
        Some(&format!("{secret}\n")),
    );
    all_output += &text(&o);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("****WXYZ"), "{}", text(&o));

    let o = berth(
        &url,
        &token,
        &["integration", "list", "--type", "ecr"],
        None,
    );
    all_output += &text(&o);
    let listing = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(listing.starts_with("TYPE"), "{listing}");
    assert!(
        listing.contains("ecr-integration") && listing.contains("us-west-2"),
        "{listing}"
    );

    let o = berth(
        &url,
        &token,
        &["integration", "show", "ecr-integration", "--output", "json"],
        None,
    );
    all_output += &text(&o);
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown["auth"]["access_key_id"], "****WXYZ");
    assert_eq!(shown["auth"]["secret_access_key_set"], true);

    // Edit without touching the secret keeps it; a new secret from a file replaces it.
    let o = berth(
        &url,
        &token,
        &[
            "integration",
            "edit",
            "ecr-integration",
            "--region",
            "eu-west-1",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let secret_file = dir.0.join("secret.txt");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let o = berth(
        &url,
        &token,
        &[
            "integration",
            "edit",
            "ecr-integration",
            "--secret-access-key-file",
            secret_file.to_str().unwrap(),
        ],
        None,
    );
    all_output += &text(&o);
    assert!(o.status.success(), "{}", text(&o));

    // A secret on the command line works but is warned about.
    let o = berth(
        &url,
        &token,
        &[
            "integration",
            "add",
            "warned",
            "--access-key-id",
            &key_id,
            "--secret-access-key",
            "cmdline-secret",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("warning"),
        "{}",
        text(&o)
    );

    // Failures: 1 with the server's message; usage errors: 2.
    let o = berth(
        &url,
        &token,
        &[
            "integration",
            "add",
            "bad",
            "--auth",
            "ambient",
            "--region",
            "mars-1",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("region") && text(&o).contains("HTTP 400"),
        "{}",
        text(&o)
    );
    let o = berth(&url, &token, &["integration", "list", "--colour"], None);
    assert_eq!(o.status.code(), Some(2));
    let o = berth(
        &url,
        "brt_000000000000_nope",
        &["integration", "list"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("401"), "{}", text(&o));

    let o = berth(
        &url,
        &token,
        &["integration", "delete", "ecr-integration"],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = berth(
        &url,
        &token,
        &["integration", "delete", "ecr-integration"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("does not exist"), "{}", text(&o));

    assert!(
        !all_output.contains(&secret),
        "the secret leaked into CLI output"
    );
    assert!(
        !all_output.contains(&key_id),
        "the key id leaked into CLI output"
    );
    stop(child);
}

#[test]
fn second_start_keeps_the_token_and_a_wrong_key_is_a_clear_startup_error() {
    let dir = TempDir::new("restart");
    let (child, url, _) = up(&dir.0, &[]);
    let token = std::fs::read_to_string(dir.0.join("initial-admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    let o = berth(
        &url,
        &token,
        &[
            "integration",
            "add",
            "k",
            "--access-key-id",
            &format!("AKIA{}", "RESTART00001"),
            "--secret-access-key-stdin",
        ],
        Some("s3cret\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    stop(child);

    let (child, url, banner) = up(&dir.0, &[]);
    assert!(
        !banner.iter().any(|l| l.contains(&token)),
        "the token is printed on first start only"
    );
    assert!(
        berth(&url, &token, &["integration", "list"], None)
            .status
            .success()
    );
    stop(child);

    let wrong = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir.0)
        .env(
            "BERTH_MASTER_KEY",
            "q2VnZ4p6cG9ZcWJxbm1zZHh5Y2F0aHJ1ZW9qa3ZpbGc=",
        )
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(err.contains("master key does not fit"), "{err}");

    let rotated = Command::new(BIN)
        .args(["token", "rotate-admin", "--data-dir"])
        .arg(&dir.0)
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{}", text(&rotated));
    let new_token = String::from_utf8_lossy(&rotated.stdout).trim().to_owned();
    assert!(new_token.starts_with("brt_") && new_token != token);

    let rekeyed = Command::new(BIN)
        .args(["admin", "rotate-key", "--data-dir"])
        .arg(&dir.0)
        .env_remove("BERTH_MASTER_KEY")
        .output()
        .unwrap();
    assert!(rekeyed.status.success(), "{}", text(&rekeyed));
    assert!(
        text(&rekeyed).contains("re-sealed 2 secret(s)"),
        "{}",
        text(&rekeyed)
    );

    let (child, url, _) = up(&dir.0, &[]);
    let o = berth(&url, &token, &["integration", "list"], None);
    assert_eq!(o.status.code(), Some(1), "the old admin token is refused");
    let o = berth(
        &url,
        &new_token,
        &["integration", "show", "k", "-o", "json"],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    stop(child);
}

#[test]
fn ci_resource_env_prints_what_a_pipeline_job_sees() {
    let dir = TempDir::new("resenv");
    let (child, url, _) = up(&dir.0, &[]);
    let token = std::fs::read_to_string(dir.0.join("initial-admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    let key_id = format!("AKIA{}", "RESENVKEY001");
    let secret = "it's-a-secret/with'quotes";
    for args in [
        vec!["subscription", "add", "acme"],
        vec!["project", "add", "acme/web", "--subscription", "acme"],
    ] {
        assert!(berth(&url, &token, &args, None).status.success());
    }
    let o = berth(
        &url,
        &token,
        &[
            "integration",
            "add",
            "ecr-prod",
            "--access-key-id",
            &key_id,
            "--secret-access-key-stdin",
            "--subscription",
            "acme",
            // Without the switch a job gets an STS session (tests/job_credentials.rs); with it,
            // the keys themselves, which shows how values are quoted.
            "--export-long-lived-keys",
            "true",
        ],
        Some(&format!("{secret}\n")),
    );
    assert!(o.status.success(), "{}", text(&o));
    let yml = dir.0.join("shippable.yml");
    std::fs::write(
        &yml,
        "resources:\n  - name: my-key-1\n    type: integration\n    integration: ecr-prod\n",
    )
    .unwrap();
    let file = yml.to_str().unwrap();
    let o = berth(
        &url,
        &token,
        &[
            "ci",
            "resource-env",
            "--file",
            file,
            "--project",
            "acme/web",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(out.trim(), "MYKEY1_INTEGRATION_AWS_REGION='us-east-1'");
    let o = berth(
        &url,
        &token,
        &[
            "ci",
            "resource-env",
            "--file",
            file,
            "--project",
            "acme/web",
            "--with-secrets",
            "my-key-1",
        ],
        None,
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.contains(&format!("MYKEY1_INTEGRATION_AWS_ACCESS_KEY_ID='{key_id}'")),
        "{out}"
    );
    assert!(
        out.contains(
            "MYKEY1_INTEGRATION_AWS_SECRET_ACCESS_KEY='it'\\''s-a-secret/with'\\''quotes'"
        ),
        "shell-quoted: {out}"
    );
    stop(child);
}

#[test]
fn users_are_managed_from_the_cli_and_berth_up_serves_the_sign_in_page() {
    let dir = TempDir::new("users");
    let (child, url, banner) = up(&dir.0, &[]);
    assert!(
        banner.iter().any(|l| l.contains(&format!("{url}/"))),
        "the banner points at the web pages: {banner:?}"
    );
    let token = std::fs::read_to_string(dir.0.join("initial-admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    let password = "a long enough password";
    let o = berth(
        &url,
        &token,
        &["user", "add", "ada", "--admin"],
        Some(password),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("added user ada (admin)"));
    let o = berth(
        &url,
        &token,
        &["user", "add", "bob", "--subscription", "nope"],
        Some(password),
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("subscription"), "{}", text(&o));
    let o = berth(
        &url,
        &token,
        &["user", "add", "eve", "--admin"],
        Some("short"),
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("password: must be 12"), "{}", text(&o));
    let o = berth(
        &url,
        &token,
        &["user", "passwd", "ada"],
        Some("another long password"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = berth(&url, &token, &["-o", "json", "user", "list"], None);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list["items"][0]["name"], "ada");
    assert!(!text(&o).contains(password) && !text(&o).contains("argon2"));
    let o = berth(&url, &token, &["user", "delete", "ada"], None);
    assert!(o.status.success(), "{}", text(&o));
    let o = berth(&url, &token, &["user", "delete", "ada"], None);
    assert!(
        text(&o).contains("does not exist") || text(&o).contains("not found"),
        "{}",
        text(&o)
    );
    let page = Command::new("curl")
        .args(["-s", &format!("{url}/login")])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&page.stdout).contains("Sign in to Berth"));
    stop(child);
}
