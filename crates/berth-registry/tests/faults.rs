//! Fault injection: a proxy in front of Debian's docker-registry cuts an upload mid-blob, cuts a
//! download mid-blob, answers manifest pushes with 500 and refuses mounts (202). The engine must
//! resume (not restart) the upload, resume the download with `Range`, retry, fall back to sending,
//! and end with a complete, verified image.
//!
//! docker-registry ties each upload URL to a state token that changes with every chunk, so after a
//! cut the client's URL is stale and the upload cannot be resumed there (the engine then restarts
//! the blob). The proxy keeps each upload's latest state, as registries without state tokens
//! (ECR, the local ECR) do, so the resume path is what gets tested.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use berth_registry::{
    Anonymous, CopyOptions, Event, OciLayout, Progress, RegistryClient, RemoteImage, Summary,
};
use futures_util::StreamExt;

mod common;

use berth_testkit::TempDir;
use common::DockerRegistry;

const CUT: usize = 3 * 1024 * 1024 + 17;

struct Faults {
    upstream: String,
    proxy: Mutex<String>,
    cut_patch: AtomicBool,
    cut_get: AtomicBool,
    manifest_500s: AtomicU32,
    /// Answer this many blob HEADs with ECR's "token expired" DENIED.
    expired: AtomicU32,
    /// Refuse uploads as ECR does for a user without push permission.
    deny_uploads: AtomicBool,
    refuse_mounts: AtomicBool,
    log: Mutex<Vec<String>>,
    /// Upload id → the registry's latest upload URL.
    uploads: Mutex<std::collections::HashMap<String, String>>,
    http: reqwest::Client,
}

fn upload_id(path_query: &str) -> Option<String> {
    let rest = path_query.split("/blobs/uploads/").nth(1)?;
    let id = rest.split(['?', '/']).next()?;
    (!id.is_empty()).then(|| id.to_owned())
}

/// An OCI layout with a config and two pseudo-random 20 MiB layers (large enough to be sent as
/// resumable chunked uploads).
fn layout(dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = berth_registry::sha256_hex(bytes);
        std::fs::write(blobs.join(&d), bytes).unwrap();
        (format!("sha256:{d}"), bytes.len())
    };
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut layers = Vec::new();
    for _ in 0..2 {
        let mut data = vec![0u8; 20 * 1024 * 1024];
        for chunk in data.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        layers.push(put(&data));
    }
    let config =
        put(br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": layers.iter().map(|(d, s)| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})).collect::<Vec<_>>(),
    });
    let m = serde_json::to_vec(&manifest).unwrap();
    let (md, ms) = put(&m);
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]})).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

fn error(status: StatusCode) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(
            r#"{"errors":[{"code":"UNKNOWN","message":"injected fault"}]}"#,
        ))
        .unwrap()
}

