//! A real server on port 0 with its own data directory, and a small JSON client for it.
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use berth_server::{Server, ServerOptions};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// Every log line of this test binary, at TRACE level, for tests that prove what is not logged.
pub fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || Sink(sink.clone()))
            .try_init()
            .ok();
        logs
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn options(dir: &std::path::Path) -> ServerOptions {
    ServerOptions {
        data_dir: dir.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        database: None,
        master_key: None,
        master_key_file: None,
        idle_timeout: berth_http::DEFAULT_IDLE_TIMEOUT,
        // Tests poll image resources every second.
        poll_floor: std::time::Duration::from_secs(1),
        delivery_retry_base: std::time::Duration::from_millis(500),
    }
}

pub struct TestServer {
    pub url: String,
    pub admin: String,
    pub client: reqwest::Client,
    pub shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// Every response body this server sent to the tests, for secret scans.
    pub seen: Arc<Mutex<String>>,
}

impl TestServer {
    pub async fn start(options: ServerOptions) -> TestServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let server = Server::start(&options).await.expect("server starts");
        let admin = match &server.new_admin_token {
            Some(t) => t.expose_secret().to_owned(),
            None => std::fs::read_to_string(options.data_dir.join("initial-admin-token"))
                .unwrap()
                .trim()
                .to_owned(),
        };
        let url = format!("http://{}", server.addr);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        TestServer {
            url,
            admin,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            handle: Some(handle),
            seen: Default::default(),
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{}", self.url, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        self.seen.lock().unwrap().push_str(&text);
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(method, path, Some(&self.admin.clone()), body)
            .await
    }

    /// Adds runtime `runtime` and an integration `name` (the machine's own identity, no
    /// secrets) shared with it.
    pub async fn share_ambient(&self, runtime: &str, name: &str) {
        let r = self
            .admin(
                Method::POST,
                "/api/v1/runtimes",
                Some(serde_json::json!({"name": runtime})),
            )
            .await;
        assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
        let body = serde_json::json!({"name": name, "type": "ecr", "auth": {"mode": "ambient"},
            "runtimes": {"selected": [runtime]}});
        let r = self
            .admin(Method::POST, "/api/v1/integrations", Some(body))
            .await;
        assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.url, path))
            .bearer_auth(&self.admin)
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

pub fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// Asserts an error envelope: status, code and (when given) the field.
#[track_caller]
pub fn assert_error(got: &(StatusCode, Value), status: u16, code: &str, field: Option<&str>) {
    assert_eq!(got.0.as_u16(), status, "body: {}", got.1);
    assert_eq!(got.1["error"]["code"], code, "body: {}", got.1);
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    if let Some(f) = field {
        assert_eq!(got.1["error"]["field"], f, "body: {}", got.1);
    }
}

/// Image fixtures against the local ECR, for the image resource and enrichment tests.
#[allow(dead_code)]
pub mod images {
    use reqwest::{Method, StatusCode};
    use serde_json::json;

    use super::TestServer;

    /// Pushes a one-config, no-layer image whose config says `label`, as `repository:tag`;
    /// returns its manifest digest.
    pub async fn push(
        registry: &str,
        password: &str,
        repository: &str,
        tag: &str,
        label: &str,
    ) -> String {
        let http = reqwest::Client::new();
        let config =
            json!({"architecture": "amd64", "os": "linux", "config": {"Labels": {"l": label}},
            "rootfs": {"type": "layers", "diff_ids": []}})
            .to_string();
        let config_digest = berth_registry::sha256_digest(config.as_bytes());
        let started = http
            .post(format!("{registry}/v2/{repository}/blobs/uploads/"))
            .basic_auth("AWS", Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 202, "{:?}", started.text().await);
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        let location = match location.starts_with("http") {
            true => location,
            false => format!("{registry}{location}"),
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = http
            .put(format!("{location}{sep}digest={config_digest}"))
            .basic_auth("AWS", Some(password))
            .body(config.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201, "{:?}", put.text().await);
        let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": []})
        .to_string();
        let r = http
            .put(format!("{registry}/v2/{repository}/manifests/{tag}"))
            .basic_auth("AWS", Some(password))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
        berth_registry::sha256_digest(manifest.as_bytes())
    }

    /// Subscription acme with project acme/web, and integration `name` on `endpoint` assigned to it.
    pub async fn setup(s: &TestServer, name: &str, endpoint: &str, keys: &berth_testkit::Keys) {
        s.admin(
            Method::POST,
            "/api/v1/subscriptions",
            Some(json!({"name": "acme"})),
        )
        .await;
        s.admin(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "acme/web", "subscription": "acme"})),
        )
        .await;
        let r = s
            .admin(
                Method::POST,
                "/api/v1/integrations",
                Some(json!({"name": name, "type": "ecr", "endpoint": endpoint,
                    "auth": {"mode": "access_keys", "access_key_id": keys.id, "secret_access_key": keys.secret},
                    "subscriptions": ["acme"]})),
            )
            .await;
        assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
        let r = s
            .admin(
                Method::POST,
                "/api/v1/repositories",
                Some(json!({"integration": name, "repository": "app"})),
            )
            .await;
        assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    }

    pub async fn password(s: &TestServer, integration: &str) -> String {
        let (_, c) = s
            .admin(
                Method::POST,
                &format!("/api/v1/integrations/{integration}/credentials"),
                None,
            )
            .await;
        c["password"].as_str().unwrap().to_owned()
    }
}
