//! The ambient credential chain of the machine Berth runs on (here: environment variables, as a
//! CI runner or a pod with injected credentials has them): an integration in `ambient` mode works
//! with the server's own identity, and an expired session is diagnosed as such.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use berth_testkit::{Keys, LocalEcrFixture, TempDir, peer};
use sqlx::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_berth");

/// `berth serve` whose only AWS identity is the given environment.
fn serve(data: &Path, env: &[(&str, &str)]) -> (Child, String) {
    let mut c = Command::new(BIN);
    c.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("BERTH_LOG", "info")
        .env_remove("BERTH_MASTER_KEY")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        if let Some(rest) = line.split("url=").nth(1) {
            let url = rest.split_whitespace().next().unwrap().to_owned();
            // Keep draining the log so the server never writes into a closed pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return (child, url);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("berth serve did not start");
}

async fn test_connection(url: &str, token: &str) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{url}/api/v1/integrations/amb/test"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambient_credentials_work_and_an_expired_session_is_named() {
    let Some(aws) = peer("aws") else { return };
    let ecr = LocalEcrFixture::seeded("ambient-ecr").await;
    let ecr_url = ecr.url.clone();
    let creds_file = ecr.credentials_file.clone();
    let ecr_dir = ecr.dir.path().to_owned();
    let Keys { id: key, secret } = ecr.demo_keys();

    // A session from the demo role, then expired in the local ECR's own records.
    let out = Command::new(&aws)
        .args([
            "--profile",
            "berth-local",
            "--endpoint-url",
            &ecr_url,
            "--region",
            "us-east-1",
            "--output",
            "json",
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::123456789012:role/demo-role",
            "--role-session-name",
            "ambient",
        ])
        .env("AWS_SHARED_CREDENTIALS_FILE", &creds_file)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let session: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &session["Credentials"];
    let mut db = sqlx::SqliteConnection::connect(&format!(
        "sqlite:{}",
        ecr_dir.join("registry.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE sessions SET expires_at = 1")
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();

    let data_dir = TempDir::new("ambient-data");
    let data = data_dir.path();
    let (mut server, url) = serve(
        data,
        &[
            ("AWS_ACCESS_KEY_ID", &key),
            ("AWS_SECRET_ACCESS_KEY", &secret),
        ],
    );
    let admin = std::fs::read_to_string(data.join("initial-admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    let r = reqwest::Client::new()
        .post(format!("{url}/api/v1/integrations"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "amb", "type": "ecr", "endpoint": ecr_url, "auth": {"mode": "ambient"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let report = test_connection(&url, &admin).await;
    assert_eq!(report["ok"], true, "{report}");
    server.kill().unwrap();
    server.wait().unwrap();

    let (mut server, url) = serve(
        data,
        &[
            ("AWS_ACCESS_KEY_ID", c["AccessKeyId"].as_str().unwrap()),
            (
                "AWS_SECRET_ACCESS_KEY",
                c["SecretAccessKey"].as_str().unwrap(),
            ),
            ("AWS_SESSION_TOKEN", c["SessionToken"].as_str().unwrap()),
        ],
    );
    let report = test_connection(&url, &admin).await;
    let failed = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "failed")
        .cloned()
        .unwrap();
    assert_eq!(failed["diagnosis"], "expired_session", "{report}");
    server.kill().unwrap();
    server.wait().unwrap();
    drop(ecr);
}
