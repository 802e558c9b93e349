//! The ECR JSON API and STS over HTTP: SigV4 refusals with AWS's codes, bad input with ECR's
//! errors and messages, policies, and roles assumed and used.

mod common;

use std::time::Duration;

use common::{Keys, start};
use serde_json::{Value, json};

const HOURS: Duration = Duration::from_secs(12 * 3600);

fn error_type(v: &Value) -> &str {
    v["__type"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_checked_like_aws() {
    let e = start("sig", HOURS).await;
    let body = json!({}).to_string();

    // No signature at all.
    let r = e
        .http
        .post(format!("{}/", e.url))
        .header(
            "x-amz-target",
            "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
        )
        .header("content-type", "application/x-amz-json-1.1")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );

    // Unknown key, wrong secret, a signature from 20 minutes ago (a replay), for ECR and STS.
    let stranger = common::keys("NOPE");
    let (s, text, t) = e
        .signed(&stranger, Some("DescribeRepositories"), &body, 0)
        .await;
    assert_eq!(
        (s, t.as_deref()),
        (400, Some("UnrecognizedClientException")),
        "{text}"
    );
    let wrong = Keys {
        id: e.admin.id.clone(),
        secret: "not-the-secret".into(),
        token: None,
    };
    let (s, text, t) = e
        .signed(&wrong, Some("DescribeRepositories"), &body, 0)
        .await;
    assert_eq!(
        (s, t.as_deref()),
        (403, Some("InvalidSignatureException")),
        "{text}"
    );
    assert!(text.contains("does not match the signature you provided"));
    let (_, text, t) = e
        .signed(&e.admin, Some("DescribeRepositories"), &body, 20 * 60)
        .await;
    assert_eq!(t.as_deref(), Some("InvalidSignatureException"));
    assert!(text.contains("Signature expired"), "{text}");
    let (s, text, _) = e
        .signed(
            &wrong,
            None,
            "Action=GetCallerIdentity&Version=2011-06-15",
            0,
        )
        .await;
    assert_eq!(s, 403);
    assert!(
        text.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{text}"
    );
    let (_, text, _) = e
        .signed(
            &stranger,
            None,
            "Action=GetCallerIdentity&Version=2011-06-15",
            0,
        )
        .await;
    assert!(text.contains("<Code>InvalidClientTokenId</Code>"), "{text}");
    let (s, text, _) = e
        .signed(
            &e.admin,
            None,
            "Action=GetCallerIdentity&Version=2011-06-15",
            0,
        )
        .await;
    assert_eq!(s, 200);
    assert!(
        text.contains("<Arn>arn:aws:iam::123456789012:user/admin</Arn>"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_ecrs_errors_and_changes_nothing() {
    let e = start("input", HOURS).await;
    let (s, text, t) = e
        .signed(&e.admin, Some("CreateRepository"), "{not json", 0)
        .await;
    assert_eq!(
        (s, t.as_deref()),
        (400, Some("SerializationException")),
        "{text}"
    );
    let (_, _, t) = e.signed(&e.admin, Some("FlyToTheMoon"), "{}", 0).await;
    assert_eq!(t.as_deref(), Some("UnknownOperationException"));
    let (_, v) = e.ecr(&e.admin, "CreateRepository", json!({})).await;
    assert_eq!(error_type(&v), "InvalidParameterException");
    assert!(v["message"].as_str().unwrap().contains("repositoryName"));
    let (_, v) = e
        .ecr(
            &e.admin,
            "CreateRepository",
            json!({"repositoryName": "Bad_Name/"}),
        )
        .await;
    assert_eq!(error_type(&v), "InvalidParameterException");
    let (_, v) = e
        .ecr(
            &e.admin,
            "CreateRepository",
            json!({"repositoryName": "team/app", "imageTagMutability": "SOMETIMES"}),
        )
        .await;
    assert_eq!(error_type(&v), "InvalidParameterException");
    e.create_repo("team/app", "MUTABLE").await;
    let (_, v) = e
        .ecr(
            &e.admin,
            "CreateRepository",
            json!({"repositoryName": "team/app"}),
        )
        .await;
    assert_eq!(error_type(&v), "RepositoryAlreadyExistsException");
    assert_eq!(
        v["message"],
        "The repository with name 'team/app' already exists in the registry with id '123456789012'"
    );
    let (_, v) = e
        .ecr(
            &e.admin,
            "DescribeRepositories",
            json!({"repositoryNames": ["team/none"]}),
        )
        .await;
    assert_eq!(error_type(&v), "RepositoryNotFoundException");
    assert_eq!(
        v["message"],
        "The repository with name 'team/none' does not exist in the registry with id '123456789012'"
    );

    let digests: Vec<String> = (0..101).map(|i| format!("sha256:{i:064x}")).collect();
    let (_, v) = e
        .ecr(
            &e.admin,
            "BatchCheckLayerAvailability",
            json!({"repositoryName": "team/app", "layerDigests": digests}),
        )
        .await;
    assert_eq!(error_type(&v), "InvalidParameterException");
    let (_, v) = e
        .ecr(
            &e.admin,
            "BatchCheckLayerAvailability",
            json!({"repositoryName": "team/app", "layerDigests": [format!("sha256:{:064x}", 1)]}),
        )
        .await;
    assert_eq!(v["failures"][0]["failureCode"], "MissingLayerDigest");

    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{:064x}", 7), "size": 3}, "layers": []});
    let (_, v) = e.ecr(&e.admin, "PutImage", json!({"repositoryName": "team/app", "imageTag": "v1", "imageManifest": manifest.to_string()})).await;
    assert_eq!(error_type(&v), "LayersNotFoundException", "{v}");
    let (_, v) = e
        .ecr(
            &e.admin,
            "PutImage",
            json!({"repositoryName": "team/app", "imageManifest": "not a manifest"}),
        )
        .await;
    assert_eq!(error_type(&v), "InvalidParameterException");

    // Layer upload through the API: parts, a mismatched digest, then the right one.
    let (_, v) = e
        .ecr(
            &e.admin,
            "InitiateLayerUpload",
            json!({"repositoryName": "team/app"}),
        )
        .await;
    let upload = v["uploadId"].as_str().unwrap().to_owned();
    use base64::Engine;
    let part = base64::engine::general_purpose::STANDARD.encode(b"hello layer");
    let (_, v) = e.ecr(&e.admin, "UploadLayerPart", json!({"repositoryName": "team/app", "uploadId": upload, "partFirstByte": 5, "partLastByte": 15, "layerPartBlob": part})).await;
    assert_eq!(error_type(&v), "InvalidLayerPartException");
    let (s, v) = e.ecr(&e.admin, "UploadLayerPart", json!({"repositoryName": "team/app", "uploadId": upload, "partFirstByte": 0, "partLastByte": 10, "layerPartBlob": part})).await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = e.ecr(&e.admin, "UploadLayerPart", json!({"repositoryName": "team/app", "uploadId": upload, "partFirstByte": 11, "partLastByte": 21, "layerPartBlob": part})).await;
    assert_eq!(
        error_type(&v),
        "LayerPartTooSmallException",
        "only the last part may be under 5 MiB"
    );
    let (_, v) = e.ecr(&e.admin, "CompleteLayerUpload", json!({"repositoryName": "team/app", "uploadId": upload, "layerDigests": [common::sha256(b"hello layer")]})).await;
    assert_eq!(v["layerDigest"], common::sha256(b"hello layer"));
    let (_, v) = e
        .ecr(
            &e.admin,
            "GetDownloadUrlForLayer",
            json!({"repositoryName": "team/app", "layerDigest": common::sha256(b"hello layer")}),
        )
        .await;
    let url = v["downloadUrl"].as_str().unwrap();
    assert_eq!(
        e.http
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        b"hello layer"
    );

    // Delete refuses a repository with images unless forced.
    let config = b"{}";
    let (_, v) = e
        .ecr(
            &e.admin,
            "InitiateLayerUpload",
            json!({"repositoryName": "team/app"}),
        )
        .await;
    let upload = v["uploadId"].as_str().unwrap().to_owned();
    let blob = base64::engine::general_purpose::STANDARD.encode(config);
    e.ecr(&e.admin, "UploadLayerPart", json!({"repositoryName": "team/app", "uploadId": upload, "partFirstByte": 0, "partLastByte": 1, "layerPartBlob": blob})).await;
    e.ecr(&e.admin, "CompleteLayerUpload", json!({"repositoryName": "team/app", "uploadId": upload, "layerDigests": [common::sha256(config)]})).await;
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": common::sha256(config), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": common::sha256(b"hello layer"), "size": 11}]});
    let (s, v) = e.ecr(&e.admin, "PutImage", json!({"repositoryName": "team/app", "imageTag": "v1", "imageManifest": manifest.to_string()})).await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = e.ecr(&e.admin, "PutImage", json!({"repositoryName": "team/app", "imageTag": "v1", "imageManifest": manifest.to_string()})).await;
    assert_eq!(error_type(&v), "ImageAlreadyExistsException");
    let (_, v) = e
        .ecr(
            &e.admin,
            "ListImages",
            json!({"repositoryName": "team/app", "filter": {"tagStatus": "TAGGED"}}),
        )
        .await;
    assert_eq!(v["imageIds"][0]["imageTag"], "v1");
    let (_, v) = e
        .ecr(
            &e.admin,
            "DeleteRepository",
            json!({"repositoryName": "team/app"}),
        )
        .await;
    assert_eq!(error_type(&v), "RepositoryNotEmptyException");
    let (s, _) = e
        .ecr(
            &e.admin,
            "DeleteRepository",
            json!({"repositoryName": "team/app", "force": true}),
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_and_roles() {
    let e = start("roles", HOURS).await;
    e.create_repo("other/app", "MUTABLE").await;
    e.create_repo("team/app", "MUTABLE").await;
    let (_, v) = e
        .ecr(
            &e.reader,
            "CreateRepository",
            json!({"repositoryName": "team/new"}),
        )
        .await;
    assert_eq!(error_type(&v), "AccessDeniedException");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("is not authorized to perform: ecr:CreateRepository")
    );
    let (_, v) = e
        .ecr(
            &e.reader,
            "DescribeImages",
            json!({"repositoryName": "other/app"}),
        )
        .await;
    assert_eq!(error_type(&v), "AccessDeniedException");
    let (s, _) = e
        .ecr(
            &e.reader,
            "DescribeImages",
            json!({"repositoryName": "team/app"}),
        )
        .await;
    assert_eq!(s, 200);
    // GetAuthorizationToken is account-wide.
    assert!(!e.password(&e.reader).await.is_empty());

    let assume = |role: &str, extra: &str| {
        format!(
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2F{role}&RoleSessionName=ci-1{extra}"
        )
    };
    let (s, text, _) = e.signed(&e.admin, None, &assume("nobody", ""), 0).await;
    assert_eq!(s, 403);
    assert!(text.contains("<Code>AccessDenied</Code>"), "{text}");
    let (s, _, _) = e.signed(&e.admin, None, &assume("pusher", ""), 0).await;
    assert_eq!(s, 403, "ExternalId is required by the role");
    let (s, _, _) = e
        .signed(&e.admin, None, &assume("pusher", "&ExternalId=wrong"), 0)
        .await;
    assert_eq!(s, 403);
    let (s, text, _) = e
        .signed(
            &e.admin,
            None,
            &assume("pusher", "&ExternalId=ext-1&DurationSeconds=60"),
            0,
        )
        .await;
    assert_eq!(s, 400);
    assert!(text.contains("<Code>ValidationError</Code>"), "{text}");
    let (s, text, _) = e
        .signed(&e.reader, None, &assume("pusher", "&ExternalId=ext-1"), 0)
        .await;
    assert_eq!(s, 403, "the reader is not trusted: {text}");

    let (s, text, _) = e
        .signed(
            &e.admin,
            None,
            &assume("pusher", "&ExternalId=ext-1&DurationSeconds=900"),
            0,
        )
        .await;
    assert_eq!(s, 200, "{text}");
    let grab = |tag: &str| {
        let start = text.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
        let end = text.find(&format!("</{tag}>")).unwrap();
        text[start..end].to_owned()
    };
    let session = Keys {
        id: grab("AccessKeyId"),
        secret: grab("SecretAccessKey"),
        token: Some(grab("SessionToken")),
    };
    assert!(session.id.starts_with("ASIA"));
    let (s, v) = e
        .ecr(
            &session,
            "CreateRepository",
            json!({"repositoryName": "team/by-role"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, text, _) = e
        .signed(
            &session,
            None,
            "Action=GetCallerIdentity&Version=2011-06-15",
            0,
        )
        .await;
    assert!(text.contains("assumed-role/pusher/ci-1"), "{text}");
    let forged = Keys {
        token: Some("0".repeat(128)),
        ..Keys {
            id: session.id.clone(),
            secret: session.secret.clone(),
            token: None,
        }
    };
    let (_, v) = e.ecr(&forged, "DescribeRepositories", json!({})).await;
    assert_eq!(
        error_type(&v),
        "UnrecognizedClientException",
        "a session key needs its own token"
    );
}

/// A failure inside the service (here: the upload directory cannot be written) is ECR's
/// `ServerException`: HTTP 500, the `x-amzn-errortype` header, a generic message that leaks no
/// path or cause, and the service works again once the fault is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_failures_are_server_exceptions_that_leak_nothing() {
    let e = start("server", HOURS).await;
    e.create_repo("team/app", "MUTABLE").await;
    let uploads = e.dir().join("uploads");
    let moved = e.dir().join("uploads.moved");
    std::fs::rename(&uploads, &moved).unwrap();
    // A file where the directory was: even root cannot create files inside it.
    std::fs::write(&uploads, b"not a directory").unwrap();
    let body = json!({"repositoryName": "team/app"}).to_string();
    let (status, text, errortype) = e
        .signed(&e.admin, Some("InitiateLayerUpload"), &body, 0)
        .await;
    assert_eq!(
        (status, errortype.as_deref()),
        (500, Some("ServerException")),
        "{text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(error_type(&v), "ServerException");
    assert_eq!(v["message"], "An internal error occurred.");
    assert!(
        !text.contains("uploads") && !text.contains("directory"),
        "{text}"
    );
    std::fs::remove_file(&uploads).unwrap();
    std::fs::rename(&moved, &uploads).unwrap();
    let (s, v) = e
        .ecr(
            &e.admin,
            "InitiateLayerUpload",
            json!({"repositoryName": "team/app"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["uploadId"].is_string(), "{v}");
}
