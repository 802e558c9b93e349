//! AssumeRoleWithWebIdentity (the IRSA and CI-OIDC flow): a JWT signed with a key generated for
//! this test by openssl is exchanged for role credentials, which then work on the ECR API; bad,
//! expired, foreign and untrusted tokens are refused with STS's codes.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_testkit::TempDir;
use common::{Keys, start_with};
use serde_json::json;

const ISSUER: &str = "https://oidc.ci.example";

struct Signer {
    dir: TempDir,
    n: String,
}

impl Signer {
    fn new() -> Option<Signer> {
        let dir = TempDir::new("oidc-key");
        let key = dir.0.join("key.pem");
        let generated = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048")
            .output()
            .ok()?;
        if !generated.status.success() {
            return None;
        }
        let m = Command::new("openssl")
            .args(["rsa", "-noout", "-modulus", "-in"])
            .arg(&key)
            .output()
            .unwrap();
        let hex = String::from_utf8(m.stdout)
            .unwrap()
            .trim()
            .trim_start_matches("Modulus=")
            .to_owned();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        Some(Signer {
            n: URL_SAFE_NO_PAD.encode(bytes),
            dir,
        })
    }

    fn jwt(&self, claims: serde_json::Value) -> String {
        let header =
            URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{payload}");
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(self.dir.0.join("key.pem"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(out.stdout))
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn exchange(e: &common::Ecr, role: &str, token: &str) -> (u16, String) {
    let body = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2F{role}&RoleSessionName=gh-run&WebIdentityToken={token}"
    );
    let r = e
        .http
        .post(format!("{}/", e.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn grab(text: &str, tag: &str) -> String {
    let start = text.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
    let end = text.find(&format!("</{tag}>")).unwrap();
    text[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_identity_tokens_become_role_credentials() {
    let Some(signer) = Signer::new() else {
        berth_testkit::unavailable("openssl", "Debian's openssl package provides it");
        return;
    };
    let extra = format!(
        r#"
[[roles]]
name = "ci-oidc"
trust = ["arn:aws:iam::123456789012:oidc-provider/oidc.ci.example"]
web_identity_subjects = ["repo:acme/*"]
policy = {{ actions = ["ecr:*"] }}
[[oidc_providers]]
issuer = "{ISSUER}"
audiences = ["sts.amazonaws.com"]
keys = [{{ kid = "k1", n = "{}", e = "AQAB" }}]
"#,
        signer.n
    );
    let e = start_with("oidc", Duration::from_secs(3600), &extra).await;
    let claims = |sub: &str, exp: i64| json!({"iss": ISSUER, "sub": sub, "aud": "sts.amazonaws.com", "iat": now(), "exp": exp});

    let good = signer.jwt(claims("repo:acme/web:ref:refs/heads/main", now() + 600));
    let (s, text) = exchange(&e, "ci-oidc", &good).await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(
        grab(&text, "SubjectFromWebIdentityToken"),
        "repo:acme/web:ref:refs/heads/main"
    );
    let session = Keys {
        id: grab(&text, "AccessKeyId"),
        secret: grab(&text, "SecretAccessKey"),
        token: Some(grab(&text, "SessionToken")),
    };
    let (s, v) = e
        .ecr(
            &session,
            "CreateRepository",
            json!({"repositoryName": "team/oidc"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    let (s, text) = exchange(
        &e,
        "ci-oidc",
        &signer.jwt(claims("repo:evil/web", now() + 600)),
    )
    .await;
    assert_eq!(s, 403);
    assert!(text.contains("<Code>AccessDenied</Code>"), "{text}");
    let (_, text) = exchange(
        &e,
        "ci-oidc",
        &signer.jwt(claims("repo:acme/web", now() - 10)),
    )
    .await;
    assert!(
        text.contains("<Code>ExpiredTokenException</Code>"),
        "{text}"
    );
    let mut tampered = good.clone();
    let at = tampered.find('.').unwrap() + 5;
    tampered.replace_range(at..at + 1, if &good[at..at + 1] == "A" { "B" } else { "A" });
    let (_, text) = exchange(&e, "ci-oidc", &tampered).await;
    assert!(text.contains("<Code>InvalidIdentityToken</Code>"), "{text}");
    let foreign = signer.jwt(json!({"iss": "https://elsewhere.example", "sub": "x", "aud": "sts.amazonaws.com", "exp": now() + 600}));
    let (_, text) = exchange(&e, "ci-oidc", &foreign).await;
    assert!(text.contains("<Code>InvalidIdentityToken</Code>"), "{text}");
    let (s, _) = exchange(&e, "pusher", &good).await;
    assert_eq!(s, 403, "a role that does not trust the provider refuses");
}
