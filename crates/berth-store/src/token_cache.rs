//! The broker's second cache level, shared by replicas on PostgreSQL: a registry token is
//! fetched by one replica under an advisory lock on its cache key while the others wait, then
//! stored sealed (like every other secret) until its refresh time, where every replica finds it.
//! SQLite has no such level: it is one process, and its in-process cache is the whole story.

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::StoreError;

/// Fetches a value to share and when it must be refreshed; `None` when fetching failed (the
/// caller keeps the reason), so nothing is stored.
pub type Fetch<'a> =
    Pin<Box<dyn Future<Output = Option<(SecretString, OffsetDateTime)>> + Send + 'a>>;

/// The field name the cached tokens are sealed under (bound into the ciphertext).
pub(crate) const SEALED_FIELD: &str = "registry_token";

#[async_trait]
pub trait TokenCache: Send + Sync {
    /// The value stored under `key` if it is fresh; otherwise runs `fetch` while holding a lock
    /// on `key` that every replica honours, and stores what it returns. `None` when `fetch`
    /// failed. A value that no longer opens (the master key was rotated) counts as absent.
    async fn get_or_fetch(
        &self,
        key: &str,
        integration_id: &str,
        fetch: Fetch<'_>,
    ) -> Result<Option<SecretString>, StoreError>;
}

#[async_trait]
impl TokenCache for crate::PgStore {
    async fn get_or_fetch(
        &self,
        key: &str,
        integration_id: &str,
        fetch: Fetch<'_>,
    ) -> Result<Option<SecretString>, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("berth registry token {key}"))
            .execute(&mut *tx)
            .await?;
        let stored: Option<(String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT key_id, nonce, ciphertext FROM registry_token_cache \
             WHERE cache_key = $1 AND refresh_at > $2",
        )
        .bind(key)
        .bind(crate::sql::now())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((key_id, nonce, ciphertext)) = stored {
            let sealed = crate::seal::Sealed {
                key_id,
                nonce,
                ciphertext,
            };
            if let Ok(value) = self.keyring().open(integration_id, SEALED_FIELD, &sealed) {
                tx.commit().await?;
                return Ok(Some(value));
            }
        }
        // The lock is held while fetching: the other replicas wait for this one's answer.
        let Some((value, refresh_at)) = fetch.await else {
            return Ok(None);
        };
        let sealed = self.keyring().seal(integration_id, SEALED_FIELD, &value)?;
        let stored = sqlx::query(
            "INSERT INTO registry_token_cache \
             (cache_key, integration_id, key_id, nonce, ciphertext, refresh_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (cache_key) DO UPDATE SET \
             key_id = excluded.key_id, nonce = excluded.nonce, \
             ciphertext = excluded.ciphertext, refresh_at = excluded.refresh_at",
        )
        .bind(key)
        .bind(integration_id)
        .bind(sealed.key_id)
        .bind(sealed.nonce)
        .bind(sealed.ciphertext)
        .bind(refresh_at)
        .execute(&mut *tx)
        .await;
        match stored {
            Ok(_) => tx.commit().await?,
            // Deleted meanwhile (the foreign key refuses): the caller still gets its token.
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_foreign_key_violation()) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Some(value))
    }
}
