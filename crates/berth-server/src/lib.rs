//! Berth's HTTP server: the REST API under `/api/v1` (integrations, subscriptions, projects,
//! runtimes, tokens, the GitOps repository, image resources and reports), its OpenAPI document,
//! token authentication, the web pages, start-up (opening the store with its master key, minting
//! the first admin token, graceful shutdown), the GitOps sync worker that keeps the shared
//! configuration repository following the store ([`gitops`]), the poller of image resources'
//! tags ([`images`]) and the deliverer of their new versions to triggers ([`triggers`]).
//!
//! This crate owns HTTP and that orchestration: routing, status codes, JSON shapes, who may call
//! what, and when a change is pushed. It must not hold domain rules (those are `berth-core`'s),
//! SQL (`berth-store`'s) or Git and sealing (`berth-gitops`'s), and never renders a secret:
//! responses show masked key ids and `*_set` flags only.

#![forbid(unsafe_code)]
// No function over 100 lines in `src/`: a longer one is doing two jobs.
#![deny(clippy::too_many_lines)]

pub mod admin;
pub mod auth;
mod cache;
mod error;
pub mod gitops;
pub mod images;
mod json;
pub mod pages;
mod passwords;
pub mod policy;
mod private_dir;
mod routes;
mod token_cache;
pub mod triggers;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use berth_store::{Keyring, Location, SealError, Store, StoreError};
use secrecy::SecretString;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use routes::document as openapi;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub broker: Arc<berth_aws::Broker>,
    /// The shared configuration repository's side of this replica.
    pub gitops: Arc<gitops::GitOpsSync>,
    /// The shortest poll interval a resource may ask for, in seconds.
    pub poll_floor_seconds: i64,
    cache: Arc<cache::ReadCache>,
}

impl AppState {
    /// The state of one replica. On PostgreSQL the broker's cache has a second level in the
    /// database that every replica shares. `data_dir` holds the GitOps checkout.
    pub fn new(store: Arc<dyn Store>, data_dir: &std::path::Path) -> Self {
        let broker = match store.token_cache() {
            Some(_) => berth_aws::Broker::new()
                .with_shared_cache(Arc::new(token_cache::StoreTokenCache(store.clone()))),
            None => berth_aws::Broker::new(),
        };
        AppState {
            gitops: gitops::GitOpsSync::new(store.clone(), data_dir),
            store,
            broker: Arc::new(broker),
            poll_floor_seconds: DEFAULT_POLL_FLOOR.as_secs() as i64,
            cache: Default::default(),
        }
    }
}

/// The whole HTTP surface as a router, for `serve` and for tests that drive it in-process.
pub fn build_app(state: AppState) -> Router {
    routes::router()
        .0
        .merge(pages::router())
        .layer(DefaultBodyLimit::max(json::BODY_LIMIT))
        .layer(axum::middleware::map_response(error::envelope))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Where the server keeps its data and listens. Resolved by the CLI from `berth.toml`,
/// `BERTH_*` variables and flags.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// `postgres://…`, `sqlite://PATH` or a path; default `<data_dir>/berth.db`.
    pub database: Option<String>,
    /// The master key text (`BERTH_MASTER_KEY`); when absent the key file is used.
    pub master_key: Option<SecretString>,
    /// Default `<data_dir>/master.key`, created on first start.
    pub master_key_file: Option<PathBuf>,
    /// A connection that moves no byte for this long is closed (half-sent headers, stalls).
    pub idle_timeout: std::time::Duration,
    /// The shortest interval an image resource may be polled at ([`DEFAULT_POLL_FLOOR`]).
    pub poll_floor: std::time::Duration,
    /// The wait after a trigger delivery's first failure ([`DEFAULT_RETRY_BASE`]); it doubles.
    pub delivery_retry_base: std::time::Duration,
}

/// A receiver that failed gets 5 s, then 10 s, 20 s, … (eight attempts in about 10 minutes).
pub const DEFAULT_RETRY_BASE: std::time::Duration = std::time::Duration::from_secs(5);

