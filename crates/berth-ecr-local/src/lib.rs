//! The local ECR: an Amazon ECR look-alike, so Berth runs end to end with no AWS account and its
//! tests run against something real clients accept unchanged. One listener speaks the ECR
//! control plane (JSON 1.1), STS and IAM's GetRole (query protocol, XML) and the registry v2 / OCI distribution
//! API, checks SigV4 signatures against its own users and issued sessions, and applies simple
//! allow-list policies; a second one, the layer bucket, serves the pre-signed layer downloads
//! that blob GETs redirect to, as ECR's redirect to S3.
//!
//! This crate owns those wire protocols and the image storage behind them. It must not depend on
//! Berth's integration store, server or broker: it is a stand-in for AWS, and Berth talks to it
//! the way it talks to AWS.

#![forbid(unsafe_code)]
// No function over 100 lines in `src/`: a longer one is doing two jobs.
#![deny(clippy::too_many_lines)]

pub mod blob_store;
mod control;
mod ecr_api;
mod error;
pub mod iam;
mod iam_api;
mod ids;
mod layer_store;
pub mod oci;
pub mod oidc;
mod range;
mod registry;
pub mod sigv4;
mod storage;
mod sts;
mod token;
mod uploads;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub use iam::{DEMO_PROFILE, IamConfig};
pub use uploads::UploadLimits;

/// Settings for one local ECR listener.
#[derive(Clone)]
pub struct LocalEcrOptions {
    /// Holds `iam.toml`, `credentials`, `server.key`, `registry.db`, `blobs/`.
    pub dir: PathBuf,
    pub listen: SocketAddr,
    /// What `proxyEndpoint` and repository URIs point at; default `http://<bound address>`.
    pub public_url: Option<String>,
    /// Account of the seeded demo user and role.
    pub account_id: String,
    /// Region written into the demo credentials file.
    pub default_region: String,
    /// Lifetime of registry tokens (ECR: 12 hours).
    pub token_ttl: Duration,
    /// Create repositories on first push (ECR does not; off by default).
    pub create_on_push: bool,
    /// Seconds to add to this server's clock when it checks signatures: a server whose clock is
    /// off, so clients' clock-skew handling can be exercised.
    pub clock_offset_seconds: i64,
    /// Idle expiry and per-principal cap of blob upload sessions.
    pub upload_limits: UploadLimits,
    /// A connection that moves no byte for this long is closed (half-sent headers, stalls).
    pub idle_timeout: Duration,
    /// Where layer downloads are served (blob GETs on `/v2/` redirect there, as ECR's go to S3).
    pub layer_listen: LayerListen,
    /// What the redirects point at, when not the layer listener's bound address.
    pub layer_public_url: Option<String>,
    /// Where finished blobs are kept [default: files under `dir`].
    pub blob_store: Option<Arc<dyn blob_store::BlobStore>>,
}

/// Where the layer bucket listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerListen {
    /// A free port on the main listener's address; off when `public_url` is set (behind a proxy
    /// only the proxied port may be reachable).
    Auto,
    /// Blob GETs are served in line on `/v2/`.
    Off,
    At(SocketAddr),
}

impl LocalEcrOptions {
    pub fn new(dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        LocalEcrOptions {
            dir: dir.into(),
            listen,
            public_url: None,
            account_id: "123456789012".into(),
            default_region: "us-east-1".into(),
            token_ttl: Duration::from_secs(12 * 3600),
            create_on_push: false,
            clock_offset_seconds: 0,
            upload_limits: UploadLimits::default(),
            idle_timeout: berth_http::DEFAULT_IDLE_TIMEOUT,
            layer_listen: LayerListen::Auto,
            layer_public_url: None,
            blob_store: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("local ECR data in {}: {source}", dir.display())]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("local ECR storage: {0}")]
    Storage(#[from] storage::StorageError),
    #[error("local ECR cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub(crate) struct State {
    pub storage: storage::Storage,
    pub iam: IamConfig,
    /// When `iam.toml` was last written (RFC 3339): the `CreateDate` GetRole reports.
    pub iam_loaded_at: String,
    pub keys: token::Keys,
    pub public_url: String,
    /// Base URL of the layer bucket; `None` serves blobs in line.
    pub layer_url: Option<String>,
    pub token_ttl: Duration,
    pub create_on_push: bool,
    pub clock_offset_seconds: i64,
    /// Calls per ECR and STS operation and per registry manifest method, served at
    /// `GET /_berth/metrics`.
    pub calls: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// Permits to read a large control-plane body (see `control::read_body`).
    pub large_bodies: tokio::sync::Semaphore,
}

impl State {
    pub fn count(&self, operation: &str) {
        *self
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(operation.to_owned())
            .or_default() += 1;
    }

