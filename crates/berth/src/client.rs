//! The HTTP client the CLI commands use. API errors keep the server's message, code and field.

use std::fmt;

use anyhow::anyhow;
use berth_api::ErrorBody;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cli::Global;

pub struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// An error the server answered with, rendered for people.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub used_by: Vec<String>,
    /// The line of the file sent that the error is about, when the server knows it.
    pub line: Option<u64>,
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (HTTP {}, {})",
            self.message,
            self.status.as_u16(),
            self.code
        )?;
        for user in &self.used_by {
            write!(f, "\n  - {user}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiFailure {}

impl Api {
    pub fn new(global: &Global) -> anyhow::Result<Api> {
        let mut builder =
            reqwest::Client::builder().user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")));
        if global.url.starts_with("http://") {
            // Plain HTTP needs no trust store; loading the system's costs the credential helper
            // (a process per Docker call) a few hundred file reads.
            builder = builder.tls_certs_only(std::iter::empty());
        }
        let http = builder.build()?;
        Ok(Api {
            base: global.url.trim_end_matches('/').to_owned(),
            token: global.token.clone(),
            http,
        })
    }

    /// Sends a request and reads the answer as `T` (the `berth-api` type of that endpoint).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> anyhow::Result<T> {
        let text = self.send(method, path, body).await?;
        serde_json::from_str(&text).map_err(|e| {
            anyhow!(
                "the server at {} answered {path} with a body this berth does not understand ({e}): is BERTH_URL a Berth server of the same version?",
                self.base
            )
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call(Method::GET, path, None::<&()>).await
    }

    /// A request whose answer has no body (`204 No Content`).
    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        self.exec(Method::DELETE, path, None::<&()>).await
    }

    /// A request whose answer has no body (`204 No Content`).
    pub async fn exec(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> anyhow::Result<()> {
        self.send(method, path, body).await.map(drop)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> anyhow::Result<String> {
        let token = self.token.as_deref().ok_or_else(|| {
            anyhow!(
                "no API token: set BERTH_TOKEN or pass --token (on a fresh `berth up`, the admin token is in berth-data/initial-admin-token)"
            )
        })?;
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            anyhow!(
                "cannot reach the Berth server at {}: {e} (is it running? see BERTH_URL)",
                self.base
            )
        })?;
        let status = resp.status();
        let text = resp.text().await?;
        if status.is_success() {
            return Ok(text);
        }
        let body: ErrorBody = serde_json::from_str(&text).map_err(|_| anyhow!("the server at {} answered HTTP {status} with a body that is not a Berth error: is BERTH_URL a Berth server?", self.base))?;
        let e = body.error;
        Err(ApiFailure {
            status,
            code: e.code,
            message: e.message,
            line: e.line,
            used_by: e.used_by.unwrap_or_default(),
        }
        .into())
    }
}

/// Percent-encodes a query or path component.
pub use berth_core::percent_encode as encode;
