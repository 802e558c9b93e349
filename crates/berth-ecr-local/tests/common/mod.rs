//! Test support: a local ECR on port 0 with a known IAM configuration, a SigV4-signing client
//! for its control plane, and a registry client with its tokens.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use berth_ecr_local::LocalEcrOptions;
use berth_ecr_local::sigv4::{
    Authorization, RequestParts, canonical_request, expected_signature, sha256_hex,
};
use berth_testkit::{IamToml, LocalEcrFixture};
use serde_json::{Value, json};

pub const ACCOUNT: &str = "123456789012";

/// Credentials a request is signed with: access keys, or a session from STS.
pub struct Keys {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
}

/// Keys generated per run, so nothing key-shaped is committed.
pub fn keys(tag: &str) -> Keys {
    let k = berth_testkit::random_keys(tag);
    Keys {
        id: k.id,
        secret: k.secret,
        token: None,
    }
}

/// The local ECR under test, its users' keys and a client for it.
pub struct Ecr {
    pub url: String,
    pub admin: Keys,
    pub reader: Keys,
    pub http: reqwest::Client,
    fixture: LocalEcrFixture,
}

impl Ecr {
    /// Its data directory.
    pub fn dir(&self) -> &Path {
        self.fixture.dir.path()
    }
}

/// Starts a local ECR with users `admin` (everything), `reader` (pull only, `team/*`), roles
/// `pusher` (trusts admin, ExternalId `ext-1`) and `nobody` (trusts no one).
pub async fn start(tag: &str, token_ttl: Duration) -> Ecr {
    start_with(tag, token_ttl, "").await
}

/// As [`start`], with more TOML appended to `iam.toml`.
pub async fn start_with(tag: &str, token_ttl: Duration, extra_iam: &str) -> Ecr {
    start_configured(tag, token_ttl, extra_iam, |_| {}).await
}

/// As [`start_with`], with the options changed by `configure` first.
pub async fn start_configured(
    tag: &str,
    token_ttl: Duration,
    extra_iam: &str,
    configure: impl FnOnce(&mut LocalEcrOptions),
) -> Ecr {
    let admin = keys("ADMN");
    let reader = keys("READ");
    let iam = IamToml::new(ACCOUNT)
        .user(
            "admin",
            &admin.id,
            &admin.secret,
            &["ecr:*", "sts:AssumeRole", "iam:GetRole"],
        )
        .user_in(
            "reader",
            &reader.id,
            &reader.secret,
            &[
                "ecr:GetAuthorizationToken",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:DescribeRepositories",
                "ecr:DescribeImages",
                "ecr:ListImages",
                "ecr:BatchCheckLayerAvailability",
            ],
            Some(&["team/*"]),
        )
        .role(
            "pusher",
            &[&format!("arn:aws:iam::{ACCOUNT}:user/admin")],
            Some("ext-1"),
            &["ecr:*"],
        )
        .role("nobody", &[], None, &[])
        .build();
    let fixture = LocalEcrFixture::with_iam(tag, &format!("{iam}\n{extra_iam}"), |o| {
        o.token_ttl = token_ttl;
        configure(o);
    })
    .await;
    Ecr {
        url: fixture.url.clone(),
        admin,
        reader,
        http: reqwest::Client::new(),
        fixture,
    }
}

/// How [`Ecr::signed_with`] departs from a correct signature.
#[derive(Default)]
pub struct Signing<'a> {
    /// Headers sent but left out of `SignedHeaders`.
    pub unsigned: &'a [&'a str],
    /// The credential scope's service (default: `ecr` or `sts`).
    pub service: Option<&'a str>,
    /// The credential scope's region (default `us-east-1`).
    pub region: Option<&'a str>,
}

