//! PostgreSQL backend, for several Berth replicas sharing one database. Migrations run under an
//! advisory lock; edits lock the integration's row so concurrent patches apply one after another.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};

use crate::accounts::accounts_store;
use crate::migrate::Migration;
use crate::sql::{integration_select, sql_store};

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "dependencies",
        sql: include_str!("../migrations/postgres/0002_dependencies.sql"),
    },
    Migration {
        version: 3,
        name: "dependency_owners",
        sql: include_str!("../migrations/postgres/0003_dependency_owners.sql"),
    },
    Migration {
        version: 4,
        name: "people",
        sql: include_str!("../migrations/postgres/0004_people.sql"),
    },
    Migration {
        version: 5,
        name: "shared_token_cache",
        sql: include_str!("../migrations/postgres/0005_shared_token_cache.sql"),
    },
    Migration {
        version: 6,
        name: "gitops",
        sql: include_str!("../migrations/postgres/0006_gitops.sql"),
    },
    Migration {
        version: 7,
        name: "runtime_cluster_role",
        sql: include_str!("../migrations/postgres/0007_runtime_cluster_role.sql"),
    },
    Migration {
        version: 8,
        name: "images",
        sql: include_str!("../migrations/postgres/0008_images.sql"),
    },
];

/// Any constant shared by all replicas; it only has to differ from other applications' locks.
const MIGRATION_LOCK: i64 = 0x6265_7274_685f_6d67; // "berth_mg"

pub struct PgStore {
    pool: PgPool,
    keyring: Keyring,
}

impl PgStore {
    const PAGE_JSON_OPEN: &'static str = "json_agg(json_build_object(";
    const PAGE_JSON_CLOSE: &'static str = ") ORDER BY page.name_key)::text";
    const INTEGRATION_SELECT: &'static str = integration_select!("string_agg");

    pub async fn open(url: &str, keyring: Keyring) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        let store = PgStore { pool, keyring };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        apply_migrations(&mut tx, MIGRATIONS, &self.keyring).await?;
        tx.commit().await?;
        Ok(())
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    fn shared_token_cache(&self) -> Option<&dyn crate::TokenCache> {
        Some(self)
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    async fn lock_integration(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        name_key: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT id FROM integrations WHERE name_key = $1 FOR UPDATE")
            .bind(name_key)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(())
    }
}

sql_store!(PgStore, Postgres, sqlx::PgConnection, "postgres");
accounts_store!(PgStore);
crate::gitops::gitops_store!(PgStore);
crate::images::images_store!(PgStore);
crate::reports::reports_store!(PgStore);
