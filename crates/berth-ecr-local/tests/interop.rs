//! Independent clients against the local ECR: the AWS CLI, boto3 and skopeo, unchanged, pointed
//! at it. Outside CI a missing peer skips its test loudly; in CI (`CI` set) it fails it.
//! `scripts/install-peers` installs them.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use berth_testkit::{TempDir, peer};
use common::{Ecr, make_index_layout, start, write_oci_layout};
use serde_json::Value;

const HOURS: Duration = Duration::from_secs(12 * 3600);

fn credentials(e: &Ecr) -> std::path::PathBuf {
    let path = e.dir().join("test-credentials");
    std::fs::write(
        &path,
        format!(
            "[admin]\naws_access_key_id = {}\naws_secret_access_key = {}\n[reader]\naws_access_key_id = {}\naws_secret_access_key = {}\n[wrong]\naws_access_key_id = {}\naws_secret_access_key = definitely-wrong\n",
            e.admin.id, e.admin.secret, e.reader.id, e.reader.secret, e.admin.id
        ),
    )
    .unwrap();
    path
}

fn aws(bin: &Path, e: &Ecr, profile: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args([
            "--profile",
            profile,
            "--endpoint-url",
            &e.url,
            "--region",
            "us-east-1",
            "--output",
            "json",
        ])
        .args(args)
        .env("AWS_SHARED_CREDENTIALS_FILE", credentials(e))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .unwrap()
}

fn ok_json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or(Value::Null)
}

fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo").args(args).output().unwrap()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_speaks_to_it_unchanged() {
    let Some(bin) = peer("aws") else { return };
    let e = start("awscli", HOURS).await;
    let v = ok_json(&aws(
        &bin,
        &e,
        "admin",
        &[
            "ecr",
            "create-repository",
            "--repository-name",
            "team/cli",
            "--image-tag-mutability",
            "IMMUTABLE",
        ],
    ));
    assert_eq!(
        v["repository"]["repositoryUri"],
        format!("{}/team/cli", e.host())
    );
    assert_eq!(v["repository"]["imageTagMutability"], "IMMUTABLE");
    let again = aws(
        &bin,
        &e,
        "admin",
        &["ecr", "create-repository", "--repository-name", "team/cli"],
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("RepositoryAlreadyExistsException"));
    let v = ok_json(&aws(&bin, &e, "admin", &["ecr", "describe-repositories"]));
    assert_eq!(v["repositories"][0]["repositoryName"], "team/cli");
    let v = ok_json(&aws(&bin, &e, "admin", &["ecr", "get-authorization-token"]));
    assert_eq!(v["authorizationData"][0]["proxyEndpoint"], e.url.as_str());
    let login = aws(&bin, &e, "admin", &["ecr", "get-login-password"]);
    ok(&login);
    let password = String::from_utf8(login.stdout).unwrap().trim().to_owned();
    let r = e
        .v2(reqwest::Method::GET, "/v2/", &password)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the CLI's login password opens /v2/");
    let v = ok_json(&aws(
        &bin,
        &e,
        "admin",
        &["ecr", "list-images", "--repository-name", "team/cli"],
    ));
    assert_eq!(v["imageIds"], serde_json::json!([]));
    let missing = aws(
        &bin,
        &e,
        "admin",
        &["ecr", "describe-images", "--repository-name", "team/none"],
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("RepositoryNotFoundException"));

    let v = ok_json(&aws(&bin, &e, "admin", &["sts", "get-caller-identity"]));
    assert_eq!(v["Arn"], "arn:aws:iam::123456789012:user/admin");
    let v = ok_json(&aws(
        &bin,
        &e,
        "admin",
        &[
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::123456789012:role/pusher",
            "--role-session-name",
            "cli",
            "--external-id",
            "ext-1",
        ],
    ));
    let c = &v["Credentials"];
    let as_role = Command::new(&bin)
        .args([
            "--endpoint-url",
            &e.url,
            "--region",
            "us-east-1",
            "--output",
            "json",
            "sts",
            "get-caller-identity",
        ])
        .env("AWS_ACCESS_KEY_ID", c["AccessKeyId"].as_str().unwrap())
        .env(
            "AWS_SECRET_ACCESS_KEY",
            c["SecretAccessKey"].as_str().unwrap(),
        )
        .env("AWS_SESSION_TOKEN", c["SessionToken"].as_str().unwrap())
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .output()
        .unwrap();
    assert_eq!(
        ok_json(&as_role)["Arn"],
        "arn:aws:sts::123456789012:assumed-role/pusher/cli"
    );
    let denied = aws(
        &bin,
        &e,
        "admin",
        &[
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::123456789012:role/nobody",
            "--role-session-name",
            "x1",
        ],
    );
    assert!(String::from_utf8_lossy(&denied.stderr).contains("AccessDenied"));

    let wrong = aws(&bin, &e, "wrong", &["ecr", "describe-repositories"]);
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("InvalidSignatureException"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let role = ok_json(&aws(
        &bin,
        &e,
        "admin",
        &["iam", "get-role", "--role-name", "pusher"],
    ));
    assert_eq!(
        role["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::123456789012:user/admin"
    );
    let denied = aws(
        &bin,
        &e,
        "reader",
        &["iam", "get-role", "--role-name", "pusher"],
    );
    assert!(String::from_utf8_lossy(&denied.stderr).contains("AccessDenied"));
    let wrong = aws(&bin, &e, "wrong", &["sts", "get-caller-identity"]);
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("SignatureDoesNotMatch"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_speaks_to_it_unchanged() {
    let Some(python) = peer("python") else { return };
    let e = start("boto3", HOURS).await;
    let script = r#"
import json, os, sys, boto3
from botocore.exceptions import ClientError
url = os.environ["ECR_URL"]
def session(key, secret):
    return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1")
s = session(os.environ["K"], os.environ["S"])
ecr = s.client("ecr", endpoint_url=url)
sts = s.client("sts", endpoint_url=url)
out = {}
out["create"] = ecr.create_repository(repositoryName="team/boto")["repository"]["repositoryName"]
out["describe"] = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
out["token"] = ecr.get_authorization_token()["authorizationData"][0]["proxyEndpoint"]
out["images"] = ecr.list_images(repositoryName="team/boto")["imageIds"]
out["arn"] = sts.get_caller_identity()["Arn"]
iam = s.client("iam", endpoint_url=url)
role = iam.get_role(RoleName="pusher")["Role"]
out["role"] = {"arn": role["Arn"], "id": role["RoleId"], "trust": role["AssumeRolePolicyDocument"]}
for name, client in [("no_role", iam), ("iam_denied", session(os.environ["RK"], os.environ["RS"]).client("iam", endpoint_url=url))]:
    try:
        client.get_role(RoleName="absent" if name == "no_role" else "pusher")
    except ClientError as e:
        out[name] = [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]]
try:
    ecr.batch_get_image(repositoryName="team/none", imageIds=[{"imageTag": "x"}])
except ClientError as e:
    out["missing"] = e.response["Error"]["Code"]
bad = session(os.environ["K"], "wrong-secret").client("ecr", endpoint_url=url)
try:
    bad.describe_repositories()
except ClientError as e:
    out["wrong"] = e.response["Error"]["Code"]
print(json.dumps(out))
"#;
    let o = Command::new(python)
        .args(["-c", script])
        .env("ECR_URL", &e.url)
        .env("K", &e.admin.id)
        .env("S", &e.admin.secret)
        .env("RK", &e.reader.id)
        .env("RS", &e.reader.secret)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    let v = ok_json(&o);
    assert_eq!(v["create"], "team/boto");
    assert_eq!(v["describe"], serde_json::json!(["team/boto"]));
    assert_eq!(v["token"], e.url.as_str());
    assert_eq!(v["images"], serde_json::json!([]));
    assert_eq!(v["arn"], "arn:aws:iam::123456789012:user/admin");
    assert_eq!(v["missing"], "RepositoryNotFoundException");
    assert_eq!(v["wrong"], "InvalidSignatureException");
    // botocore decodes IAM's URL-encoded policy documents: this checks the encoding too.
    assert_eq!(v["role"]["arn"], "arn:aws:iam::123456789012:role/pusher");
    assert!(v["role"]["id"].as_str().unwrap().starts_with("AROA"));
    assert_eq!(
        v["role"]["trust"],
        serde_json::json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:user/admin"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "ext-1"}}
        }]})
    );
    assert_eq!(v["no_role"], serde_json::json!(["NoSuchEntity", 404]));
    assert_eq!(v["iam_denied"], serde_json::json!(["AccessDenied", 403]));
}

