//! The registry v2 surface driven over HTTP: authentication, uploads (monolithic, chunked,
//! out of order, cancelled), digest checks, manifests and their refusals, tags, catalog, mount,
//! referrers, and the ECR API seeing what `/v2/` pushed (and the other way round).

mod common;

use std::time::Duration;

use common::{random_bytes, sha256, start};
use reqwest::Method;
use serde_json::{Value, json};

const TWELVE_HOURS: Duration = Duration::from_secs(12 * 3600);

fn image_manifest(
    config: &(String, usize),
    layers: &[(String, usize)],
    subject: Option<&str>,
) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": layers.iter().map(|(d, s)| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})).collect::<Vec<_>>(),
    });
    if let Some(s) = subject {
        m["subject"] = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": s, "size": 1});
        m["artifactType"] = json!("application/vnd.example.sbom");
    }
    serde_json::to_vec(&m).unwrap()
}

async fn put_manifest(
    e: &common::Ecr,
    pw: &str,
    repo: &str,
    reference: &str,
    body: &[u8],
) -> (u16, Value) {
    let r = e
        .v2(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{reference}"),
            pw,
        )
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let digest = r
        .headers()
        .get("docker-content-digest")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    (
        status,
        if status == 201 {
            json!({"digest": digest})
        } else {
            serde_json::from_str(&text).unwrap_or(json!(text))
        },
    )
}

