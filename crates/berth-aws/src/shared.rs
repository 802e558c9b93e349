//! The broker's optional second cache level, shared by replicas: the first level (in process,
//! one AWS call per key at a time) asks it on a miss, and it either holds a token another
//! replica fetched or lets this replica fetch while the others wait. What it stores is this
//! module's text of the credentials; the implementation (PostgreSQL, in the server) seals it.

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::RegistryCredentials;

/// Fetches credentials to share and the epoch second they must be refreshed at; `None` when
/// the fetch failed (the broker keeps the reason).
pub type SharedFetch<'a> = Pin<Box<dyn Future<Output = Option<(SecretString, i64)>> + Send + 'a>>;

#[async_trait]
pub trait SharedCache: Send + Sync {
    /// The text stored under `key` if fresh, else what `fetch` returns, fetched by one replica
    /// at a time. `Err` when the shared level itself failed (the database is down).
    async fn get_or_fetch(
        &self,
        key: &str,
        integration_id: &str,
        fetch: SharedFetch<'_>,
    ) -> Result<Option<SecretString>, String>;
}

/// The shared text of credentials and their refresh time (epoch seconds).
pub(crate) fn encode(c: &RegistryCredentials, refresh_at: i64) -> SecretString {
    SecretString::from(
        serde_json::json!({
            "registry": c.registry,
            "proxy_endpoint": c.proxy_endpoint,
            "username": c.username,
            "password": c.password.expose_secret(),
            "expires_at": c.expires_at,
            "refresh_at": refresh_at,
        })
        .to_string(),
    )
}

/// Credentials and their refresh time back from [`encode`]'s text.
pub(crate) fn decode(text: &SecretString) -> Option<(RegistryCredentials, i64)> {
    let v: serde_json::Value = serde_json::from_str(text.expose_secret()).ok()?;
    let s = |k: &str| v.get(k)?.as_str().map(str::to_owned);
    Some((
        RegistryCredentials {
            registry: s("registry")?,
            proxy_endpoint: s("proxy_endpoint")?,
            username: s("username")?,
            password: SecretString::from(s("password")?),
            expires_at: v.get("expires_at")?.as_i64()?,
        },
        v.get("refresh_at")?.as_i64()?,
    ))
}
