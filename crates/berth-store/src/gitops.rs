//! GitOps state: the shared configuration repository's settings (the push password sealed like
//! every other secret, opened only for the process that pushes), each integration's sync state
//! with the change waiting to be pushed and its retry schedule, and the ledger of files Berth
//! last pushed. All of it is in the database, so any replica can pick up a queued change and a
//! restart finds a change that reached the database but not the repository.

use async_trait::async_trait;
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::StoreError;

/// The field the push password is sealed under (bound into the ciphertext).
pub(crate) const PASSWORD_FIELD: &str = "gitops_password";
/// The owner id the push password is sealed for.
pub(crate) const PASSWORD_OWNER: &str = "gitops";

/// The shared configuration repository as stored.
#[derive(Debug, Clone)]
pub struct GitOpsSettings {
    /// Codefresh's form: `<repo_url>.git[/<path>][?ref=<branch>]`.
    pub repo: String,
    pub username: Option<String>,
    /// Opened from its sealed form; never shown.
    pub password: Option<SecretString>,
    /// PEM of the account-wide sealing certificate (for `resources/all-runtimes-all-clusters/`).
    pub account_cert: Option<String>,
    /// Namespace of the resources written for All runtimes.
    pub namespace: String,
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
    pub version: i64,
}

/// What to store; a `None` password keeps the stored one unless `clear_password`.
pub struct GitOpsSettingsInput<'a> {
    pub repo: &'a str,
    pub username: Option<&'a str>,
    pub password: Option<&'a SecretString>,
    pub clear_password: bool,
    pub account_cert: Option<&'a str>,
    pub namespace: &'a str,
}

/// Where an integration's files stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// A change is queued.
    Pending,
    /// A change is being pushed.
    Syncing,
    Synced,
    /// The last push failed; it is retried at `next_attempt_at`.
    OutOfSync,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Pending => "PENDING",
            SyncState::Syncing => "SYNCING",
            SyncState::Synced => "SYNCED",
            SyncState::OutOfSync => "OUT_OF_SYNC",
        }
    }

    fn parse(text: &str) -> Result<SyncState, StoreError> {
        Ok(match text {
            "PENDING" => SyncState::Pending,
            "SYNCING" => SyncState::Syncing,
            "SYNCED" => SyncState::Synced,
            "OUT_OF_SYNC" => SyncState::OutOfSync,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "gitops_sync.state is '{other}'"
                )));
            }
        })
    }
}

/// One integration's sync record (kept by name: a deleted integration's files are still to be
/// removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRecord {
    pub name_key: String,
    pub name: String,
    pub state: SyncState,
    /// The commit message of the queued change.
    pub message: String,
    pub reason: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: OffsetDateTime,
    pub commit_id: Option<String>,
    pub updated_at: OffsetDateTime,
}

/// A file Berth pushed, with the hash of its bytes and the tag of what it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub path: String,
    pub name_key: String,
    pub sha256: String,
    pub tag: String,
}

#[async_trait]
pub trait GitOpsStore: Send + Sync {
    async fn gitops_settings(&self) -> Result<Option<GitOpsSettings>, StoreError>;
    async fn put_gitops_settings(
        &self,
        input: &GitOpsSettingsInput<'_>,
        actor: &str,
    ) -> Result<GitOpsSettings, StoreError>;

