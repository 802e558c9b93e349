//! The broker's shared cache level over the store: on PostgreSQL, registry tokens are fetched
//! by one replica at a time under an advisory lock and kept sealed in the database, so N
//! replicas make one GetAuthorizationToken per integration version, region and half-life.

use std::sync::Arc;

use async_trait::async_trait;
use berth_aws::{SharedCache, SharedFetch};
use berth_store::Store;
use secrecy::SecretString;
use time::OffsetDateTime;

pub struct StoreTokenCache(pub Arc<dyn Store>);

#[async_trait]
impl SharedCache for StoreTokenCache {
    async fn get_or_fetch(
        &self,
        key: &str,
        integration_id: &str,
        fetch: SharedFetch<'_>,
    ) -> Result<Option<SecretString>, String> {
        let cache = self
            .0
            .token_cache()
            .ok_or_else(|| "this store keeps no shared token cache".to_owned())?;
        let fetch = Box::pin(async move {
            let (text, refresh_at) = fetch.await?;
            let at = OffsetDateTime::from_unix_timestamp(refresh_at).ok()?;
            Some((text, at))
        });
        cache
            .get_or_fetch(key, integration_id, fetch)
            .await
            .map_err(|e| e.to_string())
    }
}
