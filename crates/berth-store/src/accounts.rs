//! People and their sessions: users who sign in to the web pages (with an argon2id hash the
//! caller computed: this crate never sees a password), sessions found by the hash of their
//! cookie, the failed sign-ins that throttle guessing, and each integration's last connection
//! test. Kept in the database rather than in a replica's memory, so every replica behind a
//! load balancer sees the same sessions and the same throttle. Ending a session, a new password,
//! a deleted user and a new test result move the store's generation, so caches keyed by it (a
//! replica's session and list caches) drop what they hold at once.

use async_trait::async_trait;
use berth_core::{Meta, Name};
use time::OffsetDateTime;

use crate::{IntegrationQuery, StoreError, TokenInfo, TokenRole};

/// A person who signs in. Users have the same two roles as API tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: Name,
    pub role: TokenRole,
    pub meta: Meta,
}

/// A user with the argon2id PHC string their password is checked against.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
}

/// Whose a session is: a user's, or the API token's it was opened with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionOwner {
    User(User),
    Token(TokenInfo),
}

/// A session that has not expired.
#[derive(Debug, Clone)]
pub struct Session {
    pub owner: SessionOwner,
    pub expires_at: OffsetDateTime,
}

/// The outcome of an integration's last connection test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionTestRecord {
    pub integration_id: String,
    pub ok: bool,
    /// One line: the first failing step and its reason, or the steps that passed.
    pub summary: String,
    pub tested_at: OffsetDateTime,
    pub tested_by: String,
}

/// How many integrations a listing's filters match, and how many of them sort at or before its
/// cursor (so a page can say "51–100 of 1,234").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IntegrationCount {
    pub total: u64,
    pub before: u64,
    /// The `after` of the previous page, when that page is not the first.
    pub previous_after: Option<String>,
}

#[async_trait]
pub trait Accounts: Send + Sync {
    async fn create_user(
        &self,
        name: &Name,
        password_hash: &str,
        role: &TokenRole,
        actor: &str,
    ) -> Result<User, StoreError>;
    async fn find_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Replaces the password and ends every session of the user.
    async fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        actor: &str,
    ) -> Result<(), StoreError>;
    /// Deletes the user and, with them, their sessions.
    async fn delete_user(&self, name: &str) -> Result<(), StoreError>;

    /// `user_id` or `token_id`: exactly one is set.
    async fn open_session(
        &self,
        id_hash: &[u8],
        user_id: Option<&str>,
        token_id: Option<&str>,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// The session if it exists and has not expired (expired ones are removed on the way).
    async fn find_session(&self, id_hash: &[u8]) -> Result<Option<Session>, StoreError>;
    async fn end_session(&self, id_hash: &[u8]) -> Result<(), StoreError>;

    /// Records a failed sign-in under `key` and answers how many failures `key` has had since
    /// `since` (this one included). Older failures are forgotten.
    async fn record_sign_in_failure(
        &self,
        key: &str,
        since: OffsetDateTime,
    ) -> Result<u64, StoreError>;
    async fn sign_in_failures(&self, key: &str, since: OffsetDateTime) -> Result<u64, StoreError>;
    async fn clear_sign_in_failures(&self, key: &str) -> Result<(), StoreError>;

    async fn record_connection_test(
        &self,
        integration_id: &str,
        ok: bool,
        summary: &str,
        actor: &str,
    ) -> Result<(), StoreError>;
    /// The last tests of these integrations (those never tested are absent).
    async fn connection_tests(
        &self,
        integration_ids: &[String],
    ) -> Result<Vec<ConnectionTestRecord>, StoreError>;

    /// Counts what `list_integrations` would page through for the same query.
    async fn count_integrations(
        &self,
        query: &IntegrationQuery,
    ) -> Result<IntegrationCount, StoreError>;
}

pub(crate) const USER_SELECT: &str = "SELECT u.id, u.name, u.password_hash, u.role, \
     s.name AS subscription, u.created_at, u.updated_at, u.created_by, u.updated_by, u.version \
     FROM users u LEFT JOIN subscriptions s ON s.id = u.subscription_id";

/// A row of [`USER_SELECT`].
pub(crate) fn read_user(row: &impl crate::rows::Columns) -> Result<UserRecord, StoreError> {
    let role = crate::rows::read_role(row)?;
    Ok(UserRecord {
        user: User {
            id: row.text("id")?,
            name: crate::sql::stored_name(&row.text("name")?)?,
            role,
            meta: crate::rows::read_meta(row)?,
        },
        password_hash: row.text("password_hash")?,
    })
}

