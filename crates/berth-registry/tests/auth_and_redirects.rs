//! What ECR and Docker Hub-style registries do that docker-registry does not: Bearer token auth
//! (a token service trades Basic credentials for a scoped token) and blob downloads redirected to
//! a pre-signed URL on another host, which must not receive the registry's `Authorization`.
//! A front server in this test adds both behaviours to Debian's docker-registry.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_registry::{
    CopyOptions, Credentials, OciLayout, RegistryClient, RemoteImage, Silent, StaticCredentials,
};
use berth_testkit::TempDir;
use common::DockerRegistry;

struct Front {
    upstream: String,
    me: Mutex<String>,
    storage: Mutex<String>,
    /// Token requests seen: (query, had Basic credentials).
    token_requests: Mutex<Vec<(String, bool)>>,
    /// Requests the "pre-signed" host saw that carried an Authorization header.
    leaked: Mutex<u32>,
    presigned: Mutex<u32>,
    http: reqwest::Client,
}

const TOKEN: &str = "Bearer token-for-test";

async fn forward(f: &Front, req: Request, path_query: &str) -> Response {
    let method = req.method().clone();
    let mut headers = reqwest::header::HeaderMap::new();
    for (n, v) in req.headers() {
        if n != "host" && n != "authorization" {
            headers.insert(n.clone(), v.clone());
        }
    }
    let body = reqwest::Body::wrap_stream(req.into_body().into_data_stream());
    let upstream = f
        .http
        .request(method, format!("{}{path_query}", f.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap();
    let mut out = Response::builder().status(upstream.status());
    for (n, v) in upstream.headers() {
        if n == "location" {
            let me = f.me.lock().unwrap().clone();
            out = out.header(n, v.to_str().unwrap().replace(&f.upstream, &me));
        } else {
            out = out.header(n, v);
        }
    }
    out.body(Body::from_stream(upstream.bytes_stream()))
        .unwrap()
}

async fn front(State(f): State<Arc<Front>>, req: Request) -> Response {
    let path_query = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    if path_query.starts_with("/token") {
        let basic = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Basic "));
        f.token_requests
            .lock()
            .unwrap()
            .push((path_query.clone(), basic));
        if !basic {
            return Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .body(Body::empty())
                .unwrap();
        }
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(r#"{"token":"token-for-test","expires_in":300}"#))
            .unwrap();
    }
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(TOKEN);
    if !authorized {
        let repo = path_query
            .strip_prefix("/v2/")
            .and_then(|p| p.split("/blobs/").next())
            .and_then(|p| p.split("/manifests/").next())
            .unwrap_or("");
        let me = f.me.lock().unwrap().clone();
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(
                "www-authenticate",
                format!(
                    r#"Bearer realm="{me}/token",service="front.test",scope="repository:{repo}:pull,push""#
                ),
            )
            .body(Body::empty())
            .unwrap();
    }
    // Blob downloads go to "S3": a pre-signed URL on another host.
    if req.method() == "GET" && path_query.contains("/blobs/sha256:") {
        let storage = f.storage.lock().unwrap().clone();
        return Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(
                "location",
                format!("{storage}/presigned{path_query}?X-Amz-Signature=abc"),
            )
            .body(Body::empty())
            .unwrap();
    }
    forward(&f, req, &path_query).await
}

async fn presigned(State(f): State<Arc<Front>>, req: Request) -> Response {
    *f.presigned.lock().unwrap() += 1;
    if req.headers().contains_key("authorization") {
        *f.leaked.lock().unwrap() += 1;
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Body::from("Only one auth mechanism allowed"))
            .unwrap();
    }
    let path = req.uri().path().trim_start_matches("/presigned").to_owned();
    forward(&f, req, &path).await
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_and_presigned_redirects() {
    let Some(registry) = DockerRegistry::start().await else {
        return;
    };
    let work = TempDir::new("bearer");
    let creds = Arc::new(StaticCredentials(
        Credentials {
            username: "AWS".into(),
            password: "secret-password".to_owned().into(),
        },
        "the test credentials".into(),
    ));
    // Built first: it installs the TLS provider the front's own client needs.
    let client_for =
        |host: &str| Arc::new(RegistryClient::new(host, creds.clone(), false).unwrap());
    let _ = client_for("127.0.0.1:1");
    let f = Arc::new(Front {
        upstream: format!("http://127.0.0.1:{}", registry.port),
        me: Mutex::new(String::new()),
        storage: Mutex::new(String::new()),
        token_requests: Mutex::new(Vec::new()),
        leaked: Mutex::new(0),
        presigned: Mutex::new(0),
        http: reqwest::Client::new(),
    });
    let front_addr = serve(axum::Router::new().fallback(front).with_state(f.clone())).await;
    let storage_addr = serve(
        axum::Router::new()
            .fallback(presigned)
            .with_state(f.clone()),
    )
    .await;
    *f.me.lock().unwrap() = format!("http://{front_addr}");
    *f.storage.lock().unwrap() = format!("http://{storage_addr}");
    let host = front_addr.to_string();

    // A real filesystem image, built from scratch.
    let files = work.0.join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("a.txt"), "a\n".repeat(100_000)).unwrap();
    let spec = berth_registry::BuildSpec {
        adds: vec![(files.clone(), "/data".into())],
        created_by: "test".into(),
        ..Default::default()
    };
    let scratch = berth_registry::Scratch::new(None);
    let built = berth_registry::build(&scratch, &spec, &work.0)
        .await
        .unwrap();
    let options = CopyOptions {
        tag: Some("v1".into()),
        ..CopyOptions::default()
    };
    let push = RemoteImage::new(client_for(&host), "team/app", "v1");
    let pushed = berth_registry::copy_plan(
        &built,
        &push,
        &built.plan,
        &options,
        Arc::new(Silent),
        std::time::Instant::now(),
    )
    .await
    .expect("push with a Bearer token");
    let requests = f.token_requests.lock().unwrap().clone();
    assert!(!requests.is_empty(), "the token service was asked");
    assert!(
        requests.iter().all(|(_, basic)| *basic),
        "with Basic credentials"
    );
    assert!(
        requests
            .iter()
            .any(|(q, _)| q.contains("service=front.test")
                && q.contains("scope=repository%3Ateam%2Fapp%3Apull%2Cpush")),
        "{requests:?}"
    );

    // Pull: blobs come from the pre-signed host, which never sees the registry's token.
    let pulled_dir = work.0.join("pulled");
    let pull = RemoteImage::new(client_for(&host), "team/app", "v1");
    let dest = OciLayout::new(&pulled_dir, Some("v1".into()));
    let pulled = berth_registry::copy(&pull, &dest, &options, Arc::new(Silent))
        .await
        .expect("pull through pre-signed redirects");
    assert_eq!(pulled.digest, pushed.digest);
    assert!(
        *f.presigned.lock().unwrap() >= 2,
        "blobs came from the other host"
    );
    assert_eq!(
        *f.leaked.lock().unwrap(),
        0,
        "no Authorization went to the other host"
    );
    drop(registry);
}