fn manifest_digest(layout: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pushes_copies_pulls_and_is_refused_correctly() {
    if peer("skopeo").is_none() {
        return;
    }
    let e = start("skopeo", HOURS).await;
    e.create_repo("team/app", "MUTABLE").await;
    e.create_repo("team/copy", "MUTABLE").await;
    e.create_repo("team/locked", "IMMUTABLE").await;
    let pw = e.password(&e.admin).await;
    let creds = format!("AWS:{pw}");
    let work = TempDir::new("skopeo-layouts");
    let src = work.0.join("src");
    let digest = write_oci_layout(&src, &[200_000, 300_000, 1000]);
    let host = e.host().to_owned();
    let src_ref = format!("oci:{}:latest", src.display());

    ok(&skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &src_ref,
        &format!("docker://{host}/team/app:v1"),
    ]));
    ok(&skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        &creds,
        "--dest-creds",
        &creds,
        &format!("docker://{host}/team/app:v1"),
        &format!("docker://{host}/team/copy:v1"),
    ]));
    let out = work.0.join("out");
    ok(&skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        &creds,
        &format!("docker://{host}/team/copy:v1"),
        &format!("oci:{}:latest", out.display()),
    ]));
    assert_eq!(
        manifest_digest(&out),
        digest,
        "pulled back with the same digest"
    );
    for entry in std::fs::read_dir(src.join("blobs/sha256")).unwrap() {
        let p = entry.unwrap().path();
        let pulled = out.join("blobs/sha256").join(p.file_name().unwrap());
        assert_eq!(
            std::fs::read(&p).unwrap(),
            std::fs::read(&pulled).unwrap(),
            "blob {} byte-identical",
            p.display()
        );
    }
    let inspect = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{host}/team/app:v1"),
    ]);
    ok(&inspect);
    let v: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(v["Digest"], digest.as_str());
    assert_eq!(v["Layers"].as_array().unwrap().len(), 3);

    // The ECR API sees skopeo's push.
    let (_, v) = e
        .ecr(
            &e.admin,
            "DescribeImages",
            serde_json::json!({"repositoryName": "team/copy"}),
        )
        .await;
    assert_eq!(v["imageDetails"][0]["imageDigest"], digest.as_str());

    // An immutable tag cannot be pushed over with another image.
    ok(&skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &src_ref,
        &format!("docker://{host}/team/locked:v1"),
    ]));
    let other = work.0.join("other");
    write_oci_layout(&other, &[5000]);
    let refused = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &format!("oci:{}:latest", other.display()),
        &format!("docker://{host}/team/locked:v1"),
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("immutable") || stderr.contains("TAG_INVALID"),
        "{stderr}"
    );

    // Pushing to a repository that does not exist fails: ECR does not create on push.
    let refused = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &src_ref,
        &format!("docker://{host}/team/nowhere:v1"),
    ]);
    assert!(!refused.status.success());

    // Deleted through the API, gone for skopeo.
    let (_, v) = e
        .ecr(
            &e.admin,
            "BatchDeleteImage",
            serde_json::json!({"repositoryName": "team/app", "imageIds": [{"imageTag": "v1"}]}),
        )
        .await;
    assert!(v["failures"].as_array().unwrap().is_empty(), "{v}");
    assert!(
        !skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &creds,
            &format!("docker://{host}/team/app:v1")
        ])
        .status
        .success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_with_an_expired_token_is_denied() {
    if peer("skopeo").is_none() {
        return;
    }
    let e = start("skopeo-exp", Duration::from_secs(1)).await;
    e.create_repo("team/app", "MUTABLE").await;
    let pw = e.password(&e.admin).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let work = TempDir::new("skopeo-exp-layout");
    write_oci_layout(&work.0, &[1000]);
    let o = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &format!("AWS:{pw}"),
        &format!("oci:{}:latest", work.0.display()),
        &format!("docker://{}/team/app:v1", e.host()),
    ]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("expired") || stderr.contains("403"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pushes_a_multi_platform_index_whole() {
    if peer("skopeo").is_none() {
        return;
    }
    let e = start("skopeo-index", HOURS).await;
    e.create_repo("team/multi", "MUTABLE").await;
    let creds = format!("AWS:{}", e.password(&e.admin).await);
    let work = TempDir::new("skopeo-index-layout");
    let (a, b) = (work.0.join("a"), work.0.join("b"));
    write_oci_layout(&a, &[3000]);
    write_oci_layout(&b, &[4000]);
    let index = make_index_layout(&a, &b);
    let host = e.host().to_owned();
    ok(&skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &format!("oci:{}:latest", a.display()),
        &format!("docker://{host}/team/multi:v1"),
    ]));
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{host}/team/multi:v1"),
    ]);
    ok(&raw);
    assert_eq!(
        common::sha256(&raw.stdout),
        index,
        "the index is stored byte for byte"
    );
    let (_, v) = e
        .ecr(
            &e.admin,
            "DescribeImages",
            serde_json::json!({"repositoryName": "team/multi", "imageIds": [{"imageTag": "v1"}]}),
        )
        .await;
    assert_eq!(
        v["imageDetails"][0]["imageManifestMediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let (_, v) = e
        .ecr(
            &e.admin,
            "ListImages",
            serde_json::json!({"repositoryName": "team/multi"}),
        )
        .await;
    assert_eq!(
        v["imageIds"].as_array().unwrap().len(),
        3,
        "the index and both platform manifests: {v}"
    );
    let out = work.0.join("pulled");
    ok(&skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--src-creds",
        &creds,
        &format!("docker://{host}/team/multi:v1"),
        &format!("oci:{}:latest", out.display()),
    ]));
    assert_eq!(manifest_digest(&out), index);
}
