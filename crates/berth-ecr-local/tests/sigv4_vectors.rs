//! The verifier against AWS's own signing test suite: every header-signed request must verify
//! with the suite's credentials, and must stop verifying when one byte of it changes.

use std::path::Path;

use berth_ecr_local::sigv4::{RequestParts, parse_authorization, sha256_hex, verify};

struct Vector {
    name: String,
    secret: String,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    normalize: bool,
}

fn load(dir: &Path) -> Vector {
    let context: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("context.json")).unwrap()).unwrap();
    let raw = std::fs::read_to_string(dir.join("header-signed-request.txt")).unwrap();
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let method = request_line.split(' ').next().unwrap().to_owned();
    let target = request_line[method.len() + 1..request_line.len() - " HTTP/1.1".len()].to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            // A folded header line continues the previous value.
            let last = headers.last_mut().unwrap();
            last.1.push(' ');
            last.1.push_str(line.trim());
            continue;
        }
        let (n, v) = line.split_once(':').unwrap();
        headers.push((n.to_ascii_lowercase(), v.to_owned()));
    }
    Vector {
        name: dir.file_name().unwrap().to_string_lossy().into_owned(),
        secret: context["credentials"]["secret_access_key"]
            .as_str()
            .unwrap()
            .to_owned(),
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
        normalize: context["normalize"].as_bool().unwrap_or(true),
    }
}

fn check(v: &Vector) -> bool {
    let auth_value = &v
        .headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .unwrap()
        .1;
    let auth = parse_authorization(auth_value).unwrap();
    let amz_date = &v.headers.iter().find(|(n, _)| n == "x-amz-date").unwrap().1;
    let parts = RequestParts {
        method: &v.method,
        path: &v.path,
        query: &v.query,
        headers: v
            .headers
            .iter()
            .map(|(n, val)| (n.clone(), val.as_str()))
            .collect(),
        payload_sha256: sha256_hex(&v.body),
    };
    verify(&v.secret, amz_date, &auth, &parts)
}

/// Cases outside what a JSON/query AWS service receives: S3-style unnormalized paths, paths
/// with raw spaces or non-ASCII that no HTTP client sends unescaped.
const NOT_APPLICABLE: &[&str] = &["get-space-normalized", "get-space-unnormalized", "get-utf8"];

#[test]
fn every_applicable_vector_verifies_and_tampering_breaks_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigv4-vectors");
    let mut checked = 0;
    let mut failed = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    for dir in entries {
        let v = load(&dir);
        if NOT_APPLICABLE.contains(&v.name.as_str()) || !v.normalize {
            continue;
        }
        checked += 1;
        if !check(&v) {
            failed.push(v.name.clone());
            continue;
        }
        let mut wrong_secret = Vector {
            secret: format!("{}x", v.secret),
            ..load(&dir)
        };
        assert!(!check(&wrong_secret), "{}: a wrong secret verified", v.name);
        wrong_secret.secret = v.secret.clone();
        wrong_secret.method = if v.method == "GET" {
            "POST".into()
        } else {
            "GET".into()
        };
        assert!(
            !check(&wrong_secret),
            "{}: a changed method verified",
            v.name
        );
        let mut changed_body = load(&dir);
        changed_body.body.push(b'!');
        assert!(!check(&changed_body), "{}: a changed body verified", v.name);
    }
    assert!(failed.is_empty(), "vectors that did not verify: {failed:?}");
    assert!(checked >= 25, "only {checked} vectors checked");
}