    /// Queues a change for each `(name_key, name)`: state `PENDING`, due now, with `message`
    /// (a later change to the same integration replaces the message; one push carries both).
    async fn queue_sync(&self, names: &[(String, String)], message: &str)
    -> Result<(), StoreError>;
    /// Takes the changes due at `now` (queued, failed and due for their retry, or left
    /// `SYNCING` since before `stale_before` by a replica that died) and marks them `SYNCING`,
    /// in one statement: two replicas never take the same change.
    async fn claim_syncs(
        &self,
        now: OffsetDateTime,
        stale_before: OffsetDateTime,
    ) -> Result<Vec<SyncRecord>, StoreError>;
    async fn sync_records(&self) -> Result<Vec<SyncRecord>, StoreError>;
    /// A push landed: the ledger of each name is replaced by `files`, and its record is `SYNCED`
    /// unless a newer change was queued meanwhile (then it stays due). `records` are the ones
    /// [`GitOpsStore::claim_syncs`] took.
    async fn finish_sync(
        &self,
        records: &[SyncRecord],
        files: &[WrittenFile],
        commit_id: Option<&str>,
    ) -> Result<(), StoreError>;
    /// A push failed: `OUT_OF_SYNC` with the reason, retried at `retry_at`.
    async fn fail_sync(
        &self,
        name_keys: &[String],
        reason: &str,
        retry_at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    async fn written_files(&self) -> Result<Vec<WrittenFile>, StoreError>;
    /// Sets the namespace a runtime's resources are applied in (a Kubernetes name, checked by
    /// the caller).
    async fn set_runtime_namespace(
        &self,
        name: &str,
        namespace: &str,
        actor: &str,
    ) -> Result<crate::Runtime, StoreError>;
    /// Replaces a runtime's sealing certificate (its SealedSecrets are then re-sealed).
    async fn set_runtime_sealing_cert(
        &self,
        name: &str,
        sealing_cert: &str,
        actor: &str,
    ) -> Result<crate::Runtime, StoreError>;
    /// Records (or, with `None`, forgets) the IAM role a runtime's cluster assumes roles as (an
    /// IAM role ARN, checked by the caller).
    async fn set_runtime_cluster_role(
        &self,
        name: &str,
        role_arn: Option<&str>,
        actor: &str,
    ) -> Result<crate::Runtime, StoreError>;
}

pub(crate) fn read_sync(row: &impl crate::rows::Columns) -> Result<SyncRecord, StoreError> {
    Ok(SyncRecord {
        name_key: row.text("name_key")?,
        name: row.text("name")?,
        state: SyncState::parse(&row.text("state")?)?,
        message: row.text("message")?,
        reason: row.maybe_text("reason")?,
        attempts: row.int("attempts")?,
        next_attempt_at: row.time("next_attempt_at")?,
        commit_id: row.maybe_text("commit_id")?,
        updated_at: row.time("updated_at")?,
    })
}

pub(crate) const SYNC_SELECT: &str = "SELECT name_key, name, state, message, reason, attempts, \
     next_attempt_at, commit_id, updated_at FROM gitops_sync";

/// Implements [`GitOpsStore`] for a backend; the statements are the same on both.
macro_rules! gitops_store {
    ($store:ty) => {
        mod gitops_impl {
            use super::*;
            use $crate::gitops::{
                GitOpsSettings, GitOpsSettingsInput, GitOpsStore, PASSWORD_FIELD, PASSWORD_OWNER,
                SYNC_SELECT, SyncRecord, WrittenFile, read_sync,
            };
            use $crate::rows::Columns as _;
            use $crate::StoreError;
            use time::OffsetDateTime;

            /// One of a runtime's GitOps columns (`column` is one of ours, never input).
            async fn set_runtime_column(
                store: &$store,
                column: &'static str,
                name: &str,
                value: Option<&str>,
                actor: &str,
            ) -> Result<$crate::Runtime, StoreError> {
                let sql = format!(
                    "UPDATE runtimes SET {column} = $1, updated_at = $2, updated_by = $3, \
                     version = version + 1 WHERE name_key = $4"
                );
                let mut tx = store.begin_write().await?;
                let changed = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(value)
                    .bind($crate::sql::now())
                    .bind(actor)
                    .bind(name.to_ascii_lowercase())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if changed == 0 {
                    return Err(StoreError::NotFound {
                        kind: "runtime",
                        name: name.to_owned(),
                    });
                }
                bump(&mut tx).await?;
                tx.commit().await?;
                $crate::Store::get_runtime(store, name).await
            }

            #[async_trait::async_trait]
            impl GitOpsStore for $store {
                async fn gitops_settings(&self) -> Result<Option<GitOpsSettings>, StoreError> {
                    let Some(row) = sqlx::query(
                        "SELECT repo, username, key_id, nonce, ciphertext, account_cert, namespace, \
                         updated_at, updated_by, version FROM gitops_settings WHERE id = 1",
                    )
                    .fetch_optional(self.reader())
                    .await?
                    else {
                        return Ok(None);
                    };
                    let password = match row.maybe_text("key_id")? {
                        Some(key_id) => {
                            let sealed = $crate::seal::Sealed {
                                key_id,
                                nonce: row.try_get::<Vec<u8>, _>("nonce")?,
                                ciphertext: row.try_get::<Vec<u8>, _>("ciphertext")?,
                            };
                            Some(self.keyring.open(PASSWORD_OWNER, PASSWORD_FIELD, &sealed)?)
                        }
                        None => None,
                    };
                    Ok(Some(GitOpsSettings {
                        repo: row.text("repo")?,
                        username: row.maybe_text("username")?,
                        password,
                        account_cert: row.maybe_text("account_cert")?,
                        namespace: row.text("namespace")?,
                        updated_at: row.time("updated_at")?,
                        updated_by: row.text("updated_by")?,
                        version: row.int("version")?,
                    }))
                }

                async fn put_gitops_settings(
                    &self,
                    input: &GitOpsSettingsInput<'_>,
                    actor: &str,
                ) -> Result<GitOpsSettings, StoreError> {
                    let sealed = match input.password {
                        Some(p) => Some(self.keyring.seal(PASSWORD_OWNER, PASSWORD_FIELD, p)?),
                        None => None,
                    };
                    let keep = sealed.is_none() && !input.clear_password;
                    let (key_id, nonce, ciphertext) = match sealed {
                        Some(s) => (Some(s.key_id), Some(s.nonce), Some(s.ciphertext)),
                        None => (None, None, None),
                    };
                    let mut tx = self.begin_write().await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO gitops_settings (id, repo, username, key_id, nonce, ciphertext, \
                         account_cert, namespace, updated_at, updated_by, version) \
                         VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, 1) ON CONFLICT (id) DO UPDATE SET \
                         repo = excluded.repo, username = excluded.username, {}\
                         account_cert = excluded.account_cert, namespace = excluded.namespace, \
                         updated_at = excluded.updated_at, updated_by = excluded.updated_by, \
                         version = gitops_settings.version + 1",
                        if keep {
                            ""
                        } else {
                            "key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext, "
                        }
                    )))
                    .bind(input.repo)
                    .bind(input.username)
                    .bind(key_id)
                    .bind(nonce)
                    .bind(ciphertext)
                    .bind(input.account_cert)
                    .bind(input.namespace)
                    .bind($crate::sql::now())
                    .bind(actor)
                    .execute(&mut *tx)
                    .await?;
                    bump(&mut tx).await?;
                    tx.commit().await?;
                    self.gitops_settings()
                        .await?
                        .ok_or_else(|| StoreError::Corrupt("gitops settings vanished".into()))
                }

