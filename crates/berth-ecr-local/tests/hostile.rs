//! The local ECR against hostile clients: signatures that leave the operation or the scope
//! unsigned, unauthenticated bodies meant to exhaust memory, download URLs used as registry
//! tokens, listings that show what a policy hides, manifests that lie about sizes, and
//! pagination tokens it never issued. Loopback only, bounded in count and time.

mod common;

use std::time::Duration;

use common::{Keys, Signing, sha256, start};
use reqwest::Method;
use serde_json::{Value, json};

const HOUR: Duration = Duration::from_secs(3600);

fn error_type(v: &str) -> String {
    serde_json::from_str::<Value>(v)
        .ok()
        .and_then(|v| v["__type"].as_str().map(str::to_owned))
        .unwrap_or_else(|| v.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_must_cover_the_operation_host_and_scope() {
    let e = start("sigscope", HOUR).await;
    let body = "{}";
    let cases: [(&str, Signing, u16, &str); 5] = [
        (
            "x-amz-target unsigned: the operation could be swapped after signing",
            Signing {
                unsigned: &["x-amz-target"],
                ..Default::default()
            },
            400,
            "IncompleteSignatureException",
        ),
        (
            "host unsigned",
            Signing {
                unsigned: &["host"],
                ..Default::default()
            },
            400,
            "IncompleteSignatureException",
        ),
        (
            "x-amz-date unsigned",
            Signing {
                unsigned: &["x-amz-date"],
                ..Default::default()
            },
            400,
            "IncompleteSignatureException",
        ),
        (
            "scope names another service",
            Signing {
                service: Some("s3"),
                ..Default::default()
            },
            403,
            "InvalidSignatureException",
        ),
        (
            "scope names an invented region",
            Signing {
                region: Some("nowhere"),
                ..Default::default()
            },
            403,
            "InvalidSignatureException",
        ),
    ];
    for (case, how, status, code) in cases {
        let (s, text, _) = e
            .signed_with(&e.admin, Some("GetAuthorizationToken"), body, 0, &how)
            .await;
        assert_eq!(
            (s, error_type(&text).as_str()),
            (status, code),
            "{case}: {text}"
        );
    }
    // STS: the scope must say sts.
    let (s, text, _) = e
        .signed_with(
            &e.admin,
            None,
            "Action=GetCallerIdentity&Version=2011-06-15",
            0,
            &Signing {
                service: Some("ecr"),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(s, 403, "{text}");
    assert!(
        text.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{text}"
    );
    assert!(text.contains("correct service: &apos;sts&apos;"), "{text}");
    // A session token that travels unsigned could be replaced.
    let (_, text, _) = e
        .signed(
            &e.admin,
            None,
            "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900",
            0,
        )
        .await;
    let session = session_keys(&text);
    let (s, text, _) = e
        .signed_with(
            &session,
            Some("DescribeRepositories"),
            "{}",
            0,
            &Signing {
                unsigned: &["x-amz-security-token"],
                ..Default::default()
            },
        )
        .await;
    assert_eq!(
        (s, error_type(&text).as_str()),
        (400, "IncompleteSignatureException"),
        "{text}"
    );
    // Correctly signed, everything still works.
    let (s, text, _) = e
        .signed(&e.admin, Some("GetAuthorizationToken"), body, 0)
        .await;
    assert_eq!(s, 200, "{text}");
}

fn xml_field<'a>(text: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = text
        .find(&open)
        .unwrap_or_else(|| panic!("no {tag} in {text}"))
        + open.len();
    let end = text[start..].find("</").unwrap() + start;
    &text[start..end]
}

fn session_keys(text: &str) -> Keys {
    Keys {
        id: xml_field(text, "AccessKeyId").to_owned(),
        secret: xml_field(text, "SecretAccessKey").to_owned(),
        token: Some(xml_field(text, "SessionToken").to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_session_token_issues_user_sessions_as_sts_does() {
    let e = start("session", HOUR).await;
    let (s, text, _) = e
        .signed(
            &e.reader,
            None,
            "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900",
            0,
        )
        .await;
    assert_eq!(s, 200, "{text}");
    assert!(text.contains("<GetSessionTokenResponse"), "{text}");
    assert!(text.contains("<Expiration>"), "{text}");
    let session = session_keys(&text);
    assert!(session.id.starts_with("ASIA"), "{}", session.id);
    // The session acts as the user, with the user's policy.
    let (s, text, _) = e
        .signed(
            &session,
            None,
            "Action=GetCallerIdentity&Version=2011-06-15",
            0,
        )
        .await;
    assert_eq!(s, 200, "{text}");
    assert!(text.contains(":user/reader</Arn>"), "{text}");
    let (s, v) = e.ecr(&session, "GetAuthorizationToken", json!({})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = e
        .ecr(
            &session,
            "CreateRepository",
            json!({"repositoryName": "team/x"}),
        )
        .await;
    assert_eq!(s, 400, "the reader may not create: {v}");
    // A session cannot make another; durations are AWS's.
    let (s, text, _) = e
        .signed(
            &session,
            None,
            "Action=GetSessionToken&Version=2011-06-15",
            0,
        )
        .await;
    assert_eq!(s, 403, "{text}");
    assert!(text.contains("<Code>AccessDenied</Code>"), "{text}");
    for bad in ["899", "129601", "soon"] {
        let (s, text, _) = e
            .signed(
                &e.reader,
                None,
                &format!("Action=GetSessionToken&Version=2011-06-15&DurationSeconds={bad}"),
                0,
            )
            .await;
        assert_eq!(s, 400, "DurationSeconds={bad}: {text}");
        assert!(text.contains("<Code>ValidationError</Code>"), "{text}");
    }
}

/// Resident memory of this process (server and clients), in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// A body of `len` zero bytes produced on the fly, so the client holds none of it.
fn streamed_zeros(len: u64) -> reqwest::Body {
    const CHUNK: u64 = 256 * 1024;
    let chunks = len.div_ceil(CHUNK);
    let stream = futures_util::stream::iter((0..chunks).map(move |i| {
        let n = CHUNK.min(len - i * CHUNK) as usize;
        Ok::<_, std::io::Error>(vec![0u8; n])
    }));
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_bodies_are_refused_before_they_are_read() {
    let e = start("bodies", HOUR).await;
    let before = rss_bytes();
    let mut peak = before;
    // 30 concurrent 60 MB POSTs with no valid signature: ECR (with a target) and STS (without).
    let attacks = (0..30).map(|i| {
        let http = e.http.clone();
        let url = format!("{}/", e.url);
        async move {
            let mut req = http
                .post(url)
                .header("content-length", (60u64 << 20).to_string())
                .body(streamed_zeros(60 << 20));
            if i % 2 == 0 {
                req = req
                    .header("x-amz-target", "AmazonEC2ContainerRegistry_V20150921.UploadLayerPart")
                    .header(
                        "authorization",
                        "AWS4-HMAC-SHA256 Credential=AKIANOBODY/20250101/us-east-1/ecr/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00",
                    )
                    .header("x-amz-date", "20250101T000000Z");
            }
            match req.send().await {
                Ok(r) => r.status().as_u16(),
                // The server may answer and close before taking the whole body.
                Err(_) => 0,
            }
        }
    });
    let sampler = async {
        for _ in 0..40 {
            peak = peak.max(rss_bytes());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (statuses, _) = tokio::join!(futures_util::future::join_all(attacks), sampler);
    peak = peak.max(rss_bytes());
    let grown = peak.saturating_sub(before);
    println!(
        "hostile: 30 x 60 MB unauthenticated POSTs: RSS before {} MiB, peak {} MiB (+{} MiB); statuses {:?}",
        before >> 20,
        peak >> 20,
        grown >> 20,
        statuses
    );
    assert!(
        statuses.iter().all(|s| *s == 0 || (400..500).contains(s)),
        "{statuses:?}"
    );
    assert!(grown < 200 << 20, "memory grew by {} MiB", grown >> 20);

    // Signed, but larger than the operation can carry: 413 from Content-Length, unread.
    let (s, text, _) = e
        .signed(
            &e.admin,
            Some("DescribeRepositories"),
            &" ".repeat(2 << 20),
            0,
        )
        .await;
    assert_eq!(s, 413, "{text}");
    // The server still serves.
    let (s, v) = e.ecr(&e.admin, "DescribeRepositories", json!({})).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_urls_are_good_for_one_layer_only() {
    let e = start("download", HOUR).await;
    e.create_repo("team/app", "MUTABLE").await;
    e.create_repo("team/other", "MUTABLE").await;
    let pw = e.password(&e.admin).await;
    let layer = e.push_blob(&pw, "team/app", b"layer one").await;
    let second = e.push_blob(&pw, "team/app", b"layer two").await;
    e.push_blob(&pw, "team/other", b"layer one").await;
    let (s, v) = e
        .ecr(
            &e.admin,
            "GetDownloadUrlForLayer",
            json!({"repositoryName": "team/app", "layerDigest": layer}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let url = v["downloadUrl"].as_str().unwrap().to_owned();
    assert!(!url.contains("X-Berth-Token"), "{url}");
    let r = e.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"layer one");
    let query = url.split_once('?').unwrap().1;
    let base = &e.url;
    let misuse = [
        (
            Method::GET,
            format!("{base}/v2/team/app/blobs/{second}?{query}"),
        ),
        (
            Method::GET,
            format!("{base}/v2/team/other/blobs/{layer}?{query}"),
        ),
        (Method::GET, format!("{base}/v2/_catalog?{query}")),
        (Method::GET, format!("{base}/v2/team/app/tags/list?{query}")),
        (
            Method::POST,
            format!("{base}/v2/team/app/blobs/uploads/?{query}"),
        ),
        (
            Method::DELETE,
            format!("{base}/v2/team/app/manifests/{layer}?{query}"),
        ),
        (
            Method::DELETE,
            format!("{base}/v2/team/app/blobs/{layer}?{query}"),
        ),
    ];
    for (method, u) in misuse {
        let r = e.http.request(method.clone(), &u).send().await.unwrap();
        assert!(
            r.status() == 401 || r.status() == 403,
            "{method} {u}: {}",
            r.status()
        );
    }
    // Tampering with the claims breaks the signature.
    let forged = url.replace("X-Berth-Expires=", "X-Berth-Expires=9");
    assert_eq!(e.http.get(&forged).send().await.unwrap().status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_show_only_what_the_policy_covers() {
    let e = start("listing", HOUR).await;
    for name in ["team/app", "private/secret", "team/web"] {
        e.create_repo(name, "MUTABLE").await;
    }
    let pw = e.password(&e.reader).await;
    let r = e.v2(Method::GET, "/v2/_catalog", &pw).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["repositories"], json!(["team/app", "team/web"]), "{v}");
    let (s, v) = e.ecr(&e.reader, "DescribeRepositories", json!({})).await;
    assert_eq!(s, 200, "{v}");
    let names: Vec<&str> = v["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repositoryName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["team/app", "team/web"]);
    // The admin still sees everything.
    let admin = e.password(&e.admin).await;
    let v: Value = e
        .v2(Method::GET, "/v2/_catalog", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["repositories"].as_array().unwrap().len(), 3, "{v}");
    // Nonsense page sizes are refused, naming n.
    for n in ["abc", "0", "-5"] {
        let r = e
            .v2(Method::GET, &format!("/v2/_catalog?n={n}"), &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "n={n}");
        let text = r.text().await.unwrap();
        assert!(
            text.contains("PAGINATION_NUMBER_INVALID") && text.contains("n must"),
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_next_tokens_and_lying_manifests_are_refused() {
    let e = start("tokens", HOUR).await;
    e.create_repo("team/app", "MUTABLE").await;
    for (op, body) in [
        (
            "DescribeRepositories",
            json!({"nextToken": "!!not-base64!!"}),
        ),
        (
            "ListImages",
            json!({"repositoryName": "team/app", "nextToken": "garbage"}),
        ),
        (
            "DescribeImages",
            json!({"repositoryName": "team/app", "nextToken": "999999"}),
        ),
    ] {
        let (s, v) = e.ecr(&e.admin, op, body).await;
        assert_eq!(s, 400, "{op}: {v}");
        assert_eq!(v["__type"], "InvalidParameterException", "{op}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains("nextToken"),
            "{op}: {v}"
        );
    }
    let pw = e.password(&e.admin).await;
    let blob = vec![7u8; 4096];
    let digest = e.push_blob(&pw, "team/app", &blob).await;
    let config = e.push_blob(&pw, "team/app", b"{}").await;
    let manifest = |layer_size: usize| {
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": layer_size}],
        })
        .to_string()
    };
    let r = e
        .v2(Method::PUT, "/v2/team/app/manifests/lie", &pw)
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest(999))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("SIZE_INVALID") && text.contains("4096"),
        "{text}"
    );
    let (s, v) = e
        .ecr(
            &e.admin,
            "PutImage",
            json!({"repositoryName": "team/app", "imageTag": "lie", "imageManifest": manifest(999)}),
        )
        .await;
    assert_eq!(
        (s, v["__type"].as_str()),
        (400, Some("InvalidParameterException")),
        "{v}"
    );
    // Nothing was tagged; the truthful manifest is accepted.
    let (_, v) = e
        .ecr(
            &e.admin,
            "ListImages",
            json!({"repositoryName": "team/app"}),
        )
        .await;
    assert_eq!(v["imageIds"], json!([]), "{v}");
    let r = e
        .v2(Method::PUT, "/v2/team/app/manifests/truth", &pw)
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest(4096))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

fn files_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_sessions_are_capped_per_principal_and_expire_when_idle() {
    let e = common::start_configured("uploads", HOUR, "", |o| {
        o.upload_limits = berth_ecr_local::UploadLimits {
            idle: Duration::from_millis(400),
            per_principal: 5,
            ..Default::default()
        };
    })
    .await;
    e.create_repo("team/app", "MUTABLE").await;
    let pw = e.password(&e.admin).await;
    let mut locations = Vec::new();
    for _ in 0..5 {
        let r = e
            .v2(Method::POST, "/v2/team/app/blobs/uploads/", &pw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        locations.push(r.headers()["location"].to_str().unwrap().to_owned());
    }
    // The sixth of one principal is refused as a registry refuses load.
    let r = e
        .v2(Method::POST, "/v2/team/app/blobs/uploads/", &pw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("TOOMANYREQUESTS"));
    let (s, v) = e
        .ecr(
            &e.admin,
            "InitiateLayerUpload",
            json!({"repositoryName": "team/app"}),
        )
        .await;
    assert_eq!(
        (s, v["__type"].as_str()),
        (400, Some("LimitExceededException")),
        "{v}"
    );
    // A chunk written, then silence: the session and its staging file expire.
    let first = &locations[0];
    let r = e
        .http
        .patch(format!("{}{first}", e.url))
        .basic_auth("AWS", Some(&pw))
        .body(vec![1u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let staging = e.dir().join("uploads");
    assert_eq!(files_in(&staging), 5);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(files_in(&staging), 0, "expired sessions leave no files");
    let r = e
        .http
        .get(format!("{}{first}", e.url))
        .basic_auth("AWS", Some(&pw))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("BLOB_UPLOAD_UNKNOWN"));
    // Room again: a whole push works.
    let bytes = b"after expiry".to_vec();
    let digest = e.push_blob(&pw, "team/app", &bytes).await;
    let r = e
        .v2(Method::GET, &format!("/v2/team/app/blobs/{digest}"), &pw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[..]);
    // Layers, the database and the directory are the owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let hex = digest.trim_start_matches("sha256:");
        let blob = std::fs::read_dir(e.dir().join("blobs/sha256"))
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).into_iter().flatten())
            .map(|f| f.unwrap().path())
            .chain([e.dir().join("blobs/sha256").join(hex)])
            .find(|p| p.ends_with(hex) && p.exists())
            .expect("the blob's file");
        assert_eq!(mode(&blob), 0o600, "{}", blob.display());
        assert_eq!(mode(e.dir()), 0o700);
        assert_eq!(mode(&e.dir().join("registry.db")), 0o600);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_but_slow_progress_is_kept() {
    use std::io::{Read, Write};
    let e = common::start_configured("idle", HOUR, "", |o| {
        o.idle_timeout = Duration::from_secs(1);
    })
    .await;
    e.create_repo("team/app", "MUTABLE").await;
    let pw = e.password(&e.admin).await;
    let host = e.host().to_owned();
    let auth = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("AWS:{pw}"))
    };
    let outcome = tokio::task::spawn_blocking(move || {
        // Half-sent headers: closed after the idle time.
        let mut stalled = std::net::TcpStream::connect(&host).unwrap();
        stalled.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n").unwrap();
        stalled.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let started = std::time::Instant::now();
        let closed = matches!(stalled.read(&mut [0u8; 64]), Ok(0) | Err(_));
        let stalled_for = started.elapsed();
        // A body trickling one byte every 300 ms outlives the idle time: progress resets it.
        let body = b"slow but sure";
        let digest = sha256(body);
        let mut slow = std::net::TcpStream::connect(&host).unwrap();
        write!(
            slow,
            "POST /v2/team/app/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        for b in body {
            slow.write_all(&[*b]).unwrap();
            std::thread::sleep(Duration::from_millis(300));
        }
        slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut answer = [0u8; 64];
        let n = slow.read(&mut answer).unwrap_or(0);
        (closed, stalled_for, String::from_utf8_lossy(&answer[..n]).into_owned())
    })
    .await
    .unwrap();
    let (closed, stalled_for, answer) = outcome;
    assert!(closed, "the stalled connection was closed");
    assert!(stalled_for < Duration::from_secs(3), "{stalled_for:?}");
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
}