/// Implements [`Accounts`] for a backend; the statements are the same on both.
macro_rules! accounts_store {
    ($store:ty) => {
        mod accounts_impl {
            use super::*;
            use $crate::accounts::{
                Accounts, ConnectionTestRecord, IntegrationCount, Session, SessionOwner, User,
                UserRecord, USER_SELECT, read_user,
            };
            use $crate::rows::Columns as _;
            use $crate::{IntegrationQuery, StoreError, TokenRole};
            use time::OffsetDateTime;

            fn user_absent(name: &str) -> StoreError {
                StoreError::NotFound {
                    kind: "user",
                    name: name.to_owned(),
                }
            }

            impl $store {
                /// The name key the page `limit` rows before `q.after` starts after, when that
                /// page is not the first (keyset pages know only their successor).
                async fn previous_after(
                    &self,
                    q: &IntegrationQuery,
                    before: u64,
                ) -> Result<Option<String>, StoreError> {
                    let limit = u64::from(q.limit.max(1));
                    let Some(after) = q.after.as_ref().filter(|_| before > limit) else {
                        return Ok(None);
                    };
                    let (filter, mut binds) = $crate::sql::integration_filter(q);
                    binds.push(after.clone());
                    let sql = format!(
                        "SELECT i.name_key FROM integrations i WHERE 1 = 1{filter} \
                         AND i.name_key <= ${} ORDER BY i.name_key DESC LIMIT 1 OFFSET {limit}",
                        binds.len()
                    );
                    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
                    for b in binds {
                        query = query.bind(b);
                    }
                    Ok(query.fetch_optional(self.reader()).await?)
                }
            }

            #[async_trait::async_trait]
            impl Accounts for $store {
                async fn create_user(
                    &self,
                    name: &berth_core::Name,
                    password_hash: &str,
                    role: &TokenRole,
                    actor: &str,
                ) -> Result<User, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let (role_name, subscription) = match role {
                        TokenRole::Admin => ("admin", None),
                        TokenRole::Subscription(sub) => {
                            let id: Option<String> = sqlx::query_scalar(
                                $crate::statements::SUBSCRIPTION_ID,
                            )
                            .bind(sub.key())
                            .fetch_optional(&mut *tx)
                            .await?;
                            let id = id.ok_or_else(|| StoreError::UnknownReference {
                                field: "subscription".into(),
                                kind: "subscription",
                                name: sub.to_string(),
                            })?;
                            ("subscription", Some(id))
                        }
                    };
                    let at = $crate::sql::now();
                    sqlx::query(
                        "INSERT INTO users (id, name, name_key, password_hash, role, subscription_id, \
                         created_at, created_by, updated_at, updated_by, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7, $8, 1)",
                    )
                    .bind($crate::sql::new_id())
                    .bind(name.as_str())
                    .bind(name.key())
                    .bind(password_hash)
                    .bind(role_name)
                    .bind(subscription)
                    .bind(at)
                    .bind(actor)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        if StoreError::is_unique_violation(&e) {
                            StoreError::Duplicate {
                                kind: "user",
                                name: name.to_string(),
                            }
                        } else {
                            StoreError::Database(e)
                        }
                    })?;
                    tx.commit().await?;
                    self.find_user(name.as_str())
                        .await?
                        .map(|r| r.user)
                        .ok_or_else(|| StoreError::Corrupt("user vanished".into()))
                }

                async fn find_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
                    let sql = format!("{USER_SELECT} WHERE u.name_key = $1");
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(name.to_ascii_lowercase())
                        .fetch_optional(self.reader())
                        .await?;
                    row.as_ref().map(read_user).transpose()
                }

                async fn list_users(&self) -> Result<Vec<User>, StoreError> {
                    let sql = format!("{USER_SELECT} ORDER BY u.name_key");
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .fetch_all(self.reader())
                        .await?;
                    rows.iter().map(|r| read_user(r).map(|u| u.user)).collect()
                }

                async fn set_password(
                    &self,
                    name: &str,
                    password_hash: &str,
                    actor: &str,
                ) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    let id: Option<String> = sqlx::query_scalar(
                        "UPDATE users SET password_hash = $1, updated_at = $2, updated_by = $3, \
                         version = version + 1 WHERE name_key = $4 RETURNING id",
                    )
                    .bind(password_hash)
                    .bind($crate::sql::now())
                    .bind(actor)
                    .bind(name.to_ascii_lowercase())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let id = id.ok_or_else(|| user_absent(name))?;
                    sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    bump(&mut tx).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn delete_user(&self, name: &str) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    let done = sqlx::query("DELETE FROM users WHERE name_key = $1")
                        .bind(name.to_ascii_lowercase())
                        .execute(&mut *tx)
                        .await?;
                    bump(&mut tx).await?;
                    tx.commit().await?;
                    if done.rows_affected() == 0 {
                        return Err(user_absent(name));
                    }
                    Ok(())
                }

                async fn open_session(
                    &self,
                    id_hash: &[u8],
                    user_id: Option<&str>,
                    token_id: Option<&str>,
                    expires_at: OffsetDateTime,
                ) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(
                        "INSERT INTO web_sessions (id_hash, user_id, token_id, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(id_hash)
                    .bind(user_id)
                    .bind(token_id)
                    .bind($crate::sql::now())
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn find_session(&self, id_hash: &[u8]) -> Result<Option<Session>, StoreError> {
                    let row = sqlx::query(
                        "SELECT user_id, token_id, expires_at FROM web_sessions WHERE id_hash = $1",
                    )
                    .bind(id_hash)
                    .fetch_optional(self.reader())
                    .await?;
                    let Some(row) = row else { return Ok(None) };
                    let expires_at = row.time("expires_at")?;
                    if expires_at <= $crate::sql::now() {
                        self.end_session(id_hash).await?;
                        return Ok(None);
                    }
                    let owner = match (row.maybe_text("user_id")?, row.maybe_text("token_id")?) {
                        (Some(user_id), _) => {
                            let sql = format!("{USER_SELECT} WHERE u.id = $1");
                            let user = sqlx::query(sqlx::AssertSqlSafe(sql))
                                .bind(user_id)
                                .fetch_optional(self.reader())
                                .await?;
                            match user {
                                Some(row) => SessionOwner::User(read_user(&row)?.user),
                                None => return Ok(None),
                            }
                        }
                        (None, Some(token_id)) => match self.find_token(&token_id).await? {
                            Some(token) => SessionOwner::Token(token.info),
                            None => return Ok(None),
                        },
                        (None, None) => {
                            return Err(StoreError::Corrupt("a session without an owner".into()));
                        }
                    };
                    Ok(Some(Session { owner, expires_at }))
                }

                async fn end_session(&self, id_hash: &[u8]) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    let now = $crate::sql::now();
                    sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1 OR expires_at <= $2")
                        .bind(id_hash)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    bump(&mut tx).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn record_sign_in_failure(
                    &self,
                    key: &str,
                    since: OffsetDateTime,
                ) -> Result<u64, StoreError> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query("DELETE FROM sign_in_failures WHERE failed_at < $1")
                        .bind(since)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("INSERT INTO sign_in_failures (throttle_key, failed_at) VALUES ($1, $2)")
                        .bind(key)
                        .bind($crate::sql::now())
                        .execute(&mut *tx)
                        .await?;
                    let count: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM sign_in_failures WHERE throttle_key = $1",
                    )
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(count as u64)
                }

                async fn sign_in_failures(
                    &self,
                    key: &str,
                    since: OffsetDateTime,
                ) -> Result<u64, StoreError> {
                    let count: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM sign_in_failures WHERE throttle_key = $1 AND failed_at >= $2",
                    )
                    .bind(key)
                    .bind(since)
                    .fetch_one(self.reader())
                    .await?;
                    Ok(count as u64)
                }

                async fn clear_sign_in_failures(&self, key: &str) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query("DELETE FROM sign_in_failures WHERE throttle_key = $1")
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn record_connection_test(
                    &self,
                    integration_id: &str,
                    ok: bool,
                    summary: &str,
                    actor: &str,
                ) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(
                        "INSERT INTO connection_tests (integration_id, ok, summary, tested_at, tested_by) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (integration_id) DO UPDATE SET \
                         ok = excluded.ok, summary = excluded.summary, tested_at = excluded.tested_at, \
                         tested_by = excluded.tested_by",
                    )
                    .bind(integration_id)
                    .bind(ok)
                    .bind(summary)
                    .bind($crate::sql::now())
                    .bind(actor)
                    .execute(&mut *tx)
                    .await?;
                    bump(&mut tx).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn connection_tests(
                    &self,
                    integration_ids: &[String],
                ) -> Result<Vec<ConnectionTestRecord>, StoreError> {
                    if integration_ids.is_empty() {
                        return Ok(Vec::new());
                    }
                    let marks: Vec<String> =
                        (1..=integration_ids.len()).map(|i| format!("${i}")).collect();
                    let sql = format!(
                        "SELECT integration_id, ok, summary, tested_at, tested_by \
                         FROM connection_tests WHERE integration_id IN ({})",
                        marks.join(", ")
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for id in integration_ids {
                        query = query.bind(id);
                    }
                    let rows = query.fetch_all(self.reader()).await?;
                    rows.iter()
                        .map(|r| {
                            Ok(ConnectionTestRecord {
                                integration_id: r.text("integration_id")?,
                                ok: r.flag("ok")?,
                                summary: r.text("summary")?,
                                tested_at: r.time("tested_at")?,
                                tested_by: r.text("tested_by")?,
                            })
                        })
                        .collect()
                }

                async fn count_integrations(
                    &self,
                    q: &IntegrationQuery,
                ) -> Result<IntegrationCount, StoreError> {
                    let (filter, mut binds) = $crate::sql::integration_filter(q);
                    binds.push(q.after.clone().unwrap_or_default());
                    let sql = format!(
                        "SELECT COUNT(*) AS total, \
                         COUNT(CASE WHEN i.name_key <= ${} THEN 1 END) AS before \
                         FROM integrations i WHERE 1 = 1{filter}",
                        binds.len()
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for b in binds {
                        query = query.bind(b);
                    }
                    let row = query.fetch_one(self.reader()).await?;
                    let before = row.int("before")? as u64;
                    Ok(IntegrationCount {
                        total: row.int("total")? as u64,
                        before,
                        previous_after: self.previous_after(q, before).await?,
                    })
                }
            }
        }
    };
}
pub(crate) use accounts_store;
