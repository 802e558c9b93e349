//! `kill -9` between the database write and the push: `berth up` takes an integration change
//! while the shared repository cannot be reached, is killed, and the queue entry is removed as
//! if the process had died before writing it. The next start finds the change by comparing the
//! database with what it last pushed, and pushes it; the CLI shows the sync status throughout.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_testkit::TempDir;
use berth_testkit::git::{bare_repository, git};
use common::{berth, ok, up_at};

/// A bare repository with one commit on `main`.
fn origin(root: &Path) -> std::path::PathBuf {
    bare_repository(root).0
}

/// A certificate like a sealed-secrets controller's, made at test time.
fn controller_cert(dir: &Path) -> String {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out",
            "cert.pem",
        ])
        .args(["-days", "30", "-subj", "/CN=sealed-secret"])
        .output()
        .expect("openssl (scripts/install-peers installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.join("cert.pem")).unwrap()
}

/// Answers one HTTP GET with `body`, as the controller's `/v1/cert.pem` does; returns its URL.
fn serve_once(body: &str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/cert.pem", listener.local_addr().unwrap());
    let body = body.to_owned();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut head = [0u8; 4096];
        let _ = conn.read(&mut head);
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-pem-file\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = conn.write_all(answer.as_bytes());
    });
    url
}

/// Polls `berth gitops status` until `integration` shows `want`.
fn wait_status(u: &common::Up, docker: &Path, integration: &str, want: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        last = ok(&berth(u, docker, &["gitops", "status"], ""));
        if last
            .lines()
            .any(|l| l.starts_with(integration) && l.contains(want))
        {
            return last;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{integration} never showed {want}:\n{last}");
}

#[test]
fn a_change_lost_between_the_database_and_the_push_is_pushed_at_the_next_start() {
    let root = TempDir::new("gitops-crash");
    let bare = origin(&root.0);
    let docker = root.0.join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let mut u = up_at(TempDir::new("gitops-crash-data"), "warn", None);
    let repo = format!("{}?ref=main", bare.display());
    let said = ok(&berth(&u, &docker, &["gitops", "configure", &repo], ""));
    assert!(said.contains("GitOps repository set"), "{said}");
    // The runtime's certificate comes from its controller's URL, as `…/v1/cert.pem`.
    let cert_url = serve_once(&controller_cert(&root.0));
    ok(&berth(
        &u,
        &docker,
        &["runtime", "add", "prod-eu", "--sealing-cert", &cert_url],
        "",
    ));
    let listed = ok(&berth(&u, &docker, &["runtime", "list"], ""));
    assert!(
        listed.contains("prod-eu") && listed.contains("sha256:"),
        "{listed}"
    );

    // The repository goes away; the change reaches the database only.
    let away = root.0.join("away.git");
    std::fs::rename(&bare, &away).unwrap();
    let args = [
        "integration",
        "add",
        "ecr-role",
        "--auth",
        "ambient",
        "--region",
        "eu-west-1",
        "--runtime",
        "prod-eu",
    ];
    ok(&berth(&u, &docker, &args, ""));
    let status = wait_status(&u, &docker, "ecr-role", "OUT_OF_SYNC");
    assert!(
        status.contains("config.git"),
        "the reason names the repository: {status}"
    );

    // kill -9, and the queue entry is gone as if the process died before writing it.
    u.child.kill().unwrap();
    u.child.wait().unwrap();
    let data = std::mem::replace(&mut u.data, TempDir::new("gitops-crash-spare"));
    drop(u);
    let db = data.0.join("berth.db");
    let out = Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('DELETE FROM gitops_sync'); c.commit()"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&away, &bare).unwrap();

    // The next start compares the database with what it pushed, and pushes the change.
    let u = up_at(data, "warn", None);
    wait_status(&u, &docker, "ecr-role", "SYNCED");
    let subjects = git(&bare, &["log", "--format=%s", "main"]);
    assert!(
        subjects
            .lines()
            .next()
            .unwrap()
            .contains("recovered at start"),
        "{subjects}"
    );
    let files = git(&bare, &["ls-tree", "-r", "--name-only", "main"]);
    assert!(
        files.contains("resources/runtimes/prod-eu/ecr-role.configmap.yaml"),
        "{files}"
    );
    let diff = ok(&berth(&u, &docker, &["gitops", "diff"], ""));
    assert!(diff.trim().is_empty(), "in sync after recovery: {diff}");
}
