//! SQLite backend: one WAL-mode file. Writes go through a single connection (SQLite allows one
//! writer at a time; queueing in-process beats retrying on SQLITE_BUSY) and start with
//! `BEGIN IMMEDIATE`, so another process (an admin command) waits instead of failing mid-way.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::accounts::accounts_store;
use crate::migrate::Migration;
use crate::sql::{integration_select, sql_store};

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "dependencies",
        sql: include_str!("../migrations/sqlite/0002_dependencies.sql"),
    },
    Migration {
        version: 3,
        name: "dependency_owners",
        sql: include_str!("../migrations/sqlite/0003_dependency_owners.sql"),
    },
    Migration {
        version: 4,
        name: "people",
        sql: include_str!("../migrations/sqlite/0004_people.sql"),
    },
    Migration {
        version: 5,
        name: "shared_token_cache",
        sql: include_str!("../migrations/sqlite/0005_shared_token_cache.sql"),
    },
    Migration {
        version: 6,
        name: "gitops",
        sql: include_str!("../migrations/sqlite/0006_gitops.sql"),
    },
    Migration {
        version: 7,
        name: "runtime_cluster_role",
        sql: include_str!("../migrations/sqlite/0007_runtime_cluster_role.sql"),
    },
    Migration {
        version: 8,
        name: "images",
        sql: include_str!("../migrations/sqlite/0008_images.sql"),
    },
];

pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    keyring: Keyring,
}

impl SqliteStore {
    const PAGE_JSON_OPEN: &'static str = "json_group_array(json_object(";
    const PAGE_JSON_CLOSE: &'static str = ") ORDER BY page.name_key)";
    const INTEGRATION_SELECT: &'static str = integration_select!("group_concat");

    /// Opens the file, creating and migrating it when needed. Another process opening the same
    /// file at the same moment can make SQLite answer "database is locked" before its busy
    /// handler applies (switching to WAL needs an exclusive lock): that is retried.
    pub async fn open(path: &Path, keyring: Keyring) -> Result<Self, StoreError> {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            match Self::try_open(path, keyring.clone()).await {
                Err(StoreError::Database(e))
                    if is_busy(&e) && std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }

    async fn try_open(path: &Path, keyring: Keyring) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Migration(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(2)
            .connect_with(options.read_only(true))
            .await?;
        let store = SqliteStore {
            write,
            read,
            keyring,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        apply_migrations(&mut tx, MIGRATIONS, &self.keyring).await?;
        tx.commit().await?;
        Ok(())
    }

    fn reader(&self) -> &SqlitePool {
        &self.read
    }

    /// One process: the broker's in-process cache is the only level.
    fn shared_token_cache(&self) -> Option<&dyn crate::TokenCache> {
        None
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// `BEGIN IMMEDIATE` already holds the database's write lock.
    async fn lock_integration(
        &self,
        _tx: &mut Transaction<'static, Sqlite>,
        _name_key: &str,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

fn is_busy(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        d.code()
            .is_some_and(|c| c == "5" || c == "517" || c == "261")
            || d.message().contains("database is locked")
    })
}

sql_store!(SqliteStore, Sqlite, sqlx::SqliteConnection, "sqlite");
accounts_store!(SqliteStore);
crate::gitops::gitops_store!(SqliteStore);
crate::images::images_store!(SqliteStore);
crate::reports::reports_store!(SqliteStore);
