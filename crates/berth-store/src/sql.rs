//! The store's one body for both backends: [`sql_store!`] implements [`crate::Store`] once and
//! is instantiated per backend, so the two cannot drift apart. The statements it runs are named
//! constants in `statements.rs` and its row conversions plain functions in `rows.rs`, where
//! rustfmt, grep and an IDE see them; what stays in the macro is the order of the calls and the
//! transactions around them. Backend differences live in `sqlite.rs` and `postgres.rs`:
//! connecting, the write transaction, row locking and the string aggregate.

use berth_core::resolution::DependencyKind;
use berth_core::{IntegrationConfig, Meta, Name, SecretField};
use time::OffsetDateTime;

use crate::StoreError;

/// The integration columns plus its subscriptions, runtimes and set secret fields, aggregated.
macro_rules! integration_select {
    ($agg:literal) => {
        concat!(
            "SELECT i.id, i.name, i.name_key, i.config, i.runtimes_all, i.created_at, i.updated_at, ",
            "i.created_by, i.updated_by, i.version, ",
            "(SELECT ", $agg, "(s.name, ',') FROM integration_subscriptions x ",
            "JOIN subscriptions s ON s.id = x.subscription_id WHERE x.integration_id = i.id) AS subs, ",
            "(SELECT ", $agg, "(r.name, ',') FROM integration_runtimes x ",
            "JOIN runtimes r ON r.id = x.runtime_id WHERE x.integration_id = i.id) AS rts, ",
            "(SELECT ", $agg, "(x.field, ',') FROM integration_secrets x ",
            "WHERE x.integration_id = i.id) AS secret_fields ",
            "FROM integrations i"
        )
    };
}
pub(crate) use integration_select;

/// The columns of [`integration_select!`] as one JSON object per row: a page of integrations
/// comes back as a single JSON array, because SQLite's driver hands rows across threads one at
/// a time and a 50-row page would otherwise cost 50 thread wake-ups.
pub(crate) const PAGE_FIELDS: &str = "'id', page.id, 'name', page.name, 'config', page.config, \
     'runtimes_all', page.runtimes_all, 'created_at', page.created_at, 'updated_at', page.updated_at, \
     'created_by', page.created_by, 'updated_by', page.updated_by, 'version', page.version, \
     'subs', page.subs, 'rts', page.rts, 'secret_fields', page.secret_fields";

/// One row of a page as the JSON aggregate renders it.
#[derive(serde::Deserialize)]
pub(crate) struct PageRow {
    id: String,
    name: String,
    config: String,
    runtimes_all: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    created_by: String,
    updated_by: String,
    version: i64,
    subs: Option<String>,
    rts: Option<String>,
    secret_fields: Option<String>,
}

pub(crate) fn page_rows(json: Option<String>) -> Result<Vec<berth_core::Integration>, StoreError> {
    let rows: Vec<PageRow> = match json {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("integration page: {e}")))?,
        None => Vec::new(),
    };
    rows.into_iter()
        .map(|r| {
            // SQLite renders booleans as 0/1, PostgreSQL as true/false.
            let all =
                r.runtimes_all == serde_json::json!(true) || r.runtimes_all == serde_json::json!(1);
            Ok(berth_core::Integration {
                name: stored_name(&r.name)?,
                config: parse_config(&r.config)?,
                subscriptions: split_names(r.subs)?,
                runtimes: if all {
                    berth_core::RuntimeScope::All
                } else {
                    berth_core::RuntimeScope::Selected(split_names(r.rts)?)
                },
                secrets_set: split_fields(r.secret_fields),
                meta: Meta {
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                    created_by: r.created_by,
                    updated_by: r.updated_by,
                    version: r.version,
                },
                id: r.id,
            })
        })
        .collect()
}

pub(crate) fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    berth_files::hex(&bytes)
}

/// Now, at the microsecond precision both backends keep, so what is written reads back equal.
pub(crate) fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

pub(crate) fn escape_like(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(crate) fn stored_name(value: &str) -> Result<Name, StoreError> {
    Name::parse("name", value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn split_names(joined: Option<String>) -> Result<Vec<Name>, StoreError> {
    let mut names = joined
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(stored_name)
        .collect::<Result<Vec<_>, _>>()?;
    names.sort_by_key(|n| n.key());
    Ok(names)
}

pub(crate) fn split_fields(joined: Option<String>) -> std::collections::BTreeSet<SecretField> {
    joined
        .unwrap_or_default()
        .split(',')
        .filter_map(SecretField::parse)
        .collect()
}

pub(crate) fn parse_config(text: &str) -> Result<IntegrationConfig, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("integration config: {e}")))
}

