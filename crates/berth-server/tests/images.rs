//! Image resources through the API against the local ECR: a tag pushed twice with different
//! content gives two versions, whether the poller, a CI post or a push event sees it first, and
//! never a duplicate when all three see the same push; forged, replayed, stale, oversized and
//! malformed events are refused naming the field; polling backs off while the registry answers
//! 503 and recovers; the job's environment carries the version, pinned or newest.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth_testkit::{LocalEcrFixture, TempDir};
use common::images::{password, push, setup};
use common::{TestServer, assert_error, options};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PROJECT: &str = "/api/v1/projects/acme/web";

/// An ECR push event as EventBridge delivers it.
fn event(id: &str, digest: &str, tag: &str, time: &str) -> Value {
    json!({"version": "0", "id": id, "detail-type": "ECR Image Action", "source": "aws.ecr",
        "account": "123456789012", "time": time, "region": "us-east-1", "resources": [],
        "detail": {"result": "SUCCESS", "repository-name": "app", "image-digest": digest,
                   "action-type": "PUSH", "image-tag": tag}})
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn send_event(s: &TestServer, secret: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
    let mut req = s
        .client
        .post(format!(
            "{}/api/v1/resources/acme/web/appImage/events",
            s.url
        ))
        .header("content-type", "application/json")
        .body(body);
    if let Some(secret) = secret {
        req = req.header("x-berth-event-secret", secret);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn versions(s: &TestServer) -> Vec<(i64, String, String)> {
    let (status, page) = s
        .admin(
            Method::GET,
            &format!("{PROJECT}/resources/appImage/versions"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version_number"].as_i64().unwrap(),
                v["digest"].as_str().unwrap().to_owned(),
                v["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn wait_for_versions(s: &TestServer, n: usize) -> Vec<(i64, String, String)> {
    for _ in 0..100 {
        let v = versions(s).await;
        if v.len() >= n {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {n} versions: {:?}", versions(s).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_by_poll_post_and_event_without_duplicates() {
    let dir = TempDir::new("images");
    let ecr = LocalEcrFixture::seeded("images-ecr").await;
    let s = TestServer::start(options(&dir.0)).await;
    setup(&s, "local", &ecr.url, &ecr.demo_keys()).await;
    let pass = password(&s, "local").await;
    let host = ecr.url.trim_start_matches("http://").to_owned();
    let a = push(&ecr.url, &pass, "app", "latest", "one").await;

    let resource = format!("{PROJECT}/resources/appImage");
    let define = |body: Value| s.admin(Method::PUT, &resource, Some(body));
    let good =
        json!({"integration": "local", "source_name": format!("{host}/app"), "poll_seconds": 1});
    for (change, field) in [
        (json!({"poll_seconds": -3}), "poll_seconds"),
        (
            json!({"source_name": format!("{host}/app:v1")}),
            "source_name",
        ),
        (json!({"source_name": "quay.io/acme/app"}), "source_name"),
        (json!({"version_name": "bad tag!"}), "version_name"),
        (json!({"integration": "nope"}), "integration"),
    ] {
        let mut body = good.clone();
        body.as_object_mut()
            .unwrap()
            .extend(change.as_object().unwrap().clone());
        assert_error(&define(body).await, 400, "invalid_field", Some(field));
    }
    assert_error(
        &s.admin(Method::GET, &format!("{PROJECT}/resources/appImage"), None)
            .await,
        404,
        "not_found",
        None,
    );
    let (status, r) = define(good.clone()).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["version_name"], "latest");

    // The poller sees the first push; a CI post of the same push is no new version.
    let v = wait_for_versions(&s, 1).await;
    assert_eq!(v, [(1, a.clone(), "poll".into())]);
    let posted = s
        .admin(
            Method::POST,
            &format!("{PROJECT}/resources/appImage/versions"),
            Some(json!({"properties": {"commit": "abc123"}})),
        )
        .await;
    assert_eq!(posted.0, StatusCode::OK, "{}", posted.1);
    assert_eq!(posted.1["new"], false);

    // A second push of the tag with other content: the event, the post and the poller all see
    // it, and it is one version.
    let (_, secret) = s
        .admin(
            Method::POST,
            &format!("{PROJECT}/resources/appImage/event-secret"),
            None,
        )
        .await;
    let secret = secret["secret"].as_str().unwrap().to_owned();
    let b = push(&ecr.url, &pass, "app", "latest", "two").await;
    assert_ne!(a, b);
    let body = |id: &str, digest: &str, tag: &str, time: &str| {
        serde_json::to_vec(&event(id, digest, tag, time)).unwrap()
    };
    let (status, got) = send_event(&s, Some(&secret), body("e-1", &b, "latest", &now())).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["outcome"], "recorded");
    let posted = s
        .admin(
            Method::POST,
            &format!("{PROJECT}/resources/appImage/versions"),
            None,
        )
        .await;
    assert_eq!(posted.1["version"]["digest"], b.as_str());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let v = versions(&s).await;
    assert_eq!(v.len(), 2, "one version per push: {v:?}");
    assert_eq!((v[0].0, v[0].1.as_str()), (2, b.as_str()));

    // Refused events change nothing.
    assert_error(
        &send_event(&s, None, body("e-2", &a, "latest", &now())).await,
        401,
        "unauthorized",
        None,
    );
    assert_error(
        &send_event(&s, Some("bes_forged"), body("e-2", &a, "latest", &now())).await,
        401,
        "unauthorized",
        None,
    );
    assert_error(
        &send_event(&s, Some(&secret), body("e-1", &a, "latest", &now())).await,
        409,
        "event_replayed",
        Some("id"),
    );
    assert_error(
        &send_event(
            &s,
            Some(&secret),
            body("e-3", &a, "latest", "2020-01-01T00:00:00Z"),
        )
        .await,
        400,
        "invalid_field",
        Some("time"),
    );
    assert_error(
        &send_event(
            &s,
            Some(&secret),
            body("e-4", "sha256:nothex", "latest", &now()),
        )
        .await,
        400,
        "invalid_field",
        Some("detail.image-digest"),
    );
    assert_error(
        &send_event(&s, Some(&secret), vec![b' '; 70 * 1024]).await,
        413,
        "payload_too_large",
        Some("body"),
    );
    let (status, ignored) = send_event(&s, Some(&secret), body("e-5", &a, "v9", &now())).await;
    assert_eq!(
        (status, &ignored["outcome"]),
        (StatusCode::ACCEPTED, &json!("ignored"))
    );
    assert_eq!(
        versions(&s).await.len(),
        2,
        "nothing refused or ignored was recorded"
    );

    // The job's environment: the newest version, or a pinned one.
    let yml = format!(
        "resources:\n  - name: appImage\n    type: image\n    integration: local\n    versionTemplate:\n      sourceName: {host}/app\n      versionName: latest\n"
    );
    let env = |pin: Value| {
        let mut body =
            json!({"project": "acme/web", "shippable_yml": yml, "resources": ["appImage"]});
        body.as_object_mut()
            .unwrap()
            .extend(pin.as_object().unwrap().clone());
        s.admin(Method::POST, "/api/v1/ci/resources", Some(body))
    };
    let (status, e) = env(json!({})).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(e["env"]["APPIMAGE_VERSIONNUMBER"], "2");
    assert_eq!(e["env"]["APPIMAGE_VERSIONDIGEST"], b.as_str());
    let (_, e) = env(json!({"version_number": 1})).await;
    assert_eq!(e["env"]["APPIMAGE_VERSIONDIGEST"], a.as_str());
    assert_error(
        &env(json!({"version_number": 7})).await,
        400,
        "invalid_field",
        Some("version_number"),
    );
    let (_, r) = s
        .admin(Method::GET, &format!("{PROJECT}/resources/appImage"), None)
        .await;
    assert_eq!(
        r["poll_seconds"], 1,
        "the file's definition keeps the interval"
    );

    // Paging, newest first.
    let (_, page) = s
        .admin(
            Method::GET,
            &format!("{PROJECT}/resources/appImage/versions?limit=1"),
            None,
        )
        .await;
    assert_eq!(page["items"][0]["version_number"], 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page) = s
        .admin(
            Method::GET,
            &format!("{PROJECT}/resources/appImage/versions?limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(page["items"][0]["version_number"], 1);
    assert!(page["next_cursor"].is_null());
    assert_error(
        &s.admin(
            Method::GET,
            &format!("{PROJECT}/resources/appImage/versions?cursor=x"),
            None,
        )
        .await,
        400,
        "invalid_field",
        Some("cursor"),
    );
    s.stop().await;
}

/// A proxy in front of the local ECR's API that answers 503 while `failing` is set.
async fn flaky_proxy(target: String, failing: Arc<AtomicBool>) -> String {
    use axum::body::{Body, to_bytes};
    use axum::extract::Request;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: Request| {
        let (failing, http, target) = (failing.clone(), http.clone(), target.clone());
        async move {
            if failing.load(Ordering::SeqCst) {
                return axum::response::Response::builder()
                    .status(503)
                    .body(Body::from(
                        "{\"__type\":\"ServiceUnavailableException\",\"message\":\"down\"}",
                    ))
                    .unwrap();
            }
            let (parts, body) = req.into_parts();
            let bytes = to_bytes(body, usize::MAX).await.unwrap();
            let mut out = http.request(parts.method, format!("{target}{}", parts.uri));
            for (k, v) in &parts.headers {
                out = out.header(k, v);
            }
            let answer = out.body(bytes).send().await.unwrap();
            let mut response = axum::response::Response::builder().status(answer.status());
            for (k, v) in answer.headers() {
                response = response.header(k, v);
            }
            response
                .body(Body::from(answer.bytes().await.unwrap()))
                .unwrap()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_backs_off_on_503_and_recovers() {
    let dir = TempDir::new("images-backoff");
    let ecr = LocalEcrFixture::seeded("images-backoff-ecr").await;
    let s = TestServer::start(options(&dir.0)).await;
    setup(&s, "local", &ecr.url, &ecr.demo_keys()).await;
    let pass = password(&s, "local").await;
    let a = push(&ecr.url, &pass, "app", "latest", "one").await;
    let failing = Arc::new(AtomicBool::new(true));
    let proxy = flaky_proxy(ecr.url.clone(), failing.clone()).await;
    // A second integration whose ECR API goes through the proxy: its token cannot be had.
    let keys = ecr.demo_keys();
    let r = s
        .admin(
            Method::POST,
            "/api/v1/integrations",
            Some(json!({"name": "flaky", "type": "ecr", "endpoint": proxy,
                "auth": {"mode": "access_keys", "access_key_id": keys.id, "secret_access_key": keys.secret},
                "subscriptions": ["acme"]})),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    let host = proxy.trim_start_matches("http://");
    let (status, r) = s
        .admin(
            Method::PUT,
            &format!("{PROJECT}/resources/appImage"),
            Some(json!({"integration": "flaky", "source_name": format!("{host}/app"), "poll_seconds": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let mut seen = Vec::new();
    for _ in 0..200 {
        let (_, r) = s
            .admin(Method::GET, &format!("{PROJECT}/resources/appImage"), None)
            .await;
        let failures = r["poll_failures"].as_i64().unwrap();
        if failures >= 2 {
            seen.push(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = seen.pop().expect("two failed polls");
    assert!(
        r["last_error"]
            .as_str()
            .unwrap()
            .contains("ServiceUnavailable"),
        "{r}"
    );
    let next = time::OffsetDateTime::parse(
        r["next_poll_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let wait = (next - time::OffsetDateTime::now_utc()).as_seconds_f64();
    assert!(wait > 2.0, "the second failure waits 4 s, not 1 s: {wait}");
    assert!(versions(&s).await.is_empty());

    failing.store(false, Ordering::SeqCst);
    let v = wait_for_versions(&s, 1).await;
    assert_eq!(v[0].1, a, "recovered: the push is seen through the proxy");
    let (_, r) = s
        .admin(Method::GET, &format!("{PROJECT}/resources/appImage"), None)
        .await;
    assert_eq!(
        (r["poll_failures"].as_i64(), &r["last_error"]),
        (Some(0), &Value::Null)
    );
    s.stop().await;
}

/// What the trigger receiver saw: each request's version number and whether its signature and
/// timestamp checked out.
type Seen = Arc<std::sync::Mutex<Vec<(i64, bool)>>>;

/// A CI system's webhook on loopback: checks `X-Berth-Signature` with its own HMAC, answers 500
/// to the first two requests and 200 after.
async fn receiver(secret: &'static str) -> (String, Seen) {
    use hmac::{KeyInit, Mac};
    let seen: Seen = Default::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let log = log.clone();
                async move {
                    let mut mac =
                        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
                    mac.update(&body);
                    let expected =
                        format!("sha256={}", berth_files::hex(&mac.finalize().into_bytes()));
                    let signed = headers
                        .get("x-berth-signature")
                        .is_some_and(|v| v.to_str().unwrap() == expected);
                    let v: Value = serde_json::from_slice(&body).unwrap();
                    let sent = time::OffsetDateTime::parse(
                        v["sent_at"].as_str().unwrap(),
                        &time::format_description::well_known::Rfc3339,
                    )
                    .unwrap();
                    let fresh = (time::OffsetDateTime::now_utc() - sent)
                        .whole_seconds()
                        .abs()
                        < 60;
                    let mut log = log.lock().unwrap();
                    log.push((
                        v["version"]["version_number"].as_i64().unwrap(),
                        signed && fresh,
                    ));
                    if log.len() <= 2 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_is_announced_signed_retried_and_once() {
    const SECRET: &str = "receiver-secret-0123456789";
    let dir = TempDir::new("images-triggers");
    let ecr = LocalEcrFixture::seeded("images-triggers-ecr").await;
    let s = TestServer::start(options(&dir.0)).await;
    setup(&s, "local", &ecr.url, &ecr.demo_keys()).await;
    let pass = password(&s, "local").await;
    let host = ecr.url.trim_start_matches("http://").to_owned();
    push(&ecr.url, &pass, "app", "latest", "one").await;
    let r = s
        .admin(
            Method::PUT,
            &format!("{PROJECT}/resources/appImage"),
            Some(json!({"integration": "local", "source_name": format!("{host}/app")})),
        )
        .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    let (url, seen) = receiver(SECRET).await;
    let triggers = format!("{PROJECT}/resources/appImage/triggers");
    for (body, field) in [
        (json!({"url": "ftp://example.com/hook"}), "url"),
        (json!({"url": "http://user:token@127.0.0.1/hook"}), "url"),
        (json!({"url": url, "secret": "short"}), "secret"),
    ] {
        assert_error(
            &s.admin(Method::POST, &triggers, Some(body)).await,
            400,
            "invalid_field",
            Some(field),
        );
    }
    let (status, added) = s
        .admin(
            Method::POST,
            &triggers,
            Some(json!({"url": url, "secret": SECRET})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert!(added["secret"].is_null(), "a given secret is not echoed");
    assert!(
        !s.seen.lock().unwrap().contains(SECRET),
        "nor shown anywhere"
    );

    let versions_path = format!("{PROJECT}/resources/appImage/versions");
    let post = || s.admin(Method::POST, &versions_path, None);
    assert_eq!(post().await.0, StatusCode::CREATED);
    assert_eq!(
        post().await.0,
        StatusCode::OK,
        "the same push again: no new version"
    );
    let delivered = |log: &Value| log["items"][0]["deliveries"][0]["state"] == "DELIVERED";
    let mut log = Value::Null;
    for _ in 0..100 {
        log = s.admin(Method::GET, &triggers, None).await.1;
        if delivered(&log) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(delivered(&log), "{log}");
    let d = &log["items"][0]["deliveries"][0];
    assert_eq!(
        (d["attempts"].as_i64(), d["last_status"].as_i64()),
        (Some(3), Some(200)),
        "{d}"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [(1, true), (1, true), (1, true)],
        "signed, retried twice"
    );

    // The tag moves: exactly one more announcement, for version 2.
    push(&ecr.url, &pass, "app", "latest", "two").await;
    assert_eq!(post().await.0, StatusCode::CREATED);
    for _ in 0..100 {
        if seen.lock().unwrap().len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        *seen.lock().unwrap(),
        [(1, true), (1, true), (1, true), (2, true)],
        "one delivery per version"
    );
    let id = log["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = s
        .admin(Method::DELETE, &format!("{triggers}/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    s.stop().await;
}

async fn manifest_heads(ecr: &LocalEcrFixture) -> u64 {
    let m: Value = reqwest::get(format!("{}/_berth/metrics", ecr.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    m["calls"]["registry:HEAD manifest"].as_u64().unwrap_or(0)
}

/// Three projects following one tag every 3 s, added a second apart: one registry read per
/// 3 s, not three (each would be due in its own round if it were polled on its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_read_per_tag_however_many_projects_follow_it() {
    let dir = TempDir::new("images-shared");
    let ecr = LocalEcrFixture::seeded("images-shared-ecr").await;
    let s = TestServer::start(options(&dir.0)).await;
    setup(&s, "local", &ecr.url, &ecr.demo_keys()).await;
    let pass = password(&s, "local").await;
    let host = ecr.url.trim_start_matches("http://").to_owned();
    push(&ecr.url, &pass, "app", "latest", "one").await;
    for project in ["acme/web", "acme/api", "acme/cli"] {
        if project != "acme/web" {
            s.admin(
                Method::POST,
                "/api/v1/projects",
                Some(json!({"name": project, "subscription": "acme"})),
            )
            .await;
        }
        let r = s
            .admin(
                Method::PUT,
                &format!("/api/v1/projects/{project}/resources/appImage"),
                Some(json!({"integration": "local", "source_name": format!("{host}/app"), "poll_seconds": 3})),
            )
            .await;
        assert_eq!(r.0, StatusCode::OK, "{}", r.1);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    wait_for_versions(&s, 1).await;
    let before = manifest_heads(&ecr).await;
    let started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(9)).await;
    let reads = manifest_heads(&ecr).await - before;
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        reads as f64 <= seconds / 3.0 + 1.0,
        "{reads} reads in {seconds:.1} s for one tag followed three times every 3 s"
    );
    assert!(reads >= 1, "the tag is still polled: {reads} reads");
    for project in ["acme/api", "acme/cli"] {
        let (_, r) = s
            .admin(
                Method::GET,
                &format!("/api/v1/projects/{project}/resources/appImage"),
                None,
            )
            .await;
        assert_eq!(r["latest_version"], 1, "{r}");
    }
    s.stop().await;
}

/// Image enrichment: a report of a pushed image is keyed by the digest Berth reads, links the
/// commit, the pull request and the issues, and shows the resource versions the digest became;
/// images that do not exist, malformed digests, foreign projects and unassigned integrations are
/// refused naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_images_link_commits_pull_requests_issues_and_versions() {
    let dir = TempDir::new("images-reports");
    let ecr = LocalEcrFixture::seeded("images-reports-ecr").await;
    let s = TestServer::start(options(&dir.0)).await;
    setup(&s, "local", &ecr.url, &ecr.demo_keys()).await;
    let pass = password(&s, "local").await;
    let host = ecr.url.trim_start_matches("http://").to_owned();
    let digest = push(&ecr.url, &pass, "app", "v1.4", "one").await;
    let report = |image: String, extra: Value| {
        let mut body = json!({"image": image, "project": "acme/web",
            "git": {"ci": "github-actions", "commit": "abc123", "branch": "feature/DEV-7-login",
                    "message": "Fix OPS-3", "pull_request": "42",
                    "pull_request_url": "https://github.com/acme/web/pull/42",
                    "pull_request_title": "DEV-8: login page"},
            "issue_prefixes": "DEV,OPS", "issue_tracker_url": "https://jira.example.com/browse/"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        s.admin(Method::POST, "/api/v1/images/reports", Some(body))
    };
    let (status, r) = report(format!("{host}/app:v1.4"), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(
        r["digest"],
        digest.as_str(),
        "keyed by the digest Berth read"
    );
    assert_eq!(r["platforms"], json!(["linux/amd64"]));
    assert_eq!(r["integration"], "local", "found by the registry it serves");
    let keys: Vec<&str> = r["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["DEV-7", "OPS-3", "DEV-8"]);
    assert_eq!(
        r["issues"][0]["url"],
        "https://jira.example.com/browse/DEV-7"
    );

    // The digest became a resource's version.
    s.admin(
        Method::PUT,
        &format!("{PROJECT}/resources/appImage"),
        Some(json!({"integration": "local", "source_name": format!("{host}/app"), "version_name": "v1.4"})),
    )
    .await;
    s.admin(
        Method::POST,
        &format!("{PROJECT}/resources/appImage/versions"),
        None,
    )
    .await;
    let (status, d) = s
        .admin(Method::GET, &format!("/api/v1/images/{digest}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["commits"], json!(["abc123"]));
    assert_eq!(
        d["pull_requests"],
        json!(["https://github.com/acme/web/pull/42"])
    );
    assert_eq!(d["tags"], json!(["v1.4"]));
    assert_eq!(d["versions"][0]["resource"], "appImage");
    assert_eq!(d["versions"][0]["version_number"], 1);

    for query in ["issue=OPS-3", "commit=abc123", "tag=v1.4"] {
        let (_, l) = s
            .admin(Method::GET, &format!("/api/v1/images?{query}"), None)
            .await;
        assert_eq!(l["items"][0]["digest"], digest.as_str(), "{query}: {l}");
    }
    let (_, none) = s
        .admin(Method::GET, "/api/v1/images?issue=DEV-999", None)
        .await;
    assert_eq!(none["items"], json!([]));

    // Refusals name the field, and nothing is stored.
    let (status, gone) = report(format!("{host}/app:v9"), json!({})).await;
    assert_eq!(
        (status, gone["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("image")),
        "{gone}"
    );
    assert_error(
        &report("not an image!".into(), json!({})).await,
        400,
        "invalid_field",
        Some("image"),
    );
    assert_error(
        &report(
            format!("{host}/app:v1.4"),
            json!({"issue_pattern": "/([A-Z/"}),
        )
        .await,
        400,
        "invalid_field",
        Some("issue_pattern"),
    );
    assert_error(
        &report(format!("{host}/app:v1.4"), json!({"project": "acme/none"})).await,
        400,
        "invalid_field",
        Some("project"),
    );
    assert_error(
        &report(format!("{host}/app:v1.4"), json!({"integration": "nope"})).await,
        400,
        "invalid_field",
        Some("integration"),
    );
    assert_error(
        &s.admin(Method::GET, "/api/v1/images/sha256:xyz", None)
            .await,
        400,
        "invalid_field",
        Some("digest"),
    );
    let (_, l) = s.admin(Method::GET, "/api/v1/images", None).await;
    assert_eq!(l["items"].as_array().unwrap().len(), 1, "{l}");
    assert_eq!(l["items"][0]["reports"], 1);

    // Another subscription's token sees none of it.
    s.admin(
        Method::POST,
        "/api/v1/subscriptions",
        Some(json!({"name": "globex"})),
    )
    .await;
    let (_, t) = s
        .admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"subscription": "globex"})),
        )
        .await;
    let theirs = t["token"].as_str().unwrap().to_owned();
    let (_, l) = s
        .call(Method::GET, "/api/v1/images", Some(&theirs), None)
        .await;
    assert_eq!(l["items"], json!([]));
    let hidden = s
        .call(
            Method::GET,
            &format!("/api/v1/images/{digest}"),
            Some(&theirs),
            None,
        )
        .await;
    assert_error(&hidden, 404, "not_found", None);
    let (_, acme) = s
        .admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"subscription": "acme"})),
        )
        .await;
    let ours = acme["token"].as_str().unwrap().to_owned();
    let (status, _) = s
        .call(
            Method::GET,
            &format!("/api/v1/images/{digest}"),
            Some(&ours),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the project's own subscription sees it"
    );
    s.stop().await;
}