fn amz_date(epoch: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch).unwrap();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl Ecr {
    pub fn host(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// A SigV4-signed `POST /` (`target` set: ECR JSON; else STS form), signed `skew` seconds ago.
    pub async fn signed(
        &self,
        keys: &Keys,
        target: Option<&str>,
        body: &str,
        skew: i64,
    ) -> (u16, String, Option<String>) {
        self.signed_with(keys, target, body, skew, &Signing::default())
            .await
    }

    /// As [`Ecr::signed`], signed the way `how` says (headers left out, another scope).
    pub async fn signed_with(
        &self,
        keys: &Keys,
        target: Option<&str>,
        body: &str,
        skew: i64,
        how: &Signing<'_>,
    ) -> (u16, String, Option<String>) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp() - skew;
        let date = amz_date(now);
        let default_service = if target.is_some() { "ecr" } else { "sts" };
        let service = how.service.unwrap_or(default_service);
        let region = how.region.unwrap_or("us-east-1");
        let content_type = if target.is_some() {
            "application/x-amz-json-1.1"
        } else {
            "application/x-www-form-urlencoded"
        };
        let mut headers: Vec<(String, String)> = vec![
            ("content-type".into(), content_type.into()),
            ("host".into(), self.host().into()),
            ("x-amz-date".into(), date.clone()),
        ];
        if let Some(t) = target {
            headers.push((
                "x-amz-target".into(),
                format!("AmazonEC2ContainerRegistry_V20150921.{t}"),
            ));
        }
        if let Some(t) = &keys.token {
            headers.push(("x-amz-security-token".into(), t.clone()));
        }
        let signed: Vec<String> = {
            let mut n: Vec<String> = headers
                .iter()
                .map(|(n, _)| n.clone())
                .filter(|n| !how.unsigned.contains(&n.as_str()))
                .collect();
            n.sort();
            n
        };
        let auth = Authorization {
            access_key_id: keys.id.clone(),
            date: date[..8].to_owned(),
            region: region.into(),
            service: service.into(),
            signed_headers: signed.clone(),
            signature: String::new(),
        };
        let parts = RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers: headers
                .iter()
                .map(|(n, v)| (n.clone(), v.as_str()))
                .collect(),
            payload_sha256: sha256_hex(body.as_bytes()),
        };
        let signature = expected_signature(
            &keys.secret,
            &date,
            &auth,
            &canonical_request(&parts, &auth),
        );
        let mut req = self
            .http
            .post(format!("{}/", self.url))
            .body(body.to_owned());
        for (n, v) in &headers {
            if n != "host" {
                req = req.header(n, v);
            }
        }
        req = req.header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{}/{region}/{service}/aws4_request, SignedHeaders={}, Signature={signature}",
                keys.id,
                &date[..8],
                signed.join(";")
            ),
        );
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let errortype = resp
            .headers()
            .get("x-amzn-errortype")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, resp.text().await.unwrap(), errortype)
    }

    /// Calls an ECR operation as `keys`; returns (status, body as JSON).
    pub async fn ecr(&self, keys: &Keys, op: &str, body: Value) -> (u16, Value) {
        let (status, text, _) = self.signed(keys, Some(op), &body.to_string(), 0).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn create_repo(&self, name: &str, mutability: &str) {
        let (s, v) = self
            .ecr(
                &self.admin,
                "CreateRepository",
                json!({"repositoryName": name, "imageTagMutability": mutability}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }

    /// A monolithic blob upload (`POST …/blobs/uploads/?digest=`); returns the digest.
    pub async fn push_blob(&self, password: &str, repo: &str, bytes: &[u8]) -> String {
        let d = sha256(bytes);
        let r = self
            .v2(
                reqwest::Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                password,
            )
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        d
    }

    /// The registry password from GetAuthorizationToken.
    pub async fn password(&self, keys: &Keys) -> String {
        let (s, v) = self.ecr(keys, "GetAuthorizationToken", json!({})).await;
        assert_eq!(s, 200, "{v}");
        let token = v["authorizationData"][0]["authorizationToken"]
            .as_str()
            .unwrap();
        let decoded = String::from_utf8(B64.decode(token).unwrap()).unwrap();
        decoded.strip_prefix("AWS:").unwrap().to_owned()
    }

    pub fn v2(
        &self,
        method: reqwest::Method,
        path: &str,
        password: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .basic_auth("AWS", Some(password))
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    getrandom::fill(&mut v).unwrap();
    v
}

/// Writes an OCI image layout with `layers` random layers under `dir` (tag `latest`); returns
/// the manifest digest.
pub fn write_oci_layout(dir: &Path, layers: &[usize]) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = sha256(bytes);
        std::fs::write(blobs.join(d.trim_start_matches("sha256:")), bytes).unwrap();
        d
    };
    let mut layer_descs = Vec::new();
    let mut diff_ids = Vec::new();
    for size in layers {
        // Real gzip: skopeo sniffs layers and would recompress anything else.
        let raw = random_bytes(*size);
        diff_ids.push(sha256(&raw));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let bytes = gz.finish().unwrap();
        let d = put(&bytes);
        layer_descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": bytes.len()}));
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {}
    }))
    .unwrap();
    let config_digest = put(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layer_descs,
    }))
    .unwrap();
    let manifest_digest = put(&manifest);
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"}
        }]}))
        .unwrap(),
    )
    .unwrap();
    manifest_digest
}

/// Rewrites the layout at `dir` (made by [`write_oci_layout`]) into a two-platform OCI index
/// whose entries are the original manifest and a second image; returns the index digest.
pub fn make_index_layout(dir: &Path, second: &Path) -> String {
    let read_index = |d: &Path| -> Value {
        serde_json::from_slice(&std::fs::read(d.join("index.json")).unwrap()).unwrap()
    };
    let first = read_index(dir)["manifests"][0].clone();
    let other = read_index(second)["manifests"][0].clone();
    // Bring the second image's blobs over.
    for entry in std::fs::read_dir(second.join("blobs/sha256")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.join("blobs/sha256").join(p.file_name().unwrap())).unwrap();
    }
    let entry = |m: &Value, arch: &str| json!({"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"], "platform": {"architecture": arch, "os": "linux"}});
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&first, "amd64"), entry(&other, "arm64")],
    }))
    .unwrap();
    let digest = sha256(&index);
    std::fs::write(
        dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
        &index,
    )
    .unwrap();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"}
        }]}))
        .unwrap(),
    )
    .unwrap();
    digest
}