fn code(v: &Value) -> &str {
    v["errors"][0]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_and_namespaces() {
    let e = start("auth", TWELVE_HOURS).await;
    let r = e.http.get(format!("{}/v2/", e.url)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.starts_with("Basic realm=")
            && challenge.contains("service=\"ecr.amazonaws.com\""),
        "{challenge}"
    );
    let r = e
        .http
        .get(format!("{}/v2/", e.url))
        .basic_auth("AWS", Some("forged.token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let pw = e.password(&e.admin).await;
    let r = e
        .http
        .get(format!("{}/v2/", e.url))
        .basic_auth("someone", Some(&pw))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the user name must be AWS");
    assert_eq!(
        e.v2(Method::GET, "/v2/", &pw)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // No repository is created on push.
    let r = e
        .v2(Method::POST, "/v2/team/missing/blobs/uploads/", &pw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(code(&r.json().await.unwrap()), "NAME_UNKNOWN");

    // A reader may pull team/* but not push, and sees nothing outside team/*.
    e.create_repo("team/app", "MUTABLE").await;
    e.create_repo("other/app", "MUTABLE").await;
    let rpw = e.password(&e.reader).await;
    let r = e
        .v2(Method::POST, "/v2/team/app/blobs/uploads/", &rpw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(code(&r.json().await.unwrap()), "DENIED");
    let r = e
        .v2(Method::GET, "/v2/other/app/tags/list", &rpw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        e.v2(Method::GET, "/v2/team/app/tags/list", &rpw)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_denied_with_ecrs_message() {
    let e = start("expiry", Duration::from_secs(1)).await;
    let pw = e.password(&e.admin).await;
    assert_eq!(
        e.v2(Method::GET, "/v2/", &pw)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = e.v2(Method::GET, "/v2/", &pw).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(code(&v), "DENIED");
    assert_eq!(
        v["errors"][0]["message"],
        "Your authorization token has expired. Reauthenticate and try again."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_chunks_ranges_and_digests() {
    let e = start("uploads", TWELVE_HOURS).await;
    e.create_repo("team/app", "MUTABLE").await;
    let pw = e.password(&e.admin).await;
    const FIRST: usize = 5 * 1024 * 1024 + 7;
    let data = random_bytes(FIRST + 40_000);
    let digest = sha256(&data);

    // Chunked: one in-order chunk of at least 5 MiB, one out of order refused with 416 and the
    // current range, then the last chunk with the PUT.
    let r = e
        .v2(Method::POST, "/v2/team/app/blobs/uploads/", &pw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["oci-chunk-min-length"], "5242880");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let r = e
        .v2(Method::PATCH, &location, &pw)
        .header("content-range", format!("0-{}", FIRST - 1))
        .body(data[..FIRST].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["range"], format!("0-{}", FIRST - 1).as_str());
    let r = e
        .v2(Method::PATCH, &location, &pw)
        .header(
            "content-range",
            format!("{}-{}", FIRST + 10, data.len() - 1),
        )
        .body(data[FIRST + 10..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["range"], format!("0-{}", FIRST - 1).as_str());
    let status = e.v2(Method::GET, &location, &pw).send().await.unwrap();
    assert_eq!(status.status(), 204);
    let r = e
        .v2(Method::PUT, &format!("{location}?digest={digest}"), &pw)
        .header("content-range", format!("{FIRST}-{}", data.len() - 1))
        .body(data[FIRST..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // ECR's rule: a chunk under 5 MiB must be the last one.
    let r = e
        .v2(Method::POST, "/v2/team/app/blobs/uploads/", &pw)
        .send()
        .await
        .unwrap();
    let small = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        e.v2(Method::PATCH, &small, &pw)
            .body(vec![1u8; 1000])
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    let r = e
        .v2(Method::PATCH, &small, &pw)
        .body(vec![2u8; 1000])
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!((st, code(&body)), (400, "SIZE_INVALID"), "{body}");

    // HEAD and ranged GET.
    let r = e
        .v2(Method::HEAD, &format!("/v2/team/app/blobs/{digest}"), &pw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        data.len().to_string().as_str()
    );
    let r = e
        .v2(Method::GET, &format!("/v2/team/app/blobs/{digest}"), &pw)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 10-19/{}", data.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[10..20]);
    let r = e
        .v2(Method::GET, &format!("/v2/team/app/blobs/{digest}"), &pw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);

    // Digest mismatch and bad digest syntax: refused, nothing stored.
    let other = random_bytes(1000);
    let wrong = sha256(b"something else");
    let r = e
        .v2(
            Method::POST,
            &format!("/v2/team/app/blobs/uploads/?digest={wrong}"),
            &pw,
        )
        .body(other.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(code(&r.json().await.unwrap()), "DIGEST_INVALID");
    assert_eq!(
        e.v2(Method::HEAD, &format!("/v2/team/app/blobs/{wrong}"), &pw)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let r = e
        .v2(
            Method::POST,
            "/v2/team/app/blobs/uploads/?digest=sha256:xyz",
            &pw,
        )
        .body(other)
        .send()
        .await
        .unwrap();
    assert_eq!(code(&r.json().await.unwrap()), "DIGEST_INVALID");

    // Cancel.
    let r = e
        .v2(Method::POST, "/v2/team/app/blobs/uploads/", &pw)
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        e.v2(Method::DELETE, &location, &pw)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let r = e.v2(Method::GET, &location, &pw).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(code(&r.json().await.unwrap()), "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_tags_catalog_mount_referrers_and_the_ecr_api_agree() {
    let e = start("manifests", TWELVE_HOURS).await;
    e.create_repo("team/app", "MUTABLE").await;
    e.create_repo("team/locked", "IMMUTABLE").await;
    e.create_repo("team/copy", "MUTABLE").await;
    let pw = e.password(&e.admin).await;
    let config = random_bytes(300);
    let layer = random_bytes(5000);
    let c = (e.push_blob(&pw, "team/app", &config).await, config.len());
    let l = (e.push_blob(&pw, "team/app", &layer).await, layer.len());

    // Refusals first: missing blob, not JSON, too large.
    let ghost = (sha256(b"ghost"), 5);
    let (s, v) = put_manifest(
        &e,
        &pw,
        "team/app",
        "v1",
        &image_manifest(&c, &[ghost], None),
    )
    .await;
    assert_eq!((s, code(&v)), (400, "MANIFEST_BLOB_UNKNOWN"), "{v}");
    let (s, v) = put_manifest(&e, &pw, "team/app", "v1", b"not json").await;
    assert_eq!((s, code(&v)), (400, "MANIFEST_INVALID"));
    let (s, _) = put_manifest(&e, &pw, "team/app", "v1", &vec![b' '; 4 * 1024 * 1024 + 1]).await;
    assert_eq!(s, 413);
    let (s, v) = put_manifest(&e, &pw, "team/app", "bad:tag", b"{}").await;
    assert_eq!((s, code(&v)), (400, "TAG_INVALID"));

    let body = image_manifest(&c, std::slice::from_ref(&l), None);
    let (s, v) = put_manifest(&e, &pw, "team/app", "v1", &body).await;
    assert_eq!(s, 201, "{v}");
    let digest = sha256(&body);
    assert_eq!(
        v["digest"], digest,
        "the digest is the sha256 of the bytes sent"
    );
    for reference in ["v1", digest.as_str()] {
        let r = e
            .v2(
                Method::GET,
                &format!("/v2/team/app/manifests/{reference}"),
                &pw,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
        assert_eq!(r.bytes().await.unwrap().as_ref(), &body[..]);
    }

    // The ECR API sees the push: sizes are config + layers, manifest bytes are identical.
    let (_, v) = e
        .ecr(
            &e.admin,
            "DescribeImages",
            json!({"repositoryName": "team/app"}),
        )
        .await;
    let detail = &v["imageDetails"][0];
    assert_eq!(detail["imageDigest"], digest.as_str());
    assert_eq!(
        detail["imageSizeInBytes"],
        (config.len() + layer.len()) as u64
    );
    assert_eq!(detail["imageTags"], json!(["v1"]));
    let (_, v) = e.ecr(&e.admin, "BatchGetImage", json!({"repositoryName": "team/app", "imageIds": [{"imageTag": "v1"}, {"imageTag": "nope"}]})).await;
    assert_eq!(
        v["images"][0]["imageManifest"].as_str().unwrap().as_bytes(),
        &body[..]
    );
    assert_eq!(v["failures"][0]["failureCode"], "ImageNotFound");

    // And /v2/ sees what PutImage stores.
    let tagged = image_manifest(&c, &[l.clone(), l.clone()], None);
    let (s, v) = e
        .ecr(&e.admin, "PutImage", json!({"repositoryName": "team/app", "imageTag": "v2", "imageManifest": String::from_utf8(tagged.clone()).unwrap()}))
        .await;
    assert_eq!(s, 200, "{v}");
    let r = e
        .v2(Method::GET, "/v2/team/app/manifests/v2", &pw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &tagged[..]);

    // Tags with pagination, catalog.
    let r = e
        .v2(Method::GET, "/v2/team/app/tags/list?n=1", &pw)
        .send()
        .await
        .unwrap();
    assert!(r.headers()["link"].to_str().unwrap().contains("last=v1"));
    assert_eq!(r.json::<Value>().await.unwrap()["tags"], json!(["v1"]));
    let r = e
        .v2(Method::GET, "/v2/team/app/tags/list?n=1&last=v1", &pw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["tags"], json!(["v2"]));
    let r = e.v2(Method::GET, "/v2/_catalog", &pw).send().await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["repositories"],
        json!(["team/app", "team/copy", "team/locked"])
    );

    // Immutable tags cannot move.
    for b in [&config, &layer] {
        e.push_blob(&pw, "team/locked", b).await;
    }
    assert_eq!(
        put_manifest(&e, &pw, "team/locked", "v1", &body).await.0,
        201
    );
    let (s, v) = put_manifest(&e, &pw, "team/locked", "v1", &tagged).await;
    assert_eq!((s, code(&v)), (400, "TAG_INVALID"), "{v}");

    // Mount: a blob referenced by a manifest in the source mounts (201); an unreferenced one
    // falls back to an upload (202).
    let r = e
        .v2(
            Method::POST,
            &format!("/v2/team/copy/blobs/uploads/?mount={}&from=team/app", l.0),
            &pw,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let stray = e.push_blob(&pw, "team/app", &random_bytes(10)).await;
    let r = e
        .v2(
            Method::POST,
            &format!("/v2/team/copy/blobs/uploads/?mount={stray}&from=team/app"),
            &pw,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    // Referrers.
    let sbom = image_manifest(&c, std::slice::from_ref(&l), Some(&digest));
    let r = e
        .v2(
            Method::PUT,
            &format!("/v2/team/app/manifests/{}", sha256(&sbom)),
            &pw,
        )
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(sbom.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["oci-subject"], digest.as_str());
    let r = e
        .v2(
            Method::GET,
            &format!("/v2/team/app/referrers/{digest}?artifactType=application/vnd.example.sbom"),
            &pw,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["manifests"][0]["digest"], sha256(&sbom));

    // Delete by digest removes it for both APIs.
    assert_eq!(
        e.v2(
            Method::DELETE,
            &format!("/v2/team/app/manifests/{digest}"),
            &pw
        )
        .send()
        .await
        .unwrap()
        .status(),
        202
    );
    let (_, v) = e
        .ecr(
            &e.admin,
            "BatchGetImage",
            json!({"repositoryName": "team/app", "imageIds": [{"imageDigest": digest}]}),
        )
        .await;
    assert_eq!(v["failures"][0]["failureCode"], "ImageNotFound");
}

/// (case, Range, status, Content-Range, served bytes).
type RangeCase = (
    &'static str,
    &'static str,
    u16,
    Option<&'static str>,
    Option<std::ops::Range<usize>>,
);

/// RFC 9110's one-range forms on a 2048-byte blob, over HTTP, GET and HEAD: what is served, with
/// which `Content-Range` and `Content-Length`, and that every refusal is a clean 416. GETs
/// follow the redirect to the layer bucket; HEADs are answered on `/v2/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_ranges_follow_rfc_9110() {
    ranges_follow_rfc_9110(start("ranges", TWELVE_HOURS).await).await;
}

/// The same with blobs served in line on `/v2/` (`--layer-listen off`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_ranges_follow_rfc_9110_in_line() {
    let e = common::start_configured("ranges-inline", TWELVE_HOURS, "", |o| {
        o.layer_listen = berth_ecr_local::LayerListen::Off;
    })
    .await;
    ranges_follow_rfc_9110(e).await;
}

async fn ranges_follow_rfc_9110(e: common::Ecr) {
    e.create_repo("team/app", "MUTABLE").await;
    let pw = e.password(&e.admin).await;
    let data = random_bytes(2048);
    let digest = e.push_blob(&pw, "team/app", &data).await;
    let path = format!("/v2/team/app/blobs/{digest}");
    let cases: &[RangeCase] = &[
        (
            "first-last",
            "bytes=10-19",
            206,
            Some("bytes 10-19/2048"),
            Some(10..20),
        ),
        (
            "first-",
            "bytes=2000-",
            206,
            Some("bytes 2000-2047/2048"),
            Some(2000..2048),
        ),
        (
            "suffix",
            "bytes=-500",
            206,
            Some("bytes 1548-2047/2048"),
            Some(1548..2048),
        ),
        (
            "suffix past the start",
            "bytes=-5000",
            206,
            Some("bytes 0-2047/2048"),
            Some(0..2048),
        ),
        (
            "last clamped",
            "bytes=2040-9999",
            206,
            Some("bytes 2040-2047/2048"),
            Some(2040..2048),
        ),
        (
            "first at the end",
            "bytes=2048-",
            416,
            Some("bytes */2048"),
            None,
        ),
        (
            "last before first",
            "bytes=500-0",
            416,
            Some("bytes */2048"),
            None,
        ),
        ("not a number", "bytes=x", 416, Some("bytes */2048"), None),
        (
            "several ranges: the whole blob",
            "bytes=0-1,5-6",
            200,
            None,
            Some(0..2048),
        ),
    ];
    for (case, range, status, content_range, served) in cases {
        for method in [Method::GET, Method::HEAD] {
            let r = e
                .v2(method.clone(), &path, &pw)
                .header("range", *range)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), *status, "{case} ({method})");
            assert_eq!(
                r.headers()
                    .get("content-range")
                    .map(|v| v.to_str().unwrap()),
                *content_range,
                "{case} ({method})"
            );
            let Some(served) = served.clone() else {
                continue;
            };
            assert_eq!(
                r.headers()["content-length"],
                served.len().to_string().as_str(),
                "{case} ({method})"
            );
            let body = r.bytes().await.unwrap();
            if method == Method::GET {
                assert_eq!(body.as_ref(), &data[served], "{case}");
            } else {
                assert!(body.is_empty(), "{case}: HEAD sends no body");
            }
        }
    }
}

/// `sha512:` is valid OCI digest syntax that ECR does not store: every endpoint that takes a
/// digest says so with the spec's envelope and status, never a 500 or a tag error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha512_digests_are_refused_as_unsupported_everywhere() {
    let e = start("sha512", TWELVE_HOURS).await;
    e.create_repo("team/app", "MUTABLE").await;
    let pw = e.password(&e.admin).await;
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    let upload = e
        .v2(Method::POST, "/v2/team/app/blobs/uploads/", &pw)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 202);
    let location = upload.headers()["location"].to_str().unwrap().to_owned();
    let sep = if location.contains('?') { '&' } else { '?' };
    let finish = format!("{location}{sep}digest={sha512}");
    let cases: Vec<(&str, Method, String)> = vec![
        (
            "blob GET",
            Method::GET,
            format!("/v2/team/app/blobs/{sha512}"),
        ),
        (
            "blob HEAD",
            Method::HEAD,
            format!("/v2/team/app/blobs/{sha512}"),
        ),
        (
            "monolithic upload",
            Method::POST,
            format!("/v2/team/app/blobs/uploads/?digest={sha512}"),
        ),
        (
            "upload finish",
            Method::PUT,
            finish.trim_start_matches(&e.url).to_owned(),
        ),
        (
            "manifest GET",
            Method::GET,
            format!("/v2/team/app/manifests/{sha512}"),
        ),
        (
            "manifest HEAD",
            Method::HEAD,
            format!("/v2/team/app/manifests/{sha512}"),
        ),
        (
            "manifest PUT",
            Method::PUT,
            format!("/v2/team/app/manifests/{sha512}"),
        ),
        (
            "manifest DELETE",
            Method::DELETE,
            format!("/v2/team/app/manifests/{sha512}"),
        ),
        (
            "referrers",
            Method::GET,
            format!("/v2/team/app/referrers/{sha512}"),
        ),
    ];
    for (case, method, path) in cases {
        let r = e
            .v2(method.clone(), &path, &pw)
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(if method == Method::PUT || method == Method::POST {
                b"{}".to_vec()
            } else {
                Vec::new()
            })
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{case}: {path}");
        if method == Method::HEAD {
            continue;
        }
        let body: Value = r.json().await.unwrap();
        assert_eq!(code(&body), "DIGEST_INVALID", "{case}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("sha512") && message.contains("sha256"),
            "{case}: the message names what was sent and what is supported: {message}"
        );
    }
}

/// Early refusals on uploads reach a client that sends its body at once (reqwest sends no
/// `Expect: 100-continue`, like Go's client): the out-of-order PATCH and PUT get their 416 with
/// the upload's real range, an unauthorised PATCH its 403, and the upload then continues, on the
/// same client, at its real offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_upload_refusals_reach_clients_that_do_not_wait_for_continue() {
    let e = start("no-continue", TWELVE_HOURS).await;
    e.create_repo("team/app", "MUTABLE").await;
    let pw = e.password(&e.admin).await;
    let reader_pw = e.password(&e.reader).await;
    let big = random_bytes(16 * 1024 * 1024);
    let first = random_bytes(6 * 1024 * 1024);
    let r = e
        .v2(Method::POST, "/v2/team/app/blobs/uploads/", &pw)
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let path = location.trim_start_matches(&e.url).to_owned();
    let patch = |pw: &str, start: usize, body: &[u8]| {
        e.v2(Method::PATCH, &path, pw)
            .header(
                "content-range",
                format!("{start}-{}", start + body.len() - 1),
            )
            .body(body.to_vec())
            .send()
    };
    let r = patch(&pw, 0, &first).await.unwrap();
    assert_eq!(r.status(), 202);
    let real = format!("0-{}", first.len() - 1);

    // As Go's client does: the whole request written before the answer is read, then the
    // same connection used again.
    let authority = e.url.trim_start_matches("http://").to_owned();
    let auth = format!("Basic {}", b64(&format!("AWS:{pw}")));
    let answers = raw_exchange(
        &authority,
        &[
            (
                format!(
                    "PATCH {path} HTTP/1.1\r\nhost: {authority}\r\nauthorization: {auth}\r\n\
                     content-range: 123-{}\r\ncontent-length: {}\r\n\r\n",
                    123 + big.len() - 1,
                    big.len()
                ),
                big.clone(),
            ),
            (
                format!(
                    "GET {path} HTTP/1.1\r\nhost: {authority}\r\nauthorization: {auth}\r\n\r\n"
                ),
                Vec::new(),
            ),
        ],
    );
    assert!(answers[0].starts_with("http/1.1 416"), "{}", answers[0]);
    assert!(
        answers[0].contains(&format!("range: {real}")),
        "{}",
        answers[0]
    );
    assert!(
        answers[1].starts_with("http/1.1 204"),
        "the connection stays usable: {}",
        answers[1]
    );
    let r = patch(&pw, 123, &big).await.expect("the 416 arrives");
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["range"], real.as_str());
    let r = patch(&reader_pw, first.len(), &big)
        .await
        .expect("the refusal of a reader's chunk arrives");
    assert!([401, 403].contains(&r.status().as_u16()), "{}", r.status());
    let digest = sha256(&[first.as_slice(), b"tail"].concat());
    let r = e
        .v2(Method::PUT, &format!("{path}?digest={digest}"), &pw)
        .header("content-range", format!("7-{}", 7 + big.len() - 1))
        .body(big.clone())
        .send()
        .await
        .expect("the refusal of an out-of-order last chunk arrives");
    assert_eq!(r.status(), 416);

    let r = e.v2(Method::GET, &path, &pw).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], real.as_str());
    let r = e
        .v2(Method::PUT, &format!("{path}?digest={digest}"), &pw)
        .header(
            "content-range",
            format!("{}-{}", first.len(), first.len() + 3),
        )
        .body(b"tail".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Writes each request whole (head and body) before reading its answer's head, on one
/// connection, and returns the answers' heads (lower-cased).
fn raw_exchange(authority: &str, requests: &[(String, Vec<u8>)]) -> Vec<String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let stream = std::net::TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut heads = Vec::new();
    for (head, body) in requests {
        writer
            .write_all(head.as_bytes())
            .and_then(|_| writer.write_all(body))
            .unwrap_or_else(|e| panic!("the server stopped reading the request: {e}"));
        let mut answer = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("an answer");
            let line = line.to_ascii_lowercase();
            if let Some(v) = line.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" || line.is_empty() {
                break;
            }
            answer.push_str(&line);
        }
        let mut rest = vec![0u8; length];
        reader.read_exact(&mut rest).unwrap();
        heads.push(answer);
    }
    heads
}

/// ECR's part-size rule is announced on every upload state and enforced by default; with
/// `min_part` 0 (`berth local-ecr --min-chunk-size 0`) chunks of any size are accepted and
/// nothing is announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chunk_minimum_is_announced_enforced_and_can_be_lifted() {
    for min_part in [5 * 1024 * 1024, 0u64] {
        let e = common::start_configured("chunk-min", TWELVE_HOURS, "", |o| {
            o.upload_limits.min_part = min_part
        })
        .await;
        e.create_repo("team/app", "MUTABLE").await;
        let pw = e.password(&e.admin).await;
        let r = e
            .v2(Method::POST, "/v2/team/app/blobs/uploads/", &pw)
            .send()
            .await
            .unwrap();
        let announced = r
            .headers()
            .get("oci-chunk-min-length")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            announced,
            (min_part > 0).then(|| min_part.to_string()),
            "min {min_part}"
        );
        let path = r.headers()["location"]
            .to_str()
            .unwrap()
            .trim_start_matches(&e.url)
            .to_owned();
        let data = random_bytes(3000);
        let mut statuses = Vec::new();
        for (i, chunk) in data.chunks(1000).enumerate() {
            let r = e
                .v2(Method::PATCH, &path, &pw)
                .header(
                    "content-range",
                    format!("{}-{}", i * 1000, i * 1000 + chunk.len() - 1),
                )
                .body(chunk.to_vec())
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
            if r.status() == 400 {
                let body: Value = r.json().await.unwrap();
                assert_eq!(code(&body), "SIZE_INVALID", "{body}");
                assert!(
                    body["errors"][0]["message"]
                        .as_str()
                        .unwrap()
                        .contains(&min_part.to_string()),
                    "{body}"
                );
            }
        }
        if min_part == 0 {
            assert_eq!(statuses, [202, 202, 202]);
            let r = e
                .v2(
                    Method::PUT,
                    &format!("{path}?digest={}", sha256(&data)),
                    &pw,
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        } else {
            assert_eq!(
                statuses[..2],
                [202, 400],
                "a small chunk after a small chunk"
            );
        }
    }
}

/// The referrers API as OCI distribution-spec 1.1 defines it: an artifact without
/// `artifactType` is listed under its config's media type, an index with a subject counts, the
/// filter narrows and says so, and a digest nothing refers to has an empty index, not a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_list_artifacts_and_indexes_with_their_artifact_types() {
    let e = start("referrers", TWELVE_HOURS).await;
    e.create_repo("team/app", "MUTABLE").await;
    let pw = e.password(&e.admin).await;
    let config = b"{}".to_vec();
    let c = (e.push_blob(&pw, "team/app", &config).await, config.len());
    let layer = random_bytes(100);
    let l = (e.push_blob(&pw, "team/app", &layer).await, layer.len());
    let image = image_manifest(&c, std::slice::from_ref(&l), None);
    let (s, v) = put_manifest(&e, &pw, "team/app", "v1", &image).await;
    assert_eq!(s, 201, "{v}");
    let subject = sha256(&image);

    let signature_config = b"{\"sig\":1}".to_vec();
    let sc = (
        e.push_blob(&pw, "team/app", &signature_config).await,
        signature_config.len(),
    );
    let signature = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.example.signature.config", "digest": sc.0, "size": sc.1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l.0, "size": l.1}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": image.len()},
    }))
    .unwrap();
    let (s, v) = put_manifest(&e, &pw, "team/app", &sha256(&signature), &signature).await;
    assert_eq!(s, 201, "{v}");
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "artifactType": "application/vnd.example.bundle",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": image.len()}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": image.len()},
    }))
    .unwrap();
    let r = e
        .v2(
            Method::PUT,
            &format!("/v2/team/app/manifests/{}", sha256(&index)),
            &pw,
        )
        .header("content-type", "application/vnd.oci.image.index.v1+json")
        .body(index.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["oci-subject"], subject.as_str());

    let list = |query: &str| {
        let path = format!("/v2/team/app/referrers/{subject}{query}");
        let req = e.v2(Method::GET, &path, &pw);
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(
                r.headers()["content-type"],
                "application/vnd.oci.image.index.v1+json"
            );
            let filtered = r.headers().get("oci-filters-applied").cloned();
            let v: Value = r.json().await.unwrap();
            let mut found: Vec<(String, String)> = v["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["digest"].as_str().unwrap().to_owned(),
                        m["artifactType"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect();
            found.sort();
            (found, filtered)
        }
    };
    let mut all = vec![
        (
            sha256(&signature),
            "application/vnd.example.signature.config".to_owned(),
        ),
        (sha256(&index), "application/vnd.example.bundle".to_owned()),
    ];
    all.sort();
    assert_eq!(list("").await, (all, None));
    let (found, filtered) = list("?artifactType=application/vnd.example.bundle").await;
    assert_eq!(
        found,
        [(sha256(&index), "application/vnd.example.bundle".to_owned())]
    );
    assert_eq!(filtered.unwrap(), "artifactType");

    let nothing = sha256(b"nothing refers to this");
    let r = e
        .v2(
            Method::GET,
            &format!("/v2/team/app/referrers/{nothing}"),
            &pw,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["manifests"], json!([]), "{v}");
}