/// The `AND …` conditions of a listing's filters (all but the cursor) over `integrations i`, with
/// their bind values in order (`$1`, `$2`, …).
pub(crate) fn integration_filter(q: &crate::IntegrationQuery) -> (String, Vec<String>) {
    let mut sql = String::new();
    let mut binds: Vec<String> = Vec::new();
    if let Some(kind) = q.kind {
        binds.push(kind.as_str().to_owned());
        sql.push_str(&format!(" AND i.type = ${}", binds.len()));
    }
    if let Some(part) = &q.name_contains {
        binds.push(format!("%{}%", escape_like(&part.to_ascii_lowercase())));
        sql.push_str(&format!(
            " AND i.name_key LIKE ${} ESCAPE '\\'",
            binds.len()
        ));
    }
    if let Some(sub) = &q.subscription {
        binds.push(sub.to_ascii_lowercase());
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM integration_subscriptions x JOIN subscriptions s \
             ON s.id = x.subscription_id WHERE x.integration_id = i.id AND s.name_key = ${})",
            binds.len()
        ));
    }
    (sql, binds)
}

/// A dependency's kind as stored, back into the type.
pub(crate) fn dependency_kind(value: &str) -> Result<DependencyKind, StoreError> {
    DependencyKind::parse(value)
        .ok_or_else(|| StoreError::Corrupt(format!("dependency kind '{value}'")))
}

