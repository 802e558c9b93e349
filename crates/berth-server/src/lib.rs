//! Berth's HTTP server: the REST API under `/api/v1` (integrations, subscriptions, projects,
//! runtimes, tokens), its OpenAPI document, token authentication, and start-up (opening the
//! store with its master key, minting the first admin token, graceful shutdown).
//!
//! This crate owns HTTP: routing, status codes, JSON shapes and who may call what. It must not
//! hold domain rules (those are `berth-core`'s) or SQL (`berth-store`'s), and never renders a
//! secret: responses show masked key ids and `*_set` flags only.

#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
mod cache;
mod error;
mod json;
mod routes;

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
pub use routes::{OPENAPI, ROUTES};

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub broker: Arc<berth_aws::Broker>,
    cache: Arc<cache::ReadCache>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>) -> Self {
        AppState {
            store,
            broker: Arc::new(berth_aws::Broker::new()),
            cache: Default::default(),
        }
    }
}

/// The whole HTTP surface as a router, for `serve` and for tests that drive it in-process.
pub fn build_app(state: AppState) -> Router {
    routes::router()
        .layer(DefaultBodyLimit::max(json::BODY_LIMIT))
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
}

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

    /// Loads the master key: `BERTH_MASTER_KEY` if given, else the key file (created with a new
    /// key, mode 0600, on first start).
    pub fn keyring(&self) -> Result<Keyring, StartError> {
        match &self.master_key {
            Some(text) => Ok(Keyring::from_text(
                "BERTH_MASTER_KEY",
                secrecy::ExposeSecret::expose_secret(text),
            )?),
            None => Ok(Keyring::load_or_create(&self.key_file())?.0),
        }
    }

    pub async fn open_store(&self) -> Result<Arc<dyn Store>, StartError> {
        std::fs::create_dir_all(&self.data_dir).map_err(|source| StartError::Io {
            path: self.data_dir.clone(),
            source,
        })?;
        let keyring = self.keyring()?;
        Ok(berth_store::open(&self.location(), keyring).await?)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
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
        })
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = build_app(AppState::new(self.store));
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