async fn proxy(State(f): State<Arc<Faults>>, req: Request) -> Response {
    let method = req.method().clone();
    let mut path_query = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let line = {
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        format!(
            "{method} {path_query} range={} content-range={}",
            header("range"),
            header("content-range")
        )
    };
    f.log.lock().unwrap().push(line);
    if method == "POST" && path_query.contains("mount=") && f.refuse_mounts.load(Ordering::SeqCst) {
        path_query = path_query.split('?').next().unwrap().to_owned();
    }
    if let Some(id) = upload_id(&path_query)
        && let Some(latest) = f.uploads.lock().unwrap().get(&id).cloned()
    {
        let digest = path_query
            .split(['?', '&'])
            .find(|p| p.starts_with("digest="))
            .map(str::to_owned);
        let latest = latest.trim_start_matches(&f.upstream).to_owned();
        path_query = match digest {
            Some(d) => format!("{latest}&{d}"),
            None => latest,
        };
    }
    if method == "POST"
        && path_query.contains("/blobs/uploads/")
        && f.deny_uploads.load(Ordering::SeqCst)
    {
        return Response::builder()
            .status(StatusCode::FORBIDDEN)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"errors":[{"code":"DENIED","message":"User is not authorized to perform: ecr:InitiateLayerUpload on repository test/e"}]}"#))
            .unwrap();
    }
    // Take one expiry atomically: two concurrent HEADs must not both see 1 and wrap it below 0.
    if method == "HEAD"
        && f.expired
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        return Response::builder()
            .status(StatusCode::FORBIDDEN)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"errors":[{"code":"DENIED","message":"Your authorization token has expired. Reauthenticate and try again."}]}"#))
            .unwrap();
    }
    if method == "PUT" && path_query.contains("/manifests/") {
        let left = f.manifest_500s.load(Ordering::SeqCst);
        if left > 0 {
            f.manifest_500s.store(left - 1, Ordering::SeqCst);
            return error(StatusCode::INTERNAL_SERVER_ERROR);
        }
    }
    let mut headers = reqwest::header::HeaderMap::new();
    for (n, v) in req.headers() {
        if n != "host" {
            headers.insert(n.clone(), v.clone());
        }
    }
    let url = format!("{}{path_query}", f.upstream);
    if method == "PATCH" && f.cut_patch.swap(false, Ordering::SeqCst) {
        // Pass the first CUT bytes on as a chunk, then break off: the registry keeps them.
        let mut body = req.into_body().into_data_stream();
        let mut got = Vec::new();
        while got.len() < CUT {
            match body.next().await {
                Some(Ok(b)) => got.extend_from_slice(&b),
                _ => break,
            }
        }
        got.truncate(CUT);
        headers.insert("content-length", HeaderValue::from(got.len()));
        headers.insert(
            "content-range",
            HeaderValue::from_str(&format!("0-{}", got.len() - 1)).unwrap(),
        );
        let r = f
            .http
            .patch(&url)
            .headers(headers)
            .body(got)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "the registry must accept the first part");
        remember(&f, r.headers());
        return error(StatusCode::SERVICE_UNAVAILABLE);
    }
    let body = reqwest::Body::wrap_stream(req.into_body().into_data_stream());
    let upstream = f
        .http
        .request(method.clone(), &url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap();
    remember(&f, upstream.headers());
    let mut out = Response::builder().status(upstream.status());
    for (n, v) in upstream.headers() {
        if n == "location" {
            let l = v
                .to_str()
                .unwrap()
                .replace(&f.upstream, &f.proxy.lock().unwrap());
            out = out.header(n, l);
        } else {
            out = out.header(n, v);
        }
    }
    let is_blob_get = method == "GET" && path_query.contains("/blobs/sha256:");
    let large = upstream.content_length().unwrap_or(0) > CUT as u64;
    if is_blob_get && upstream.status() == 200 && large && f.cut_get.swap(false, Ordering::SeqCst) {
        // Send part of the blob, then fail the body: the connection breaks mid-download.
        let mut sent = 0usize;
        let stream = upstream.bytes_stream().map(move |chunk| {
            let chunk = chunk.map_err(std::io::Error::other)?;
            sent += chunk.len();
            if sent > CUT {
                return Err(std::io::Error::other("injected cut"));
            }
            Ok(chunk)
        });
        return out.body(Body::from_stream(stream)).unwrap();
    }
    out.body(Body::from_stream(upstream.bytes_stream()))
        .unwrap()
}

fn remember(f: &Faults, headers: &reqwest::header::HeaderMap) {
    if let Some(loc) = headers.get("location").and_then(|v| v.to_str().ok())
        && let Some(id) = upload_id(loc)
    {
        let absolute = if loc.starts_with("http") {
            loc.to_owned()
        } else {
            format!("{}{loc}", f.upstream)
        };
        f.uploads.lock().unwrap().insert(id, absolute);
    }
}

struct Events(Mutex<Vec<Event>>);
impl Progress for Events {
    fn event(&self, e: Event) {
        if !matches!(e, Event::BlobProgress { .. }) {
            self.0.lock().unwrap().push(e);
        }
    }
}