/// Registries rate-limit manifest reads; a minute between polls of one tag is polite.
pub const DEFAULT_POLL_FLOOR: std::time::Duration = std::time::Duration::from_secs(60);

impl ServerOptions {
    pub fn location(&self) -> Location {
        match &self.database {
            Some(db) => Location::parse(db),
            None => Location::Sqlite(self.data_dir.join("berth.db")),
        }
    }

    pub fn key_file(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// The master key: `BERTH_MASTER_KEY` if given, else the key file. `true` when neither
    /// exists and the key is new (not yet written: see [`ServerOptions::open_store`]).
    fn keyring(&self) -> Result<(Keyring, bool), StartError> {
        if let Some(text) = &self.master_key {
            let ring = Keyring::from_text(
                "BERTH_MASTER_KEY",
                secrecy::ExposeSecret::expose_secret(text),
            )?;
            return Ok((ring, false));
        }
        match Keyring::load(&self.key_file())? {
            Some(ring) => Ok((ring, false)),
            None => Ok((Keyring::new(berth_store::MasterKey::generate()?), true)),
        }
    }

    /// Opens the store with the master key. A new key file is written only once the database
    /// accepted the key: a key file deleted from under a database with sealed secrets is
    /// refused, and no wrong key is left in its place.
    pub async fn open_store(&self) -> Result<Arc<dyn Store>, StartError> {
        private_dir::secure(&self.data_dir)?;
        let (keyring, new_key) = self.keyring()?;
        let store = match berth_store::open(&self.location(), keyring.clone()).await {
            Err(StoreError::KeyMismatch(reason)) if new_key => {
                return Err(StartError::MissingKey {
                    path: self.key_file(),
                    reason,
                });
            }
            other => other?,
        };
        if new_key {
            keyring.write_file(&self.key_file())?;
        }
        private_dir::restrict_files(&self.data_dir);
        Ok(store)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "the master key file {} does not exist, but this database holds secrets sealed under another key ({reason}). \
         Restore the key file from your backup, or set BERTH_MASTER_KEY; Berth did not create a new key",
        path.display()
    )]
    MissingKey { path: PathBuf, reason: String },
    #[error(transparent)]
    Key(#[from] SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A started server: bound, with its store open, not yet serving.
pub struct Server {
    pub addr: SocketAddr,
    /// Set on the very first start only: the admin token that was just minted.
    pub new_admin_token: Option<SecretString>,
    pub store: Arc<dyn Store>,
    listener: tokio::net::TcpListener,
    idle_timeout: std::time::Duration,
    poll_floor: std::time::Duration,
    delivery_retry_base: std::time::Duration,
    data_dir: PathBuf,
}

impl Server {
    pub async fn start(options: &ServerOptions) -> Result<Server, StartError> {
        let store = options.open_store().await?;
        let new_admin_token =
            auth::bootstrap_admin_token(store.as_ref(), &options.data_dir).await?;
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
        Ok(Server {
            addr,
            new_admin_token,
            store,
            listener,
            idle_timeout: options.idle_timeout,
            poll_floor: options.poll_floor,
            delivery_retry_base: options.delivery_retry_base,
            data_dir: options.data_dir.clone(),
        })
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let mut state = AppState::new(self.store, &self.data_dir);
        state.poll_floor_seconds = self.poll_floor.as_secs().max(1) as i64;
        let sync = tokio::spawn(state.gitops.clone().run());
        let poller = tokio::spawn(images::Poller::new(state.clone()).run());
        let deliverer =
            tokio::spawn(triggers::Deliverer::new(state.clone(), self.delivery_retry_base).run());
        let app = build_app(state);
        let listener = berth_http::IdleTimeout::new(self.listener, self.idle_timeout);
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        sync.abort();
        poller.abort();
        deliverer.abort();
        served
    }
}