/// Implements [`crate::Store`] for a backend type that provides `reader()`, `begin_write()`,
/// `lock_integration()` and the `INTEGRATION_SELECT` constant.
macro_rules! sql_store {
    ($store:ty, $db:ty, $conn:ty, $backend:literal) => {
        use berth_core::{
            Integration, IntegrationDraft, Name, ProjectName, RuntimeScope, Secrets,
        };
        use sqlx::Row as _;
        use $crate::statements as q;
        use $crate::rows::{
            read_integration, read_meta, read_project, read_runtime, read_subscription, read_token,
        };
        use $crate::sql::{
            new_id, now, stored_name,
        };
        use $crate::{
            IntegrationChange, IntegrationQuery, Keyring, Page, Project, Runtime, Store,
            StoreError, Subscription, TokenInfo, TokenRecord, TokenRole,
        };

        fn unique(kind: &'static str, name: &str) -> impl FnOnce(sqlx::Error) -> StoreError {
            let name = name.to_owned();
            move |e| {
                if StoreError::is_unique_violation(&e) {
                    StoreError::Duplicate { kind, name }
                } else {
                    StoreError::Database(e)
                }
            }
        }

        async fn fetch_integration(
            conn: &mut $conn,
            name_key: &str,
        ) -> Result<Option<Integration>, StoreError> {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{} WHERE i.name_key = $1",
                <$store>::INTEGRATION_SELECT
            )))
            .bind(name_key)
            .fetch_optional(&mut *conn)
            .await?;
            row.as_ref().map(read_integration).transpose()
        }

        async fn id_of(
            conn: &mut $conn,
            table: &'static str,
            name_key: &str,
        ) -> Result<Option<String>, StoreError> {
            let sql = match table {
                "subscriptions" => q::SUBSCRIPTION_ID,
                "runtimes" => q::RUNTIME_ID,
                "projects" => q::PROJECT_ID,
                _ => unreachable!("id_of is called with a fixed table name"),
            };
            Ok(sqlx::query_scalar(sql)
                .bind(name_key)
                .fetch_optional(&mut *conn)
                .await?)
        }

        /// Rewrites the integration's assignments and secrets to match the draft.
        async fn write_links_and_secrets(
            conn: &mut $conn,
            keyring: &Keyring,
            id: &str,
            draft: &IntegrationDraft,
        ) -> Result<(), StoreError> {
            sqlx::query(q::UNLINK_SUBSCRIPTIONS)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            for (i, name) in draft.subscriptions.iter().enumerate() {
                let sub = id_of(conn, "subscriptions", &name.key()).await?.ok_or_else(|| {
                    StoreError::UnknownReference {
                        field: format!("subscriptions[{i}]"),
                        kind: "subscription",
                        name: name.to_string(),
                    }
                })?;
                sqlx::query(
                    q::LINK_SUBSCRIPTION
                )
                .bind(id)
                .bind(sub)
                .execute(&mut *conn)
                .await?;
            }
            sqlx::query(q::UNLINK_RUNTIMES)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            if let RuntimeScope::Selected(runtimes) = &draft.runtimes {
                for (i, name) in runtimes.iter().enumerate() {
                    let rt = id_of(conn, "runtimes", &name.key()).await?.ok_or_else(|| {
                        StoreError::UnknownReference {
                            field: format!("runtimes.selected[{i}]"),
                            kind: "runtime",
                            name: name.to_string(),
                        }
                    })?;
                    sqlx::query(
                        q::LINK_RUNTIME
                    )
                    .bind(id)
                    .bind(rt)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            for field in &draft.clear_secrets {
                sqlx::query(q::CLEAR_SECRET)
                    .bind(id)
                    .bind(field.as_str())
                    .execute(&mut *conn)
                    .await?;
            }
            if !draft.set_secrets.is_empty() {
                let registered: i64 =
                    sqlx::query_scalar(q::COUNT_SEALING_KEY)
                        .bind(keyring.primary().id())
                        .fetch_one(&mut *conn)
                        .await?;
                if registered == 0 {
                    return Err(StoreError::KeyRotated);
                }
            }
            for (field, value) in &draft.set_secrets {
                let sealed = keyring.seal(id, field.as_str(), value)?;
                sqlx::query(
                    q::UPSERT_SECRET
                )
                .bind(id)
                .bind(field.as_str())
                .bind(sealed.key_id)
                .bind(sealed.nonce)
                .bind(sealed.ciphertext)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }

        /// Marks a change, inside the writing transaction, so caches keyed by the generation
        /// (the server's token and page caches, on every replica) drop what they hold.
        async fn bump(conn: &mut $conn) -> Result<(), StoreError> {
            sqlx::query(q::BUMP_GENERATION)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        /// Names of the records that keep `what` from being deleted, at most 20 of them.
        async fn users_of(
            conn: &mut $conn,
            sql: &'static str,
            id: &str,
            label: &str,
        ) -> Result<Vec<String>, StoreError> {
            let names: Vec<String> = sqlx::query_scalar(sql).bind(id).fetch_all(&mut *conn).await?;
            Ok(names.into_iter().map(|n| format!("{label} {n}")).collect())
        }

        /// Applies the pending migrations and checks the master key, inside the caller's
        /// transaction (which holds the backend's migration lock).
        async fn apply_migrations(
            conn: &mut $conn,
            shipped: &[$crate::migrate::Migration],
            keyring: &Keyring,
        ) -> Result<(), StoreError> {
            sqlx::raw_sql($crate::migrate::CREATE_TABLE).execute(&mut *conn).await?;
            let applied: Vec<(i64, String)> =
                sqlx::query_as(q::APPLIED_MIGRATIONS)
                    .fetch_all(&mut *conn)
                    .await?;
            for m in $crate::migrate::pending(&applied, shipped)? {
                sqlx::raw_sql(m.sql).execute(&mut *conn).await?;
                sqlx::query(
                    q::RECORD_MIGRATION
                )
                .bind(m.version)
                .bind(m.name)
                .bind($crate::migrate::checksum(m.sql))
                .execute(&mut *conn)
                .await?;
            }
            check_keyring(conn, keyring).await
        }

        /// Fails with a clear message when the configured master key cannot open this
        /// database's secrets; registers the key on first use. Runs inside the migration
        /// transaction, under its lock, so replicas starting together agree.
        async fn check_keyring(conn: &mut $conn, keyring: &Keyring) -> Result<(), StoreError> {
            let registered: Vec<String> = sqlx::query_scalar(q::SEALING_KEYS)
                .fetch_all(&mut *conn)
                .await?;
            let used: Vec<String> =
                sqlx::query_scalar(q::SECRET_KEY_IDS)
                    .fetch_all(&mut *conn)
                    .await?;
            let have = keyring.ids();
            let missing: Vec<&String> = used.iter().filter(|k| !have.contains(k)).collect();
            let known = registered.iter().any(|k| have.contains(k));
            if (!registered.is_empty() && !known) || !missing.is_empty() {
                let mut needed: Vec<String> = registered.clone();
                needed.extend(missing.into_iter().cloned());
                needed.sort();
                needed.dedup();
                return Err(StoreError::KeyMismatch(format!(
                    "the master key does not fit this database: its secrets are sealed under key id {}, \
                     but the configured master key has id {}. Point Berth at the key file or \
                     BERTH_MASTER_KEY this database was created with.",
                    needed.join(", "),
                    have.join(", ")
                )));
            }
            if !registered.iter().any(|k| k == keyring.primary().id()) {
                sqlx::query(q::REGISTER_SEALING_KEY)
                    .bind(keyring.primary().id())
                    .bind(now())
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        #[async_trait::async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            fn token_cache(&self) -> Option<&dyn $crate::TokenCache> {
                self.shared_token_cache()
            }

            async fn generation(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(q::GENERATION)
                    .fetch_one(self.reader())
                    .await?)
            }

            async fn create_integration(
                &self,
                draft: IntegrationDraft,
                actor: &str,
            ) -> Result<Integration, StoreError> {
                let id = new_id();
                let at = now();
                let config = serde_json::to_string(&draft.config)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let kind = draft.config.kind();
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    q::INSERT_INTEGRATION
                )
                .bind(&id)
                .bind(draft.name.as_str())
                .bind(draft.name.key())
                .bind(kind.as_str())
                .bind(kind.master_type().as_str())
                .bind(config)
                .bind(matches!(draft.runtimes, RuntimeScope::All))
                .bind(at)
                .bind(actor)
                .execute(&mut *tx)
                .await
                .map_err(unique("integration", draft.name.as_str()))?;
                write_links_and_secrets(&mut tx, &self.keyring, &id, &draft).await?;
                let created = fetch_integration(&mut tx, &draft.name.key())
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("integration vanished".into()))?;
                bump(&mut tx).await?;
                tx.commit().await?;
                Ok(created)
            }

            async fn get_integration(&self, name: &str) -> Result<Integration, StoreError> {
                let mut conn = self.reader().acquire().await?;
                fetch_integration(&mut conn, &name.to_ascii_lowercase())
                    .await?
                    .ok_or_else(|| StoreError::NotFound {
                        kind: "integration",
                        name: name.to_owned(),
                    })
            }

            async fn list_integrations(
                &self,
                q: &IntegrationQuery,
            ) -> Result<Page<Integration>, StoreError> {
                let (filter, mut binds) = $crate::sql::integration_filter(q);
                let mut sql = format!("{} WHERE 1 = 1{filter}", <$store>::INTEGRATION_SELECT);
                if let Some(after) = &q.after {
                    binds.push(after.clone());
                    sql.push_str(&format!(" AND i.name_key > ${}", binds.len()));
                }
                let limit = q.limit.max(1) as usize;
                sql.push_str(&format!(" ORDER BY i.name_key LIMIT {}", limit + 1));
                let sql = format!(
                    "SELECT {}{}{} FROM ({sql}) AS page",
                    <$store>::PAGE_JSON_OPEN,
                    $crate::sql::PAGE_FIELDS,
                    <$store>::PAGE_JSON_CLOSE
                );
                let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
                for b in binds {
                    query = query.bind(b);
                }
                let page: Option<String> = query.fetch_one(self.reader()).await?;
                let mut items = $crate::sql::page_rows(page)?;
                let next_after = if items.len() > limit {
                    items.truncate(limit);
                    items.last().map(|i| i.name.key())
                } else {
                    None
                };
                Ok(Page { items, next_after })
            }

            async fn update_integration(
                &self,
                name: &str,
                actor: &str,
                change: IntegrationChange<'_>,
            ) -> Result<Integration, StoreError> {
                let key = name.to_ascii_lowercase();
                let mut tx = self.begin_write().await?;
                self.lock_integration(&mut tx, &key).await?;
                let current = fetch_integration(&mut tx, &key).await?.ok_or_else(|| {
                    StoreError::NotFound {
                        kind: "integration",
                        name: name.to_owned(),
                    }
                })?;
                let draft = change(&current)?;
                let config = serde_json::to_string(&draft.config)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query(
                    q::UPDATE_INTEGRATION
                )
                .bind(draft.name.as_str())
                .bind(draft.name.key())
                .bind(config)
                .bind(matches!(draft.runtimes, RuntimeScope::All))
                .bind(now())
                .bind(actor)
                .bind(&current.id)
                .execute(&mut *tx)
                .await
                .map_err(unique("integration", draft.name.as_str()))?;
                write_links_and_secrets(&mut tx, &self.keyring, &current.id, &draft).await?;
                let updated = fetch_integration(&mut tx, &draft.name.key())
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("integration vanished".into()))?;
                bump(&mut tx).await?;
                tx.commit().await?;
                Ok(updated)
            }

            async fn delete_integration(&self, name: &str) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                let key = name.to_ascii_lowercase();
                // Lock first: a dependency being recorded concurrently either commits before
                // (and is seen below) or waits and then finds no integration to point at.
                self.lock_integration(&mut tx, &key).await?;
                let users: Vec<(String, String)> = sqlx::query_as(
                    q::INTEGRATION_USERS_BY_NAME_KEY
                )
                .bind(&key)
                .fetch_all(&mut *tx)
                .await?;
                if !users.is_empty() {
                    return Err(StoreError::InUse {
                        kind: "integration",
                        name: name.to_owned(),
                        users: users.into_iter().map(|(k, n)| format!("{k} {n}")).collect(),
                    });
                }
                let done = sqlx::query(q::DELETE_INTEGRATION)
                    .bind(&key)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound {
                        kind: "integration",
                        name: name.to_owned(),
                    });
                }
                bump(&mut tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn record_project_dependencies(
                &self,
                project: &str,
                dependencies: &[berth_core::resolution::Dependency],
            ) -> Result<(), StoreError> {
                if dependencies.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin_write().await?;
                let project_id = id_of(&mut tx, "projects", &project.to_ascii_lowercase())
                    .await?
                    .ok_or_else(|| StoreError::NotFound { kind: "project", name: project.to_owned() })?;
                let mut added = 0;
                for d in dependencies {
                    let done = sqlx::query(q::RECORD_PROJECT_DEPENDENCY)
                        .bind(&d.integration_id)
                        .bind(d.kind.as_str())
                        .bind(&d.name)
                        .bind(&project_id)
                        .bind(now())
                        .execute(&mut *tx)
                        .await?;
                    added += done.rows_affected();
                }
                if added > 0 {
                    bump(&mut tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn dependencies(
                &self,
                integration_name: &str,
            ) -> Result<Vec<(berth_core::resolution::DependencyKind, String)>, StoreError> {
                let id = sqlx::query_scalar::<_, String>(q::INTEGRATION_ID)
                    .bind(integration_name.to_ascii_lowercase())
                    .fetch_optional(self.reader())
                    .await?
                    .ok_or_else(|| StoreError::NotFound { kind: "integration", name: integration_name.to_owned() })?;
                let rows: Vec<(String, String)> = sqlx::query_as(q::INTEGRATION_USERS)
                    .bind(id)
                    .fetch_all(self.reader())
                    .await?;
                rows.into_iter()
                    .map(|(kind, name)| Ok(($crate::sql::dependency_kind(&kind)?, name)))
                    .collect()
            }

            async fn open_secrets(&self, integration_id: &str) -> Result<Secrets, StoreError> {
                let rows = sqlx::query(
                    q::SEALED_SECRETS
                )
                .bind(integration_id)
                .fetch_all(self.reader())
                .await?;
                let mut out = Secrets::new();
                for row in rows {
                    let field: String = row.try_get("field")?;
                    let sealed = $crate::seal::Sealed {
                        key_id: row.try_get("key_id")?,
                        nonce: row.try_get("nonce")?,
                        ciphertext: row.try_get("ciphertext")?,
                    };
                    let value = self.keyring.open(integration_id, &field, &sealed)?;
                    let field = berth_core::SecretField::parse(&field)
                        .ok_or_else(|| StoreError::Corrupt(format!("secret field '{field}'")))?;
                    out.insert(field, value);
                }
                Ok(out)
            }

            async fn create_subscription(
                &self,
                name: &Name,
                actor: &str,
            ) -> Result<Subscription, StoreError> {
                let id = new_id();
                let at = now();
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    q::INSERT_SUBSCRIPTION
                )
                .bind(&id)
                .bind(name.as_str())
                .bind(name.key())
                .bind(at)
                .bind(actor)
                .execute(&mut *tx)
                .await
                .map_err(unique("subscription", name.as_str()))?;
                bump(&mut tx).await?;
                tx.commit().await?;
                self.get_subscription(name.as_str()).await
            }

            async fn get_subscription(&self, name: &str) -> Result<Subscription, StoreError> {
                let row = sqlx::query(q::SUBSCRIPTION_BY_NAME_KEY)
                    .bind(name.to_ascii_lowercase())
                    .fetch_optional(self.reader())
                    .await?
                    .ok_or_else(|| StoreError::NotFound {
                        kind: "subscription",
                        name: name.to_owned(),
                    })?;
                read_subscription(&row)
            }

            async fn list_subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
                let rows = sqlx::query(q::SUBSCRIPTIONS)
                    .fetch_all(self.reader())
                    .await?;
                rows.iter().map(read_subscription).collect()
            }

            async fn delete_subscription(&self, name: &str) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                let id = id_of(&mut tx, "subscriptions", &name.to_ascii_lowercase())
                    .await?
                    .ok_or_else(|| StoreError::NotFound {
                        kind: "subscription",
                        name: name.to_owned(),
                    })?;
                let mut users = users_of(
                    &mut tx,
                    q::SUBSCRIPTION_INTEGRATIONS,
                    &id,
                    "integration",
                )
                .await?;
                users.extend(
                    users_of(
                        &mut tx,
                        q::SUBSCRIPTION_PROJECTS,
                        &id,
                        "project",
                    )
                    .await?,
                );
                users.extend(
                    users_of(
                        &mut tx,
                        q::SUBSCRIPTION_ENVIRONMENTS,
                        &id,
                        "environment",
                    )
                    .await?,
                );
                if !users.is_empty() {
                    return Err(StoreError::InUse {
                        kind: "subscription",
                        name: name.to_owned(),
                        users,
                    });
                }
                sqlx::query(q::DELETE_SUBSCRIPTION_TOKENS)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(q::DELETE_SUBSCRIPTION)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                bump(&mut tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_project(
                &self,
                name: &ProjectName,
                subscription: &str,
                actor: &str,
            ) -> Result<Project, StoreError> {
                let mut tx = self.begin_write().await?;
                let sub = id_of(&mut tx, "subscriptions", &subscription.to_ascii_lowercase())
                    .await?
                    .ok_or_else(|| StoreError::UnknownReference {
                        field: "subscription".into(),
                        kind: "subscription",
                        name: subscription.to_owned(),
                    })?;
                let at = now();
                sqlx::query(
                    q::INSERT_PROJECT
                )
                .bind(new_id())
                .bind(name.as_str())
                .bind(name.key())
                .bind(sub)
                .bind(at)
                .bind(actor)
                .execute(&mut *tx)
                .await
                .map_err(unique("project", name.as_str()))?;
                bump(&mut tx).await?;
                tx.commit().await?;
                self.get_project(name.as_str()).await
            }

            async fn get_project(&self, name: &str) -> Result<Project, StoreError> {
                let row = sqlx::query(
                    q::PROJECT_BY_NAME_KEY
                )
                .bind(name.to_ascii_lowercase())
                .fetch_optional(self.reader())
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    kind: "project",
                    name: name.to_owned(),
                })?;
                read_project(&row)
            }

            async fn list_projects(
                &self,
                subscription: Option<&str>,
            ) -> Result<Vec<Project>, StoreError> {
                let rows = sqlx::query(
                    q::PROJECTS
                )
                .bind(subscription.map(str::to_ascii_lowercase))
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(read_project).collect()
            }

            async fn delete_project(&self, name: &str) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                // What the project's builds recorded goes with it (a cascading foreign key).
                let done = sqlx::query(q::DELETE_PROJECT)
                    .bind(name.to_ascii_lowercase())
                    .execute(&mut *tx)
                    .await?;
                bump(&mut tx).await?;
                tx.commit().await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound {
                        kind: "project",
                        name: name.to_owned(),
                    });
                }
                Ok(())
            }

            async fn release_project_dependencies(&self, name: &str) -> Result<u64, StoreError> {
                let mut tx = self.begin_write().await?;
                let project_id = id_of(&mut tx, "projects", &name.to_ascii_lowercase())
                    .await?
                    .ok_or_else(|| StoreError::NotFound { kind: "project", name: name.to_owned() })?;
                let done = sqlx::query(q::RELEASE_PROJECT_DEPENDENCIES)
                    .bind(project_id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() > 0 {
                    bump(&mut tx).await?;
                }
                tx.commit().await?;
                Ok(done.rows_affected())
            }

            async fn project_dependency_count(&self, name: &str) -> Result<u64, StoreError> {
                let count: i64 = sqlx::query_scalar(q::COUNT_PROJECT_DEPENDENCIES)
                    .bind(name.to_ascii_lowercase())
                    .fetch_one(self.reader())
                    .await?;
                Ok(count as u64)
            }

            async fn create_environment(
                &self,
                name: &Name,
                subscription: &str,
                integrations: &[Name],
                actor: &str,
            ) -> Result<$crate::Environment, StoreError> {
                let mut tx = self.begin_write().await?;
                let sub = id_of(&mut tx, "subscriptions", &subscription.to_ascii_lowercase())
                    .await?
                    .ok_or_else(|| StoreError::UnknownReference { field: "subscription".into(), kind: "subscription", name: subscription.to_owned() })?;
                let id = new_id();
                sqlx::query(
                    q::INSERT_ENVIRONMENT
                )
                .bind(&id)
                .bind(name.as_str())
                .bind(name.key())
                .bind(&sub)
                .bind(now())
                .bind(actor)
                .execute(&mut *tx)
                .await
                .map_err(unique("environment", name.as_str()))?;
                for (i, integration) in integrations.iter().enumerate() {
                    let found: Option<String> = sqlx::query_scalar(
                        q::ASSIGNED_INTEGRATION_ID
                    )
                    .bind(integration.key())
                    .bind(&sub)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let integration_id = found.ok_or_else(|| StoreError::UnknownReference {
                        field: format!("integrations[{i}]"),
                        kind: "integration assigned to this subscription",
                        name: integration.to_string(),
                    })?;
                    sqlx::query(
                        q::RECORD_ENVIRONMENT_DEPENDENCY
                    )
                    .bind(integration_id)
                    .bind(name.as_str())
                    .bind(&id)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
                }
                bump(&mut tx).await?;
                tx.commit().await?;
                self.list_environments(None)
                    .await?
                    .into_iter()
                    .find(|e| e.id == id)
                    .ok_or_else(|| StoreError::Corrupt("environment vanished".into()))
            }

            async fn list_environments(&self, subscription: Option<&str>) -> Result<Vec<$crate::Environment>, StoreError> {
                let rows = sqlx::query(
                    q::ENVIRONMENTS
                )
                .bind(subscription.map(str::to_ascii_lowercase))
                .fetch_all(self.reader())
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let name: String = row.try_get("name")?;
                    let id: String = row.try_get("id")?;
                    let integrations: Vec<String> = sqlx::query_scalar(
                        q::ENVIRONMENT_INTEGRATIONS
                    )
                    .bind(&id)
                    .fetch_all(self.reader())
                    .await?;
                    out.push($crate::Environment {
                        id: row.try_get("id")?,
                        name: stored_name(&name)?,
                        subscription: stored_name(row.try_get("subscription")?)?,
                        integrations: integrations.iter().map(|n| stored_name(n)).collect::<Result<_, _>>()?,
                        meta: read_meta(row)?,
                    });
                }
                Ok(out)
            }

            async fn delete_environment(&self, name: &str) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                // The environment's dependencies go with it (a cascading foreign key).
                let done = sqlx::query(q::DELETE_ENVIRONMENT)
                    .bind(name.to_ascii_lowercase())
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound { kind: "environment", name: name.to_owned() });
                }
                bump(&mut tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_runtime(
                &self,
                name: &Name,
                sealing_cert: Option<&str>,
                actor: &str,
            ) -> Result<Runtime, StoreError> {
                let at = now();
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    q::INSERT_RUNTIME
                )
                .bind(new_id())
                .bind(name.as_str())
                .bind(name.key())
                .bind(sealing_cert)
                .bind(at)
                .bind(actor)
                .execute(&mut *tx)
                .await
                .map_err(unique("runtime", name.as_str()))?;
                bump(&mut tx).await?;
                tx.commit().await?;
                self.get_runtime(name.as_str()).await
            }

            async fn get_runtime(&self, name: &str) -> Result<Runtime, StoreError> {
                let row = sqlx::query(q::RUNTIME_BY_NAME_KEY)
                    .bind(name.to_ascii_lowercase())
                    .fetch_optional(self.reader())
                    .await?
                    .ok_or_else(|| StoreError::NotFound {
                        kind: "runtime",
                        name: name.to_owned(),
                    })?;
                read_runtime(&row)
            }

            async fn list_runtimes(&self) -> Result<Vec<Runtime>, StoreError> {
                let rows = sqlx::query(q::RUNTIMES)
                    .fetch_all(self.reader())
                    .await?;
                rows.iter().map(read_runtime).collect()
            }

            async fn delete_runtime(&self, name: &str) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                let id = id_of(&mut tx, "runtimes", &name.to_ascii_lowercase())
                    .await?
                    .ok_or_else(|| StoreError::NotFound {
                        kind: "runtime",
                        name: name.to_owned(),
                    })?;
                let users = users_of(
                    &mut tx,
                    q::RUNTIME_INTEGRATIONS,
                    &id,
                    "integration",
                )
                .await?;
                if !users.is_empty() {
                    return Err(StoreError::InUse {
                        kind: "runtime",
                        name: name.to_owned(),
                        users,
                    });
                }
                sqlx::query(q::DELETE_RUNTIME)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                bump(&mut tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_token(
                &self,
                id: &str,
                secret_hash: &[u8],
                role: &TokenRole,
                description: &str,
                actor: &str,
            ) -> Result<TokenInfo, StoreError> {
                let mut tx = self.begin_write().await?;
                insert_token(&mut tx, id, secret_hash, role, description, actor).await?;
                bump(&mut tx).await?;
                tx.commit().await?;
                self.find_token(id)
                    .await?
                    .map(|t| t.info)
                    .ok_or_else(|| StoreError::Corrupt("token vanished".into()))
            }

            async fn find_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
                let row = sqlx::query(q::TOKEN_BY_ID)
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await?;
                row.map(|row| {
                    Ok(TokenRecord {
                        info: read_token(&row)?,
                        secret_hash: row.try_get("secret_hash")?,
                    })
                })
                .transpose()
            }

            async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
                let rows = sqlx::query(q::TOKENS)
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(read_token).collect()
            }

            async fn delete_token(&self, id: &str) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(q::DELETE_TOKEN)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                bump(&mut tx).await?;
                tx.commit().await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound {
                        kind: "token",
                        name: id.to_owned(),
                    });
                }
                Ok(())
            }

            async fn replace_admin_token(
                &self,
                id: &str,
                secret_hash: &[u8],
                actor: &str,
            ) -> Result<TokenInfo, StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query(q::DELETE_ADMIN_TOKENS)
                    .execute(&mut *tx)
                    .await?;
                insert_token(&mut tx, id, secret_hash, &TokenRole::Admin, "admin token", actor)
                    .await?;
                bump(&mut tx).await?;
                tx.commit().await?;
                self.find_token(id)
                    .await?
                    .map(|t| t.info)
                    .ok_or_else(|| StoreError::Corrupt("token vanished".into()))
            }

            async fn create_first_admin_token(
                &self,
                id: &str,
                secret_hash: &[u8],
                actor: &str,
            ) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(
                    q::INSERT_FIRST_ADMIN_TOKEN
                )
                .bind(id)
                .bind(secret_hash)
                .bind(now())
                .bind(actor)
                .execute(&mut *tx)
                .await?;
                bump(&mut tx).await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn reseal_all(&self, new_ring: &Keyring) -> Result<usize, StoreError> {
                let mut tx = self.begin_write().await?;
                let rows = sqlx::query(
                    q::ALL_SEALED_SECRETS
                )
                .fetch_all(&mut *tx)
                .await?;
                for row in &rows {
                    let integration_id: String = row.try_get("integration_id")?;
                    let field: String = row.try_get("field")?;
                    let sealed = $crate::seal::Sealed {
                        key_id: row.try_get("key_id")?,
                        nonce: row.try_get("nonce")?,
                        ciphertext: row.try_get("ciphertext")?,
                    };
                    let plain = new_ring.open(&integration_id, &field, &sealed)?;
                    let resealed = new_ring.seal(&integration_id, &field, &plain)?;
                    sqlx::query(
                        q::RESEAL_SECRET
                    )
                    .bind(resealed.key_id)
                    .bind(resealed.nonce)
                    .bind(resealed.ciphertext)
                    .bind(&integration_id)
                    .bind(&field)
                    .execute(&mut *tx)
                    .await?;
                }
                let others = reseal_others(&mut tx, new_ring).await?;
                sqlx::query(q::FORGET_SEALING_KEYS).execute(&mut *tx).await?;
                sqlx::query(q::REGISTER_SEALING_KEY)
                    .bind(new_ring.primary().id())
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
                bump(&mut tx).await?;
                tx.commit().await?;
                Ok(rows.len() + others)
            }
        }

        /// The secrets sealed outside `integration_secrets` (the GitOps push password, image
        /// resources' trigger secrets), re-sealed with the new key in the same transaction.
        async fn reseal_others(
            conn: &mut $conn,
            new_ring: &Keyring,
        ) -> Result<usize, StoreError> {
            use $crate::gitops::{PASSWORD_FIELD, PASSWORD_OWNER};
            let row = sqlx::query(
                "SELECT key_id, nonce, ciphertext FROM gitops_settings WHERE ciphertext IS NOT NULL",
            )
            .fetch_optional(&mut *conn)
            .await?;
            let mut count = reseal_triggers(&mut *conn, new_ring).await?;
            let Some(row) = row else {
                return Ok(count);
            };
            let sealed = $crate::seal::Sealed {
                key_id: row.try_get("key_id")?,
                nonce: row.try_get("nonce")?,
                ciphertext: row.try_get("ciphertext")?,
            };
            let plain = new_ring.open(PASSWORD_OWNER, PASSWORD_FIELD, &sealed)?;
            let resealed = new_ring.seal(PASSWORD_OWNER, PASSWORD_FIELD, &plain)?;
            sqlx::query("UPDATE gitops_settings SET key_id = $1, nonce = $2, ciphertext = $3")
                .bind(resealed.key_id)
                .bind(resealed.nonce)
                .bind(resealed.ciphertext)
                .execute(&mut *conn)
                .await?;
            count += 1;
            Ok(count)
        }

        async fn reseal_triggers(conn: &mut $conn, new_ring: &Keyring) -> Result<usize, StoreError> {
            let field = $crate::images::TRIGGER_SECRET_FIELD;
            let rows = sqlx::query("SELECT id, key_id, nonce, ciphertext FROM image_triggers")
                .fetch_all(&mut *conn)
                .await?;
            for row in &rows {
                let id: String = row.try_get("id")?;
                let sealed = $crate::seal::Sealed {
                    key_id: row.try_get("key_id")?,
                    nonce: row.try_get("nonce")?,
                    ciphertext: row.try_get("ciphertext")?,
                };
                let plain = new_ring.open(&id, field, &sealed)?;
                let resealed = new_ring.seal(&id, field, &plain)?;
                sqlx::query("UPDATE image_triggers SET key_id = $1, nonce = $2, ciphertext = $3 WHERE id = $4")
                    .bind(resealed.key_id)
                    .bind(resealed.nonce)
                    .bind(resealed.ciphertext)
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(rows.len())
        }

        async fn insert_token(
            conn: &mut $conn,
            id: &str,
            secret_hash: &[u8],
            role: &TokenRole,
            description: &str,
            actor: &str,
        ) -> Result<(), StoreError> {
            let (role_name, subscription) = match role {
                TokenRole::Admin => ("admin", None),
                TokenRole::Subscription(name) => {
                    let sub = id_of(conn, "subscriptions", &name.key()).await?.ok_or_else(|| {
                        StoreError::UnknownReference {
                            field: "subscription".into(),
                            kind: "subscription",
                            name: name.to_string(),
                        }
                    })?;
                    ("subscription", Some(sub))
                }
            };
            sqlx::query(
                q::INSERT_TOKEN
            )
            .bind(id)
            .bind(secret_hash)
            .bind(role_name)
            .bind(subscription)
            .bind(description)
            .bind(now())
            .bind(actor)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }
    };
}
pub(crate) use sql_store;