fn client(host: &str) -> Arc<RegistryClient> {
    let mut c = RegistryClient::new(host, Arc::new(Anonymous), false).unwrap();
    c.retry.first_delay = Duration::from_millis(20);
    Arc::new(c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_resume_downloads_resume_failures_retry_and_mounts_fall_back() {
    let Some(registry) = DockerRegistry::start().await else {
        return;
    };
    let port = registry.port;
    let work = TempDir::new("faults");
    let _ = client("127.0.0.1:1"); // installs the TLS provider the proxy's client needs too
    let faults = Arc::new(Faults {
        upstream: format!("http://127.0.0.1:{port}"),
        proxy: Mutex::new(String::new()),
        cut_patch: AtomicBool::new(true),
        cut_get: AtomicBool::new(false),
        manifest_500s: AtomicU32::new(2),
        expired: AtomicU32::new(0),
        deny_uploads: AtomicBool::new(false),
        refuse_mounts: AtomicBool::new(false),
        log: Mutex::new(Vec::new()),
        uploads: Mutex::new(std::collections::HashMap::new()),
        http: reqwest::Client::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    *faults.proxy.lock().unwrap() = format!("http://{addr}");
    let app = axum::Router::new()
        .fallback(proxy)
        .with_state(faults.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let host = addr.to_string();

    let src_dir = work.0.join("src");
    layout(&src_dir);
    let source = OciLayout::new(&src_dir, Some("v1".into()));
    let events = Arc::new(Events(Mutex::new(Vec::new())));
    let push = RemoteImage::new(client(&host), "test/a", "v1");
    let options = CopyOptions {
        tag: Some("v1".into()),
        ..CopyOptions::default()
    };
    let summary: Summary = berth_registry::copy(&source, &push, &options, events.clone())
        .await
        .expect("the push survives a cut upload and two 500s");
    assert_eq!(summary.blobs_copied, 3);

    let log = faults.log.lock().unwrap().clone();
    let resumed = log
        .iter()
        .any(|l| l.starts_with("PATCH") && l.contains(&format!("content-range={CUT}-")));
    assert!(
        resumed,
        "the upload resumed at byte {CUT} instead of restarting:\n{}",
        log.join("\n")
    );
    let retries = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::Retry { .. }))
        .count();
    assert!(retries >= 1, "retries are reported");
    assert_eq!(
        faults.manifest_500s.load(Ordering::SeqCst),
        0,
        "both 500s were met and retried"
    );

    // Pull through a download that breaks mid-blob: resumed with Range, verified, identical.
    faults.cut_get.store(true, Ordering::SeqCst);
    let pulled = work.0.join("pulled");
    let pull_src = RemoteImage::new(client(&host), "test/a", "v1");
    let dest = OciLayout::new(&pulled, Some("v1".into()));
    let pulled_summary =
        berth_registry::copy(&pull_src, &dest, &options, Arc::new(berth_registry::Silent))
            .await
            .expect("the pull survives a cut download");
    assert_eq!(pulled_summary.digest, summary.digest);
    let log = faults.log.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET") && l.contains("range=bytes=")),
        "the download resumed with Range:\n{}",
        log.join("\n")
    );
    for entry in std::fs::read_dir(src_dir.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        assert_eq!(
            std::fs::read(entry.path()).unwrap(),
            std::fs::read(pulled.join("blobs/sha256").join(entry.file_name())).unwrap()
        );
    }

    // A registry that answers mounts with 202: the engine sends the blobs instead.
    faults.refuse_mounts.store(true, Ordering::SeqCst);
    let from = RemoteImage::new(client(&host), "test/a", "v1");
    let to = RemoteImage::new(client(&host), "test/b", "v1");
    let copied = berth_registry::copy(&from, &to, &options, Arc::new(berth_registry::Silent))
        .await
        .unwrap();
    assert_eq!((copied.blobs_mounted, copied.blobs_copied), (0, 3));
    assert!(
        faults
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("mount=")),
        "a mount was tried first"
    );
    // ...and when mounts work, nothing is sent.
    faults.refuse_mounts.store(false, Ordering::SeqCst);
    let to = RemoteImage::new(client(&host), "test/c", "v1");
    let mounted = berth_registry::copy(&from, &to, &options, Arc::new(berth_registry::Silent))
        .await
        .unwrap();
    assert_eq!((mounted.blobs_mounted, mounted.bytes_moved), (3, 0));

    // A token that expires mid-transfer: the client asks its credential source for fresh ones
    // once and carries on.
    faults.expired.store(1, Ordering::SeqCst);
    let counter = Arc::new(Counting(AtomicU32::new(0), AtomicU32::new(0)));
    let mut c = RegistryClient::new(&host, counter.clone(), false).unwrap();
    c.retry.first_delay = Duration::from_millis(20);
    let to = RemoteImage::new(Arc::new(c), "test/d", "v1");
    berth_registry::copy(&source, &to, &options, Arc::new(berth_registry::Silent))
        .await
        .expect("the push survives an expired token");
    assert_eq!(faults.expired.load(Ordering::SeqCst), 0);
    assert_eq!(counter.1.load(Ordering::SeqCst), 1, "one refresh");

    // No push permission: the error says which, and no tag appears.
    faults.deny_uploads.store(true, Ordering::SeqCst);
    let to = RemoteImage::new(client(&host), "test/e", "v1");
    let err = berth_registry::copy(&source, &to, &options, Arc::new(berth_registry::Silent))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ecr:InitiateLayerUpload") && err.contains("push permission"),
        "{err}"
    );
    faults.deny_uploads.store(false, Ordering::SeqCst);
    let missing = client(&host)
        .get_manifest("test/e", "v1")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("not found") || missing.contains("does not exist"),
        "{missing}"
    );
    drop(registry);
}

/// Counts credential requests (all, and refreshes).
struct Counting(AtomicU32, AtomicU32);

#[async_trait::async_trait]
impl berth_registry::CredentialSource for Counting {
    async fn credentials(
        &self,
        _: &str,
        refresh: bool,
    ) -> berth_registry::Result<Option<berth_registry::Credentials>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if refresh {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
        Ok(Some(berth_registry::Credentials {
            username: "AWS".into(),
            password: format!("token-{}", self.0.load(Ordering::SeqCst)).into(),
        }))
    }
    fn describe(&self) -> String {
        "a counting test source".into()
    }
}