                async fn queue_sync(
                    &self,
                    names: &[(String, String)],
                    message: &str,
                ) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    let now = $crate::sql::now();
                    for (key, name) in names {
                        sqlx::query(
                            "INSERT INTO gitops_sync (name_key, name, state, message, attempts, \
                             next_attempt_at, updated_at) VALUES ($1, $2, 'PENDING', $3, 0, $4, $4) \
                             ON CONFLICT (name_key) DO UPDATE SET name = excluded.name, \
                             state = 'PENDING', message = excluded.message, attempts = 0, \
                             next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at",
                        )
                        .bind(key)
                        .bind(name)
                        .bind(message)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    bump(&mut tx).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn claim_syncs(
                    &self,
                    now: OffsetDateTime,
                    stale_before: OffsetDateTime,
                ) -> Result<Vec<SyncRecord>, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let rows = sqlx::query(
                        "UPDATE gitops_sync SET state = 'SYNCING', updated_at = $1 \
                         WHERE (state IN ('PENDING', 'OUT_OF_SYNC') AND next_attempt_at <= $1) \
                         OR (state = 'SYNCING' AND updated_at <= $2) \
                         RETURNING name_key, name, state, message, reason, attempts, \
                         next_attempt_at, commit_id, updated_at",
                    )
                    .bind(now)
                    .bind(stale_before)
                    .fetch_all(&mut *tx)
                    .await?;
                    bump(&mut tx).await?;
                    tx.commit().await?;
                    let mut claimed: Vec<SyncRecord> = rows.iter().map(read_sync).collect::<Result<_, _>>()?;
                    claimed.sort_by(|a, b| a.name_key.cmp(&b.name_key));
                    Ok(claimed)
                }