    /// `host:port` of the public URL, as it appears in repository URIs.
    pub fn registry_host(&self) -> &str {
        self.public_url
            .split_once("://")
            .map(|(_, h)| h)
            .unwrap_or(&self.public_url)
            .trim_end_matches('/')
    }
}

/// A bound, not yet serving, local ECR.
pub struct LocalEcr {
    pub addr: SocketAddr,
    pub public_url: String,
    /// Where blob GETs are redirected to, when they are.
    pub layer_url: Option<String>,
    /// The AWS shared-credentials file holding profile `berth-local`.
    pub credentials_file: PathBuf,
    /// True when this start wrote the demo user and role.
    pub seeded: bool,
    listener: tokio::net::TcpListener,
    layer_listener: Option<tokio::net::TcpListener>,
    idle_timeout: Duration,
    state: Arc<State>,
}

fn io(dir: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::Io {
        dir: dir.to_owned(),
        source,
    }
}

fn server_key(dir: &Path) -> std::io::Result<[u8; 32]> {
    let path = dir.join("server.key");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => Ok(bytes.try_into().expect("length checked")),
        Ok(_) => Err(std::io::Error::other(format!(
            "{} is not 32 bytes",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = ids::random_bytes::<32>();
            iam::write_private(&path, key)?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

impl LocalEcr {
    pub async fn start(options: &LocalEcrOptions) -> Result<LocalEcr, StartError> {
        let dir = &options.dir;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        restrict(dir, 0o700).map_err(io(dir))?;
        let (iam, seeded) =
            IamConfig::load_or_seed(dir, &options.account_id, &options.default_region)
                .map_err(io(dir))?;
        let iam_loaded_at = iam::written_at(dir);
        let keys = token::Keys::new(server_key(dir).map_err(io(dir))?);
        let storage =
            storage::Storage::open(dir, options.upload_limits, options.blob_store.clone()).await?;
        for name in ["registry.db", "registry.db-wal", "registry.db-shm"] {
            let path = dir.join(name);
            if path.exists() {
                restrict(&path, 0o600).map_err(io(dir))?;
            }
        }
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: options.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: options.listen,
            source,
        })?;
        let public_url = options
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let (layer_listener, layer_url) = bind_layers(options, addr).await?;
        let state = Arc::new(State {
            storage,
            iam,
            iam_loaded_at,
            keys,
            public_url: public_url.trim_end_matches('/').to_owned(),
            layer_url: layer_url.clone(),
            token_ttl: options.token_ttl,
            create_on_push: options.create_on_push,
            clock_offset_seconds: options.clock_offset_seconds,
            calls: Default::default(),
            large_bodies: tokio::sync::Semaphore::new(control::LARGE_BODY_PERMITS),
        });
        Ok(LocalEcr {
            addr,
            public_url,
            layer_url,
            credentials_file: dir.join("credentials"),
            seeded,
            listener,
            layer_listener,
            idle_timeout: options.idle_timeout,
            state,
        })
    }

    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let reaper = tokio::spawn(reap_uploads(self.state.clone()));
        let layers = self
            .layer_listener
            .map(|l| tokio::spawn(layer_store::serve(l, self.state.clone(), self.idle_timeout)));
        let listener = berth_http::IdleTimeout::new(self.listener, self.idle_timeout);
        let served = axum::serve(listener, build_router(self.state))
            .with_graceful_shutdown(shutdown)
            .await;
        reaper.abort();
        if let Some(layers) = layers {
            layers.abort();
        }
        served
    }
}

/// Binds the layer bucket's listener as `options` ask, with the URL redirects will name.
async fn bind_layers(
    options: &LocalEcrOptions,
    main: SocketAddr,
) -> Result<(Option<tokio::net::TcpListener>, Option<String>), StartError> {
    let at = match options.layer_listen {
        LayerListen::Off => return Ok((None, None)),
        LayerListen::Auto if options.public_url.is_some() => return Ok((None, None)),
        LayerListen::Auto => SocketAddr::new(main.ip(), 0),
        LayerListen::At(at) => at,
    };
    let bind_error = |source| StartError::Bind { addr: at, source };
    let listener = tokio::net::TcpListener::bind(at)
        .await
        .map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let url = options
        .layer_public_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"));
    Ok((Some(listener), Some(url.trim_end_matches('/').to_owned())))
}

/// Expires idle upload sessions, checked at a quarter of the idle limit.
async fn reap_uploads(state: Arc<State>) {
    let every = (state.storage.uploads.idle() / 4).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        state.storage.uploads.reap().await;
    }
}

/// Tightens `path` to `mode` when it is more open (data of the local ECR is the owner's alone).
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    if let Some(was) = berth_files::restrict_mode(path, mode)? {
        tracing::info!(path = %path.display(), from = format!("{was:o}"), to = format!("{mode:o}"), "restricted a local ECR data file's mode");
    }
    Ok(())
}

/// Operation counts, for tests and for watching a CI run (no secrets, no auth needed).
async fn metrics(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
) -> axum::Json<serde_json::Value> {
    let calls = state
        .calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let uploads = state.storage.uploads.open_count();
    axum::Json(serde_json::json!({ "calls": calls, "open_uploads": uploads }))
}

fn build_router(state: Arc<State>) -> Router {
    Router::new()
        .route("/", axum::routing::post(control::handle))
        .route("/_berth/metrics", axum::routing::get(metrics))
        .merge(registry::routes())
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
