//! The local ECR keeping its blobs in S3 (moto's S3 server as the object store): a pushed blob
//! lands under its content-addressed key, a blob GET redirects to a pre-signed URL of the store
//! that serves the bytes without the registry's credentials, and skopeo pulls the image
//! through that redirect unchanged. Outside CI a missing moto or skopeo skips loudly; in CI it
//! fails the test.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use berth_s3::{S3Blobs, S3Settings};
use berth_testkit::{IamToml, LocalEcrFixture, TempDir, peer, random_keys};
use serde_json::json;

struct Moto(Child, String);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn moto() -> Option<Moto> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bin = peer("moto_server")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let moto = Moto(child, format!("http://127.0.0.1:{port}"));
    for _ in 0..100 {
        if reqwest::get(&moto.1).await.is_ok() {
            return Some(moto);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("moto_server did not start");
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", berth_files::hex(&sha2::Sha256::digest(bytes)))
}

/// Uploads `bytes` as a blob of `repo` in one request pair (POST, then PUT with the digest).
async fn upload(
    http: &reqwest::Client,
    ecr: &str,
    auth: &str,
    repo: &str,
    bytes: Vec<u8>,
) -> String {
    let digest = sha256(&bytes);
    let r = http
        .post(format!("{ecr}/v2/{repo}/blobs/uploads/"))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("{ecr}{location}")
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let r = http
        .put(format!("{location}{sep}digest={digest}"))
        .header("authorization", auth)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_live_in_the_object_store_and_downloads_redirect_there() {
    let Some(moto) = moto().await else { return };
    let Some(skopeo) = peer("skopeo") else { return };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // moto checks no signature; the bucket is made with a plain PUT.
    let r = http
        .put(format!("{}/berth-blobs", moto.1))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let store = S3Blobs::new(&S3Settings {
        endpoint: Some(moto.1.clone()),
        region: "us-east-1".into(),
        bucket: "berth-blobs".into(),
        prefix: "registry/".into(),
        credentials: Some(("test-key".into(), "test-secret".into())),
    })
    .await;
    store.check().await.expect("the bucket answers");
    let keys = random_keys("S3US");
    let iam = IamToml::new("123456789012")
        .user("admin", &keys.id, &keys.secret, &["ecr:*"])
        .build();
    let store = Arc::new(store);
    let blobs: Arc<dyn berth_ecr_local::blob_store::BlobStore> = store.clone();
    let ecr = LocalEcrFixture::with_iam("s3-ecr", &iam, |o| {
        o.create_on_push = true;
        o.blob_store = Some(blobs);
    })
    .await;

    // A registry token the way every client gets one: GetAuthorizationToken, through the broker.
    let integration = berth_testkit::integration::EcrFixture::new("s3")
        .endpoint(&ecr.url)
        .auth(berth_core::AwsAuth::AccessKeys {
            access_key_hint: "S3US".into(),
        })
        .build();
    let secrets = berth_testkit::integration::access_keys(&keys.id, &keys.secret);
    let token = berth_aws::Broker::new()
        .credentials(&integration, None, || async {
            Ok::<_, String>(secrets.clone())
        })
        .await
        .unwrap();
    use secrecy::ExposeSecret;
    let password = token.password.expose_secret().to_owned();
    use base64::Engine;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"))
    );

    let layer: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    let layer_digest = upload(&http, &ecr.url, &auth, "team/app", layer.clone()).await;
    let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}).to_string();
    let config_digest = upload(
        &http,
        &ecr.url,
        &auth,
        "team/app",
        config.clone().into_bytes(),
    )
    .await;
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}]})
    .to_string();
    let r = http
        .put(format!("{}/v2/team/app/manifests/v1", ecr.url))
        .header("authorization", &auth)
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);

    // The blob is in the bucket under its content-addressed key, and nowhere on local disk.
    let key = store.key(&layer_digest).unwrap();
    assert!(key.starts_with("registry/blobs/sha256/"), "{key}");
    assert!(store.contains(&layer_digest).await.unwrap());
    assert!(store.contains(&config_digest).await.unwrap());
    let hex = layer_digest.trim_start_matches("sha256:");
    assert!(!ecr.dir.path().join("blobs/sha256").join(hex).exists());

    // A blob GET redirects to the store; the URL alone fetches the bytes.
    let r = http
        .get(format!("{}/v2/team/app/blobs/{layer_digest}", ecr.url))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&moto.1) && location.contains("X-Amz-Signature"),
        "{location}"
    );
    let fetched = reqwest::get(&location)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256(&fetched), layer_digest);
    let head = http
        .head(format!("{}/v2/team/app/blobs/{layer_digest}", ecr.url))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200, "HEAD is answered from the metadata");

    // skopeo, unchanged, pulls the image through the redirects and checks every digest.
    let out = TempDir::new("s3-pull");
    let host = ecr.url.trim_start_matches("http://");
    let o = Command::new(skopeo)
        .args(["copy", "--src-tls-verify=false", "--src-creds"])
        .arg(format!("AWS:{password}"))
        .arg(format!("docker://{host}/team/app:v1"))
        .arg(format!("dir:{}", out.path().display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pulled = std::fs::read(out.path().join(hex)).expect("the layer, as stored");
    assert_eq!(sha256(&pulled), layer_digest);
}