                async fn sync_records(&self) -> Result<Vec<SyncRecord>, StoreError> {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{SYNC_SELECT} ORDER BY name_key")))
                        .fetch_all(self.reader())
                        .await?;
                    rows.iter().map(read_sync).collect()
                }

                async fn finish_sync(
                    &self,
                    records: &[SyncRecord],
                    files: &[WrittenFile],
                    commit_id: Option<&str>,
                ) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    let now = $crate::sql::now();
                    for r in records {
                        sqlx::query("DELETE FROM gitops_files WHERE name_key = $1")
                            .bind(&r.name_key)
                            .execute(&mut *tx)
                            .await?;
                        // A change queued while this push ran made the record PENDING again:
                        // it stays due.
                        sqlx::query(
                            "UPDATE gitops_sync SET state = 'SYNCED', reason = NULL, attempts = 0, \
                             commit_id = COALESCE($1, commit_id), updated_at = $2 \
                             WHERE name_key = $3 AND state = 'SYNCING'",
                        )
                        .bind(commit_id)
                        .bind(now)
                        .bind(&r.name_key)
                        .execute(&mut *tx)
                        .await?;
                    }
                    for f in files {
                        sqlx::query(
                            "INSERT INTO gitops_files (path, name_key, sha256, tag) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (path) DO UPDATE SET name_key = excluded.name_key, \
                             sha256 = excluded.sha256, tag = excluded.tag",
                        )
                        .bind(&f.path)
                        .bind(&f.name_key)
                        .bind(&f.sha256)
                        .bind(&f.tag)
                        .execute(&mut *tx)
                        .await?;
                    }
                    bump(&mut tx).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn fail_sync(
                    &self,
                    name_keys: &[String],
                    reason: &str,
                    retry_at: OffsetDateTime,
                ) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    for k in name_keys {
                        sqlx::query(
                            "UPDATE gitops_sync SET state = 'OUT_OF_SYNC', reason = $1, \
                             attempts = attempts + 1, next_attempt_at = $2, updated_at = $3 \
                             WHERE name_key = $4",
                        )
                        .bind(reason)
                        .bind(retry_at)
                        .bind($crate::sql::now())
                        .bind(k)
                        .execute(&mut *tx)
                        .await?;
                    }
                    bump(&mut tx).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn set_runtime_namespace(
                    &self,
                    name: &str,
                    namespace: &str,
                    actor: &str,
                ) -> Result<$crate::Runtime, StoreError> {
                    set_runtime_column(self, "namespace", name, Some(namespace), actor).await
                }

                async fn set_runtime_sealing_cert(
                    &self,
                    name: &str,
                    sealing_cert: &str,
                    actor: &str,
                ) -> Result<$crate::Runtime, StoreError> {
                    set_runtime_column(self, "sealing_cert", name, Some(sealing_cert), actor).await
                }

                async fn set_runtime_cluster_role(
                    &self,
                    name: &str,
                    role_arn: Option<&str>,
                    actor: &str,
                ) -> Result<$crate::Runtime, StoreError> {
                    set_runtime_column(self, "cluster_role_arn", name, role_arn, actor).await
                }

                async fn written_files(&self) -> Result<Vec<WrittenFile>, StoreError> {
                    let rows = sqlx::query(
                        "SELECT path, name_key, sha256, tag FROM gitops_files ORDER BY path",
                    )
                    .fetch_all(self.reader())
                    .await?;
                    rows.iter()
                        .map(|r| {
                            Ok(WrittenFile {
                                path: r.text("path")?,
                                name_key: r.text("name_key")?,
                                sha256: r.text("sha256")?,
                                tag: r.text("tag")?,
                            })
                        })
                        .collect()
                }
            }
        }
    };
}
pub(crate) use gitops_store;
