//! A throwaway PostgreSQL database per test, created on the server named by
//! `BERTH_TEST_POSTGRES_URL` and dropped by [`TempDb::drop_now`].

use sqlx::{Connection, Executor, PgConnection};

pub const POSTGRES_URL_VAR: &str = "BERTH_TEST_POSTGRES_URL";

/// The server to run PostgreSQL tests on; its absence follows [`crate::unavailable`]'s policy.
pub fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            crate::unavailable(
                &format!("PostgreSQL ({POSTGRES_URL_VAR})"),
                "set it, e.g. postgres://postgres@127.0.0.1:5432/test, to test that backend",
            );
            None
        }
    }
}

pub struct TempDb {
    admin_url: String,
    name: String,
    pub url: String,
}

impl TempDb {
    pub async fn create(admin_url: &str) -> TempDb {
        let name = format!("berth_t_{}", crate::random_hex(6));
        let mut conn = PgConnection::connect(admin_url)
            .await
            .expect("connect to test PostgreSQL");
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create test database");
        let (base, query) = match admin_url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (admin_url, String::new()),
        };
        let server = base.rsplit_once('/').map(|(s, _)| s).unwrap_or(base);
        TempDb {
            admin_url: admin_url.to_owned(),
            url: format!("{server}/{name}{query}"),
            name,
        }
    }

    pub async fn drop_now(self) {
        let mut conn = PgConnection::connect(&self.admin_url).await.unwrap();
        let _ = conn
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .await;
    }
}
