//! Upgrading a database made by an earlier schema: the rows a Berth at schema version 2 wrote
//! (dependencies that carried their project in a formatted name) are converted by migration 3 on
//! both backends, and afterwards behave like rows the current code writes.

use berth_core::resolution::DependencyKind;
use berth_core::{IntegrationDraft, Name};
use berth_store::{Keyring, Location, MasterKey, StoreError};
use berth_testkit::{TempDb, postgres_url};
use sha2::{Digest, Sha256};
use sqlx::Connection;

/// The schema scripts version 2 shipped, exactly as they are applied.
const SQLITE_V2: [(&str, &str); 2] = [
    ("init", include_str!("../migrations/sqlite/0001_init.sql")),
    (
        "dependencies",
        include_str!("../migrations/sqlite/0002_dependencies.sql"),
    ),
];
const POSTGRES_V2: [(&str, &str); 2] = [
    ("init", include_str!("../migrations/postgres/0001_init.sql")),
    (
        "dependencies",
        include_str!("../migrations/postgres/0002_dependencies.sql"),
    ),
];

const AT: &str = "'2026-01-02 03:04:05+00:00'";

/// The version 2 schema, recorded as applied, holding what a version 2 Berth recorded: a project
/// with a hub entry, a pipeline resource and a custom CI image; an environment; and the
/// leftovers of a project deleted by hand, which pinned the integration for nothing.
fn version_2_database(schema: &[(&str, &str)]) -> String {
    let mut script = String::new();
    let ledger = "CREATE TABLE berth_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL);\n";
    script.push_str(ledger);
    for (i, (name, sql)) in schema.iter().enumerate() {
        let sum = berth_files::hex(&Sha256::digest(sql.as_bytes()));
        script.push_str(sql);
        script.push_str(&format!(
            "\nINSERT INTO berth_migrations VALUES ({}, '{name}', '{sum}');\n",
            i + 1
        ));
    }
    let draft = IntegrationDraft::create(
        serde_json::from_value(
            serde_json::json!({"name": "ecr-old", "type": "ecr", "auth": {"mode": "ambient"}}),
        )
        .unwrap(),
    )
    .unwrap();
    let config = serde_json::to_string(&draft.config).unwrap();
    let record = |table: &str, id: &str, name: &str, extra_cols: &str, extra_vals: &str| {
        format!(
            "INSERT INTO {table} (id, name, name_key{extra_cols}, created_at, updated_at, created_by, updated_by, version) \
             VALUES ('{id}', '{name}', '{}'{extra_vals}, {AT}, {AT}, 'admin', 'admin', 1);\n",
            name.to_ascii_lowercase()
        )
    };
    script.push_str(&record("subscriptions", "s1", "Acme", "", ""));
    script.push_str(&record(
        "projects",
        "p1",
        "acme/Web",
        ", subscription_id",
        ", 's1'",
    ));
    script.push_str(&record(
        "projects",
        "p2",
        "acme/web-api",
        ", subscription_id",
        ", 's1'",
    ));
    script.push_str(&record(
        "integrations",
        "i1",
        "ecr-old",
        ", type, master_type, config, runtimes_all",
        &format!(", 'ecr', 'hub', '{config}', FALSE"),
    ));
    script.push_str(&record(
        "environments",
        "e1",
        "staging",
        ", subscription_id",
        ", 's1'",
    ));
    script.push_str("INSERT INTO integration_subscriptions VALUES ('i1', 's1');\n");
    for (kind, name) in [
        ("project", "acme/Web"),
        ("pipeline_resource", "acme/Web:img"),
        (
            "subscription_image",
            "acme/Web pre_ci_boot 123456789012.dkr.ecr.eu-west-1.amazonaws.com/ci:v2",
        ),
        ("project", "acme/web-api"),
        ("environment", "staging"),
        ("project", "acme/gone"),
        ("pipeline_resource", "acme/gone:img"),
    ] {
        script.push_str(&format!(
            "INSERT INTO integration_dependencies (integration_id, kind, name, recorded_at) \
             VALUES ('i1', '{kind}', '{name}', {AT});\n"
        ));
    }
    script
}

async fn upgraded_rows_behave_like_new_ones(location: &Location) {
    let store = berth_store::open(location, Keyring::new(MasterKey::generate().unwrap()))
        .await
        .expect("a version 2 database opens and migrates");
    assert_eq!(
        store.dependencies("ecr-old").await.unwrap(),
        [
            (DependencyKind::Environment, "staging".to_owned()),
            (DependencyKind::PipelineResource, "acme/Web:img".to_owned()),
            (DependencyKind::Project, "acme/Web".to_owned()),
            (DependencyKind::Project, "acme/web-api".to_owned()),
            (
                DependencyKind::SubscriptionImage,
                "acme/Web pre_ci_boot 123456789012.dkr.ecr.eu-west-1.amazonaws.com/ci:v2"
                    .to_owned()
            ),
        ],
        "the rows of a project deleted by hand are dropped, the rest kept"
    );
    // A project whose name is a prefix of another's owns only its own rows.
    assert_eq!(store.project_dependency_count("acme/web").await.unwrap(), 3);
    assert_eq!(
        store
            .project_dependency_count("acme/web-api")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.get_project("acme/web").await.unwrap().name.as_str(),
        "acme/Web"
    );
    let env = store.list_environments(Some("acme")).await.unwrap();
    assert_eq!(env[0].integrations, [Name::parse("n", "ecr-old").unwrap()]);

    store.delete_project("acme/web").await.unwrap();
    assert_eq!(
        store.dependencies("ecr-old").await.unwrap(),
        [
            (DependencyKind::Environment, "staging".to_owned()),
            (DependencyKind::Project, "acme/web-api".to_owned()),
        ],
        "deleting a project deletes what its builds recorded, and nothing else"
    );
    assert_eq!(
        store
            .release_project_dependencies("acme/web-api")
            .await
            .unwrap(),
        1
    );
    store.delete_environment("staging").await.unwrap();
    assert!(store.dependencies("ecr-old").await.unwrap().is_empty());
    store.delete_integration("ecr-old").await.unwrap();
    assert!(matches!(
        store.get_integration("ecr-old").await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_version_2_sqlite_database_upgrades() {
    let dir = berth_testkit::TempDir::new("upgrade");
    let path = dir.path().join("berth.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}?mode=rwc", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(version_2_database(&SQLITE_V2)))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    upgraded_rows_behave_like_new_ones(&Location::Sqlite(path)).await;
}

#[tokio::test]
async fn a_version_2_postgres_database_upgrades() {
    let Some(url) = postgres_url() else { return };
    let db = TempDb::create(&url).await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(version_2_database(&POSTGRES_V2)))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    upgraded_rows_behave_like_new_ones(&Location::parse(&db.url)).await;
    db.drop_now().await;
}
