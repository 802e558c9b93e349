//! The AWS SDK for Rust, unchanged but for `endpoint_url`, against the local ECR: every ECR
//! operation it serves, on its success and error paths, and STS.

use aws_credential_types::Credentials;
use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::{ImageIdentifier, ImageTagMutability, TagStatus};
use berth_testkit::LocalEcrFixture;

struct Local {
    url: String,
    creds: Credentials,
    _ecr: LocalEcrFixture,
}

/// The local ECR as `berth up` starts it, and its demo user's keys.
async fn local() -> Local {
    let ecr = LocalEcrFixture::seeded("sdk").await;
    let keys = ecr.demo_keys();
    Local {
        url: ecr.url.clone(),
        creds: Credentials::new(keys.id, keys.secret, None, None, "test"),
        _ecr: ecr,
    }
}

async fn sdk_config(l: &Local, creds: Credentials) -> aws_config::SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_ecr::config::Region::new("us-east-1"))
        .endpoint_url(&l.url)
        .credentials_provider(creds)
        .http_client(http)
        .load()
        .await
}

fn sha256(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest
        .as_ref()
        .iter()
        .fold(String::from("sha256:"), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ecr_operation_through_the_sdk() {
    let l = local().await;
    let ecr = aws_sdk_ecr::Client::new(&sdk_config(&l, l.creds.clone()).await);
    let repo = "team/sdk";

    let created = ecr
        .create_repository()
        .repository_name(repo)
        .image_tag_mutability(ImageTagMutability::Immutable)
        .send()
        .await
        .unwrap();
    assert_eq!(created.repository().unwrap().repository_name(), Some(repo));
    let dup = ecr
        .create_repository()
        .repository_name(repo)
        .send()
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Some("RepositoryAlreadyExistsException"));
    let described = ecr
        .describe_repositories()
        .repository_names(repo)
        .send()
        .await
        .unwrap();
    assert_eq!(described.repositories().len(), 1);
    let missing = ecr
        .describe_repositories()
        .repository_names("team/none")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("RepositoryNotFoundException"));
    let token = ecr.get_authorization_token().send().await.unwrap();
    assert_eq!(
        token.authorization_data()[0].proxy_endpoint(),
        Some(l.url.as_str())
    );

    // Two layers through the layer-upload API: a config and one layer.
    let mut digests = Vec::new();
    for bytes in [
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec(),
        b"layer bytes".to_vec(),
    ] {
        let digest = sha256(&bytes);
        let check = ecr
            .batch_check_layer_availability()
            .repository_name(repo)
            .layer_digests(&digest)
            .send()
            .await
            .unwrap();
        assert_eq!(
            check.failures()[0].failure_code().map(|c| c.as_str()),
            Some("MissingLayerDigest")
        );
        let up = ecr
            .initiate_layer_upload()
            .repository_name(repo)
            .send()
            .await
            .unwrap();
        let id = up.upload_id().unwrap().to_owned();
        ecr.upload_layer_part()
            .repository_name(repo)
            .upload_id(&id)
            .part_first_byte(0)
            .part_last_byte(bytes.len() as i64 - 1)
            .layer_part_blob(Blob::new(bytes.clone()))
            .send()
            .await
            .unwrap();
        let done = ecr
            .complete_layer_upload()
            .repository_name(repo)
            .upload_id(&id)
            .layer_digests(&digest)
            .send()
            .await
            .unwrap();
        assert_eq!(done.layer_digest(), Some(digest.as_str()));
        let check = ecr
            .batch_check_layer_availability()
            .repository_name(repo)
            .layer_digests(&digest)
            .send()
            .await
            .unwrap();
        assert_eq!(check.layers()[0].layer_size(), Some(bytes.len() as i64));
        let url = ecr
            .get_download_url_for_layer()
            .repository_name(repo)
            .layer_digest(&digest)
            .send()
            .await
            .unwrap();
        assert!(url.download_url().unwrap().contains(&digest));
        digests.push((digest, bytes.len()));
    }
    let bad = ecr
        .upload_layer_part()
        .repository_name(repo)
        .upload_id("nope")
        .part_first_byte(0)
        .part_last_byte(0)
        .layer_part_blob(Blob::new(vec![1]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some("UploadNotFoundException"));

    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
        digests[0].0, digests[0].1, digests[1].0, digests[1].1
    );
    let put = ecr
        .put_image()
        .repository_name(repo)
        .image_tag("v1")
        .image_manifest(&manifest)
        .send()
        .await
        .unwrap();
    let digest = put
        .image()
        .unwrap()
        .image_id()
        .unwrap()
        .image_digest()
        .unwrap()
        .to_owned();
    assert_eq!(digest, sha256(manifest.as_bytes()));
    let again = ecr
        .put_image()
        .repository_name(repo)
        .image_tag("v1")
        .image_manifest(manifest.replace("\"v\"", ""))
        .send()
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some("ImageAlreadyExistsException"));
    let missing_layer = manifest.replace(&digests[1].0, &sha256(b"absent"));
    let e = ecr
        .put_image()
        .repository_name(repo)
        .image_tag("v2")
        .image_manifest(missing_layer)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("LayersNotFoundException"));

    let listed = ecr
        .list_images()
        .repository_name(repo)
        .filter(
            aws_sdk_ecr::types::ListImagesFilter::builder()
                .tag_status(TagStatus::Tagged)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(listed.image_ids()[0].image_tag(), Some("v1"));
    let details = ecr
        .describe_images()
        .repository_name(repo)
        .send()
        .await
        .unwrap();
    let d = &details.image_details()[0];
    assert_eq!(
        d.image_size_in_bytes(),
        Some((digests[0].1 + digests[1].1) as i64)
    );
    assert!(d.image_pushed_at().is_some());
    let tag = |t: &str| ImageIdentifier::builder().image_tag(t).build();
    let got = ecr
        .batch_get_image()
        .repository_name(repo)
        .image_ids(tag("v1"))
        .image_ids(tag("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.images()[0].image_manifest(), Some(manifest.as_str()));
    assert_eq!(
        got.failures()[0].failure_code().map(|c| c.as_str()),
        Some("ImageNotFound")
    );
    let e = ecr
        .describe_images()
        .repository_name(repo)
        .image_ids(tag("nope"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ImageNotFoundException"));

    let e = ecr
        .delete_repository()
        .repository_name(repo)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("RepositoryNotEmptyException"));
    let deleted = ecr
        .batch_delete_image()
        .repository_name(repo)
        .image_ids(tag("v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.image_ids().len(), 1);
    ecr.delete_repository()
        .repository_name(repo)
        .force(true)
        .send()
        .await
        .unwrap();

    // A wrong secret fails with ECR's code.
    let wrong = Credentials::new(l.creds.access_key_id(), "wrong", None, None, "test");
    let e = aws_sdk_ecr::Client::new(&sdk_config(&l, wrong).await)
        .describe_repositories()
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidSignatureException"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_through_the_sdk() {
    let l = local().await;
    let sts = aws_sdk_sts::Client::new(&sdk_config(&l, l.creds.clone()).await);
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(me.arn(), Some("arn:aws:iam::123456789012:user/demo"));
    let role = sts
        .assume_role()
        .role_arn("arn:aws:iam::123456789012:role/demo-role")
        .role_session_name("sdk")
        .send()
        .await
        .unwrap();
    let c = role.credentials().unwrap();
    assert!(c.access_key_id().starts_with("ASIA"));
    let as_role = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "role",
    );
    let sts_role = aws_sdk_sts::Client::new(&sdk_config(&l, as_role.clone()).await);
    assert_eq!(
        sts_role.get_caller_identity().send().await.unwrap().arn(),
        Some("arn:aws:sts::123456789012:assumed-role/demo-role/sdk")
    );
    let ecr = aws_sdk_ecr::Client::new(&sdk_config(&l, as_role).await);
    ecr.create_repository()
        .repository_name("team/by-role")
        .send()
        .await
        .unwrap();
    let e = sts
        .assume_role()
        .role_arn("arn:aws:iam::123456789012:role/absent")
        .role_session_name("sdk")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("AccessDenied"));
    let e = sts
        .assume_role()
        .role_arn("arn:aws:iam::123456789012:role/demo-role")
        .role_session_name("sdk")
        .duration_seconds(60)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"));
}
