//! GitOps through the API against a real bare repository: settings refused with the field and
//! nothing saved, then every integration change landing as one commit (create, update, re-scope
//! moving files, delete removing them), sync status read from the branch head (an outside edit
//! is OUT_OF_SYNC, an unreachable repository UNKNOWN), and no secret anywhere in the history.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_testkit::git::{bare_repository, git};
use berth_testkit::{TempDir, peer, random_keys};
use common::{TestServer, assert_error, options};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A bare repository with one commit on `main`.
fn origin(root: &Path) -> std::path::PathBuf {
    bare_repository(root).0
}

/// A sealing certificate made at test time, like the controller's.
fn sealing_cert(dir: &Path) -> Option<String> {
    let openssl = peer("openssl")?;
    let out = Command::new(openssl)
        .current_dir(dir)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out",
            "cert.pem",
        ])
        .args(["-days", "30", "-subj", "/CN=sealed-secret"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(std::fs::read_to_string(dir.join("cert.pem")).unwrap())
}

/// An independent decryptor (Python's `cryptography`): `keys DIR DAYS` makes `key.pem` and a
/// certificate valid for DAYS (negative: already expired); `open DIR LABEL VALUE` prints what
/// the controller would decrypt, or nothing.
const ORACLE: &str = r#"
import base64, datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
cmd, d = sys.argv[1], sys.argv[2]
if cmd == "keys":
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealed-secret")])
    now = datetime.datetime.now(datetime.timezone.utc)
    days = int(sys.argv[3])
    start, end = (now - datetime.timedelta(days=2), now - datetime.timedelta(days=1)) if days < 0 else (now, now + datetime.timedelta(days=days))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .sign(key, hashes.SHA256()))
    open(f"{d}/key.pem", "wb").write(key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    open(f"{d}/cert.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
else:
    key = serialization.load_pem_private_key(open(f"{d}/key.pem", "rb").read(), None)
    raw = base64.b64decode(sys.argv[4])
    n = int.from_bytes(raw[:2], "big")
    try:
        session = key.decrypt(raw[2:2 + n], padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
            algorithm=hashes.SHA256(), label=sys.argv[3].encode()))
        print(AESGCM(session).decrypt(b"\0" * 12, raw[2 + n:], None).decode(), end="")
    except Exception:
        pass
"#;

fn oracle(python: &Path, args: &[&str]) -> String {
    let out = Command::new(python)
        .args(["-c", ORACLE])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One `spec.encryptedData` value of a SealedSecret's YAML.
fn encrypted(yaml: &str, key: &str) -> String {
    yaml.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in {yaml}"))
        .trim()
        .to_owned()
}

fn subjects(bare: &Path) -> Vec<String> {
    git(bare, &["log", "--format=%s", "main"])
        .lines()
        .map(str::to_owned)
        .collect()
}

fn tree(bare: &Path) -> Vec<String> {
    git(bare, &["ls-tree", "-r", "--name-only", "main"])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until the branch's latest commit subject starts with `subject`.
async fn commit_lands(bare: &Path, subject: &str) {
    for _ in 0..100 {
        if subjects(bare)
            .first()
            .is_some_and(|s| s.starts_with(subject))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no commit '{subject}…' landed; the branch has {:?}",
        subjects(bare)
    );
}

/// Someone else's commit of everything changed in `clone`, pushed.
fn push_by_hand(clone: &Path, message: &str) {
    git(clone, &["add", "--all", "."]);
    git(clone, &["commit", "--quiet", "-m", message]);
    git(clone, &["push", "--quiet", "origin", "HEAD:main"]);
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Waits until the integration's status reads SYNCED (the commit lands before the database
/// records it).
async fn wait_synced(s: &TestServer, name: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        last = status_of(s, name).await;
        if last["status"] == "SYNCED" {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never read SYNCED: {last}");
}

async fn status_of(s: &TestServer, name: &str) -> Value {
    let (code, list) = s.admin(Method::GET, "/api/v1/gitops/status", None).await;
    assert_eq!(code, StatusCode::OK, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["integration"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} is not in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_land_in_the_shared_repository_as_commits() {
    story(None).await;
}

/// The same story with the store on PostgreSQL (when BERTH_TEST_POSTGRES_URL is set; always in CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_land_in_the_shared_repository_as_commits_on_postgres() {
    let Some(url) = berth_testkit::postgres_url() else {
        return;
    };
    let db = berth_testkit::TempDb::create(&url).await;
    story(Some(db.url.clone())).await;
    db.drop_now().await;
}

async fn story(database: Option<String>) {
    let root = TempDir::new("gitops");
    let Some(cert) = sealing_cert(&root.0) else {
        assert!(std::env::var_os("CI").is_none(), "openssl is missing in CI");
        eprintln!("SKIPPED: openssl is not installed (scripts/install-peers installs it)");
        return;
    };
    let logs = common::captured_logs();
    let bare = origin(&root.0);
    let mut o = options(&root.0.join("data"));
    o.database = database;
    let s = TestServer::start(o).await;
    let repo = format!("{}?ref=main", bare.display());

    // Refused, naming the field; nothing saved.
    let refusals = [
        (
            json!({"repo": "https://example.com/no-suffix"}),
            400,
            "repo",
        ),
        (
            json!({"repo": format!("{}/../up", bare.display())}),
            400,
            "repo",
        ),
        (
            json!({"repo": format!("{}?ref=nope", bare.display())}),
            422,
            "repo",
        ),
        (
            json!({"repo": root.0.join("absent.git").display().to_string()}),
            422,
            "repo",
        ),
        (
            json!({"repo": repo, "namespace": "Not_A_Namespace"}),
            400,
            "namespace",
        ),
        (
            json!({"repo": repo, "account_cert": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"}),
            400,
            "account_cert",
        ),
    ];
    for (body, status, field) in refusals {
        let r = s
            .admin(Method::PUT, "/api/v1/gitops", Some(body.clone()))
            .await;
        assert_eq!(r.0.as_u16(), status, "{body}: {}", r.1);
        assert_eq!(r.1["error"]["field"], field, "{body}: {}", r.1);
        assert_error(
            &s.admin(Method::GET, "/api/v1/gitops", None).await,
            404,
            "not_found",
            None,
        );
    }
    // Admins only.
    let r = s
        .admin(
            Method::POST,
            "/api/v1/subscriptions",
            Some(json!({"name": "acme"})),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    let member = s
        .admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"subscription": "acme"})),
        )
        .await
        .1;
    let member = member["token"].as_str().unwrap();
    for (method, path) in [
        (Method::PUT, "/api/v1/gitops"),
        (Method::GET, "/api/v1/gitops"),
        (Method::GET, "/api/v1/gitops/status"),
    ] {
        let r = s
            .call(
                method.clone(),
                path,
                Some(member),
                Some(json!({"repo": repo})),
            )
            .await;
        assert_eq!(r.0, StatusCode::FORBIDDEN, "{method} {path}: {}", r.1);
    }
    // An integration shared before the repository is configured lands when it is.
    s.share_ambient("early", "ecr-early").await;
    let push_password = format!("push-{}", berth_testkit::random_hex(12));
    let r = s
        .admin(
            Method::PUT,
            "/api/v1/gitops",
            Some(json!({"repo": repo, "username": "ci", "password": push_password})),
        )
        .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    assert_eq!(
        (r.1["namespace"].as_str(), r.1["password_set"].as_bool()),
        (Some("codefresh"), Some(true))
    );
    assert!(!r.1.to_string().contains(&push_password));
    commit_lands(&bare, "berth: reconcile 1 integrations from Berth").await;
    assert!(tree(&bare).contains(&"resources/runtimes/early/ecr-early.configmap.yaml".to_owned()));

    // Runtimes: a Kubernetes name, an RSA certificate.
    for (body, field) in [
        (json!({"name": "Prod_EU"}), "name"),
        (
            json!({"name": "prod-eu", "namespace": "Apps EU"}),
            "namespace",
        ),
        (
            json!({"name": "prod-eu", "sealing_cert": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}),
            "sealing_cert",
        ),
    ] {
        let r = s.admin(Method::POST, "/api/v1/runtimes", Some(body)).await;
        assert_error(&r, 400, "invalid_field", Some(field));
    }
    let r = s
        .admin(
            Method::POST,
            "/api/v1/runtimes",
            Some(json!({"name": "prod-eu", "sealing_cert": cert, "namespace": "apps-eu"})),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    assert!(
        r.1["sealing_cert_fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{}",
        r.1
    );
    assert!(r.1["sealing_cert_expires_at"].is_string(), "{}", r.1);

    // Create: one commit with the ConfigMap and the SealedSecret for the selected runtime.
    let keys = random_keys("GITO");
    let body = json!({"name": "ecr-prod", "type": "ecr", "region": "us-west-2",
        "auth": {"mode": "access_keys", "access_key_id": keys.id, "secret_access_key": keys.secret},
        "runtimes": {"selected": ["prod-eu"]}});
    let r = s
        .admin(Method::POST, "/api/v1/integrations", Some(body))
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    commit_lands(
        &bare,
        "berth: create integration ecr-prod (region us-west-2, access keys)",
    )
    .await;
    let files = tree(&bare);
    let map = "resources/runtimes/prod-eu/ecr-prod.configmap.yaml";
    let sealed = "resources/runtimes/prod-eu/ecr-prod-secrets.sealedsecret.yaml";
    assert!(
        files.contains(&map.to_owned()) && files.contains(&sealed.to_owned()),
        "{files:?}"
    );
    wait_synced(&s, "ecr-prod").await;

    // Update: one more commit, the ConfigMap carries the new region.
    let before = subjects(&bare).len();
    let r = s
        .admin(
            Method::PATCH,
            "/api/v1/integrations/ecr-prod",
            Some(json!({"region": "eu-west-1"})),
        )
        .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    commit_lands(
        &bare,
        "berth: update integration ecr-prod (region eu-west-1",
    )
    .await;
    assert_eq!(subjects(&bare).len(), before + 1, "one commit per change");
    let shown = git(&bare, &["show", &format!("main:{map}")]);
    assert!(
        shown.contains("eu-west-1") && shown.contains("namespace: apps-eu"),
        "{shown}"
    );

    // A new certificate for the runtime: its SealedSecret is re-sealed in one commit and opens
    // with the new private key only (Python's cryptography as the independent decryptor).
    let python = peer("python").expect("python with cryptography (scripts/install-peers)");
    let new_keys = root.0.join("new-keys");
    std::fs::create_dir_all(&new_keys).unwrap();
    oracle(&python, &["keys", new_keys.to_str().unwrap(), "30"]);
    let new_cert = std::fs::read_to_string(new_keys.join("cert.pem")).unwrap();
    let expired = root.0.join("expired");
    std::fs::create_dir_all(&expired).unwrap();
    oracle(&python, &["keys", expired.to_str().unwrap(), "-1"]);
    let r = s
        .admin(
            Method::PUT,
            "/api/v1/runtimes/prod-eu/sealing-cert",
            Some(
                json!({"sealing_cert": std::fs::read_to_string(expired.join("cert.pem")).unwrap()}),
            ),
        )
        .await;
    assert_error(&r, 400, "invalid_field", Some("sealing_cert"));
    assert!(
        r.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{}",
        r.1
    );
    let old_sealed = git(&bare, &["show", &format!("main:{sealed}")]);
    let r = s
        .admin(
            Method::PUT,
            "/api/v1/runtimes/prod-eu/sealing-cert",
            Some(json!({"sealing_cert": new_cert})),
        )
        .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    let fingerprint = r.1["sealing_cert_fingerprint"].as_str().unwrap().to_owned();
    commit_lands(
        &bare,
        &format!("berth: re-seal 1 integrations for runtime prod-eu (certificate {fingerprint})"),
    )
    .await;
    let new_sealed = git(&bare, &["show", &format!("main:{sealed}")]);
    assert_ne!(old_sealed, new_sealed);
    let value = encrypted(&new_sealed, "awsSecretAccessKey");
    let label = "apps-eu/ecr-prod-secrets";
    assert_eq!(
        oracle(
            &python,
            &["open", new_keys.to_str().unwrap(), label, &value]
        ),
        keys.secret
    );
    assert_eq!(
        oracle(&python, &["open", root.0.to_str().unwrap(), label, &value]),
        "",
        "the old key no longer opens it"
    );
    assert_eq!(
        oracle(
            &python,
            &[
                "open",
                new_keys.to_str().unwrap(),
                "other/ecr-prod-secrets",
                &value
            ]
        ),
        "",
        "strict scope"
    );
    wait_synced(&s, "ecr-prod").await;

    // Another namespace for the runtime: its files are rewritten there, sealed for it.
    let r = s
        .admin(
            Method::PUT,
            "/api/v1/runtimes/prod-eu/namespace",
            Some(json!({"namespace": "Bad NS"})),
        )
        .await;
    assert_error(&r, 400, "invalid_field", Some("namespace"));
    let r = s
        .admin(
            Method::PUT,
            "/api/v1/runtimes/prod-eu/namespace",
            Some(json!({"namespace": "apps-west"})),
        )
        .await;
    assert_eq!(
        (r.0, r.1["namespace"].as_str()),
        (StatusCode::OK, Some("apps-west")),
        "{}",
        r.1
    );
    commit_lands(
        &bare,
        "berth: move 1 integrations of runtime prod-eu to namespace apps-west",
    )
    .await;
    assert!(git(&bare, &["show", &format!("main:{map}")]).contains("namespace: apps-west"));
    let moved = encrypted(
        &git(&bare, &["show", &format!("main:{sealed}")]),
        "awsSecretAccessKey",
    );
    let west = "apps-west/ecr-prod-secrets";
    assert_eq!(
        oracle(&python, &["open", new_keys.to_str().unwrap(), west, &moved]),
        keys.secret
    );
    wait_synced(&s, "ecr-prod").await;

    // Re-scope an integration without secrets: its files move.
    let role = json!({"name": "ecr-role", "type": "ecr", "region": "us-east-1",
        "auth": {"mode": "assume_role", "role_arn": "arn:aws:iam::123456789012:role/ci", "source": "ambient"},
        "runtimes": {"selected": ["prod-eu"]}});
    assert_eq!(
        s.admin(Method::POST, "/api/v1/integrations", Some(role))
            .await
            .0,
        StatusCode::CREATED
    );
    commit_lands(&bare, "berth: create integration ecr-role").await;
    let r = s
        .admin(
            Method::PATCH,
            "/api/v1/integrations/ecr-role",
            Some(json!({"runtimes": {"all": true}})),
        )
        .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    commit_lands(&bare, "berth: update integration ecr-role").await;
    let files = tree(&bare);
    assert!(
        files.contains(&"resources/all-runtimes-all-clusters/ecr-role.configmap.yaml".to_owned()),
        "{files:?}"
    );
    assert!(
        !files
            .iter()
            .any(|f| f.starts_with("resources/runtimes/prod-eu/ecr-role")),
        "{files:?}"
    );

    // An outside edit is seen, and says which file.
    let hand = root.0.join("hand");
    git(
        &root.0,
        &[
            "clone",
            "--quiet",
            bare.to_str().unwrap(),
            hand.to_str().unwrap(),
        ],
    );
    std::fs::write(
        hand.join(map),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: edited}\n",
    )
    .unwrap();
    push_by_hand(&hand, "by hand");
    let status = status_of(&s, "ecr-prod").await;
    assert_eq!(status["status"], "OUT_OF_SYNC", "{status}");
    assert!(status["reason"].as_str().unwrap().contains(map), "{status}");

    // The diff shows the YAML; reconcile repairs it in one commit.
    let (code, diff) = s.admin(Method::GET, "/api/v1/gitops/diff", None).await;
    assert_eq!(code, StatusCode::OK, "{diff}");
    let diff = diff["diff"].as_str().unwrap().to_owned();
    assert!(
        diff.contains(&format!("--- a/{map}")) && diff.contains(&format!("+++ b/{map}")),
        "{diff}"
    );
    assert!(
        diff.contains("-metadata: {name: edited}") && diff.contains("+  name: ecr-prod"),
        "{diff}"
    );
    assert!(!diff.contains(&keys.secret), "{diff}");
    let (code, queued) = s
        .admin(Method::POST, "/api/v1/gitops/reconcile", None)
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{queued}");
    commit_lands(&bare, "berth: reconcile 3 integrations from Berth").await;
    wait_synced(&s, "ecr-prod").await;
    let (_, diff) = s.admin(Method::GET, "/api/v1/gitops/diff", None).await;
    assert_eq!(diff["diff"], "", "in sync: no difference");

    // Import: a hand-written integration is adopted (and rewritten in Berth's form); one
    // whose keys would be sealed for a cluster is listed as needing them.
    let hand_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ecr-hand\n  namespace: codefresh\ndata:\n  type: ecr\n  name: ecr-hand\n  region: ap-south-1\n  authMode: assume_role\n  roleArn: arn:aws:iam::123456789012:role/deploy\n";
    let keys_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ecr-keys\ndata:\n  type: ecr\n  name: ecr-keys\n  region: us-east-1\n  authMode: access_keys\n";
    git(&hand, &["pull", "--quiet", "--rebase", "origin", "main"]);
    std::fs::write(
        hand.join("resources/runtimes/prod-eu/ecr-hand.yaml"),
        hand_map,
    )
    .unwrap();
    std::fs::write(
        hand.join("resources/runtimes/prod-eu/ecr-keys.yaml"),
        keys_map,
    )
    .unwrap();
    std::fs::write(
        hand.join("resources/runtimes/prod-eu/broken.yaml"),
        "a: [unclosed\n",
    )
    .unwrap();
    push_by_hand(&hand, "by hand");
    let (code, report) = s.admin(Method::POST, "/api/v1/gitops/import", None).await;
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["imported"], json!(["ecr-hand"]), "{report}");
    assert_eq!(
        report["needs_secrets"][0]["integration"], "ecr-keys",
        "{report}"
    );
    assert!(
        report["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not valid YAML"),
        "{report}"
    );
    let (_, hand_view) = s
        .admin(Method::GET, "/api/v1/integrations/ecr-hand", None)
        .await;
    assert_eq!(hand_view["region"], "ap-south-1", "{hand_view}");
    assert_eq!(
        hand_view["runtimes"],
        json!({"selected": ["prod-eu"]}),
        "{hand_view}"
    );
    commit_lands(&bare, "berth: create integration ecr-hand").await;
    assert!(tree(&bare).contains(&"resources/runtimes/prod-eu/ecr-hand.configmap.yaml".to_owned()));

    // An outside edit right before a push (no status read in between) is seen by the push.
    git(&hand, &["pull", "--quiet", "--rebase", "origin", "main"]);
    let adopted = "resources/runtimes/prod-eu/ecr-hand.configmap.yaml";
    std::fs::write(
        hand.join(adopted),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hand}\n",
    )
    .unwrap();
    push_by_hand(&hand, "again by hand");
    let (code, _) = s
        .admin(Method::POST, "/api/v1/gitops/reconcile", None)
        .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    commit_lands(&bare, "berth: reconcile").await;
    assert!(git(&bare, &["show", &format!("main:{adopted}")]).contains("ap-south-1"));

    // Delete: the files go, in one commit.
    assert_eq!(
        s.admin(Method::DELETE, "/api/v1/integrations/ecr-role", None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    commit_lands(&bare, "berth: delete integration ecr-role").await;
    assert!(!tree(&bare).iter().any(|f| f.contains("ecr-role")));

    // An unreachable repository: UNKNOWN, with git's reason.
    let away = root.0.join("away.git");
    std::fs::rename(&bare, &away).unwrap();
    let status = status_of(&s, "ecr-prod").await;
    assert_eq!(status["status"], "UNKNOWN", "{status}");
    std::fs::rename(&away, &bare).unwrap();

    // Neither secret is in the log or anywhere under the data directory (the checkout, the
    // credential cache's socket directory, the database).
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    for secret in [keys.secret.as_str(), push_password.as_str()] {
        assert!(!logged.contains(secret), "a secret was logged");
        for file in files_under(&root.0.join("data")) {
            let bytes = std::fs::read(&file).unwrap_or_default();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a secret",
                file.display()
            );
        }
    }

    // The secret is nowhere in the history, and only sealed in the tree.
    let history = git(&bare, &["log", "-p", "--all"]);
    assert!(
        !history.contains(&keys.secret) && !history.contains(&keys.id),
        "a secret reached Git"
    );
    assert!(git(&bare, &["show", &format!("main:{sealed}")]).contains("kind: SealedSecret"));
    s.stop().await;
}

/// The API against a repository served over smart HTTP with basic auth: a wrong password is
/// refused naming the repository field and nothing is saved; with the right one every change
/// is pushed over HTTP, and the password is nowhere under the data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_over_smart_http_with_basic_auth() {
    let root = TempDir::new("gitops-http-api");
    let password = format!("token-{}", berth_testkit::random_hex(12));
    let Some(server) = berth_testkit::git::SmartHttp::start(&root.0, "ci", &password) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "nginx and fcgiwrap are missing in CI"
        );
        eprintln!(
            "SKIPPED: nginx or fcgiwrap is not installed (scripts/install-peers installs them)"
        );
        return;
    };
    let data = root.0.join("data");
    let s = TestServer::start(options(&data)).await;
    let repo = format!("{}/config.git?ref=main", server.url);
    let wrong = json!({"repo": repo, "username": "ci", "password": "not-the-token"});
    let r = s.admin(Method::PUT, "/api/v1/gitops", Some(wrong)).await;
    assert_error(&r, 422, "repo_unreachable", Some("repo"));
    let said = r.1["error"]["message"].as_str().unwrap();
    assert!(
        said.contains("Authentication failed") || said.contains("401"),
        "{said}"
    );
    assert_error(
        &s.admin(Method::GET, "/api/v1/gitops", None).await,
        404,
        "not_found",
        None,
    );

    // Every git process the probe, clone, fetches and pushes start is watched.
    let watch = berth_testkit::ProcessWatch::start(&password);
    let right = json!({"repo": repo, "username": "ci", "password": password});
    let r = s.admin(Method::PUT, "/api/v1/gitops", Some(right)).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    s.share_ambient("edge", "ecr-http").await;
    commit_lands(&server.bare, "berth: create integration ecr-http").await;
    wait_synced(&s, "ecr-http").await;
    let r = s
        .admin(
            Method::PATCH,
            "/api/v1/integrations/ecr-http",
            Some(json!({"region": "eu-west-1"})),
        )
        .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    commit_lands(&server.bare, "berth: update integration ecr-http").await;
    let scan = watch.finish();
    assert!(
        scan.commands
            .iter()
            .any(|c| ["push", "fetch", "clone", "ls-remote", "remote-http"]
                .iter()
                .any(|op| c.contains(op))),
        "the watch saw git talk to the remote ({} passes): {:?}",
        scan.passes,
        scan.commands
    );
    assert_eq!(
        scan.hits,
        Vec::<String>::new(),
        "the password is in the process list"
    );
    for file in files_under(&data) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "{} holds the password",
            file.display()
        );
    }
    s.stop().await;
}
