//! `kill -9` in the middle of a push: after a restart the half-sent blob is nowhere, nothing
//! points at it, and the same push then completes.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn start(data: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["local-ecr", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("BERTH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        if let Some(rest) = line.trim().strip_prefix("local ECR:") {
            let url = rest.split_whitespace().next().unwrap().to_owned();
            std::thread::spawn(move || lines.for_each(drop));
            return (child, url);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("no banner");
}

/// The registry password, through the real ECR API via the AWS CLI when present, else skipped.
fn password(aws: &std::path::Path, data: &std::path::Path, url: &str) -> String {
    let o = Command::new(aws)
        .args([
            "--profile",
            "berth-local",
            "--endpoint-url",
            url,
            "--region",
            "us-east-1",
            "ecr",
            "get-login-password",
        ])
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            data.join("local-ecr/credentials"),
        )
        .env("AWS_CONFIG_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

fn basic(password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"))
}

fn http(url: &str, request: &str, body: &[u8]) -> String {
    let host = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    let _ = std::io::Read::read_to_string(&mut s, &mut out);
    out
}

#[test]
fn kill_9_mid_blob_leaves_nothing_half_written() {
    let Some(aws) = berth_testkit::peer("aws") else {
        return;
    };
    let data_dir = berth_testkit::TempDir::new("crash");
    let data = data_dir.path().to_owned();
    let (mut child, url) = start(&data);
    let o = Command::new(&aws)
        .args([
            "--profile",
            "berth-local",
            "--endpoint-url",
            &url,
            "--region",
            "us-east-1",
            "ecr",
            "create-repository",
            "--repository-name",
            "team/app",
        ])
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            data.join("local-ecr/credentials"),
        )
        .env("AWS_CONFIG_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pw = password(&aws, &data, &url);
    let host = url.trim_start_matches("http://");

    // A monolithic push announced as 8 MiB; send half, then kill the server.
    let blob: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let digest = {
        use sha2::Digest;
        format!(
            "sha256:{}",
            sha2::Sha256::digest(&blob)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    };
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "POST /v2/team/app/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
        basic(&pw),
        blob.len()
    )
    .unwrap();
    s.write_all(&blob[..blob.len() / 2]).unwrap();
    s.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(s);

    let blob_file = data
        .join("local-ecr/blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    assert!(
        !blob_file.exists(),
        "no blob file under the digest after the crash"
    );

    let (mut child, url) = start(&data);
    let head = http(
        &url,
        &format!(
            "HEAD /v2/team/app/blobs/{digest} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {}\r\nConnection: close\r\n\r\n",
            basic(&pw)
        ),
        b"",
    );
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let uploads = std::fs::read_dir(data.join("local-ecr/uploads"))
        .unwrap()
        .count();
    assert_eq!(uploads, 0, "the half upload was cleaned up at start");

    // The same push now completes, and the blob is served whole.
    let put = http(
        &url,
        &format!(
            "POST /v2/team/app/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            basic(&pw),
            blob.len()
        ),
        &blob,
    );
    assert!(put.starts_with("HTTP/1.1 201"), "{put}");
    assert_eq!(std::fs::read(&blob_file).unwrap(), blob);
    child.kill().unwrap();
    child.wait().unwrap();
}
