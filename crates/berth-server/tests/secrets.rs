//! Secrets stay sealed: not in the SQLite file or its WAL, not in PostgreSQL rows, not in logs,
//! not in API responses. A wrong master key stops start-up with a clear message. Admin-token
//! and master-key rotation work offline.

mod common;

use berth_server::{Server, admin};
use berth_testkit::TempDir;
use common::{TestServer, captured_logs, options};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::json;

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn add_secret_integration(s: &TestServer, access_key_id: &str, secret: &str) {
    let r = s
        .admin(
            Method::POST,
            "/api/v1/subscriptions",
            Some(json!({"name": "acme"})),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED);
    let r = s
        .admin(
            Method::POST,
            "/api/v1/integrations",
            Some(json!({"name": "sealed", "type": "ecr",
                "auth": {"mode": "access_keys", "access_key_id": access_key_id, "secret_access_key": secret},
                "subscriptions": ["acme"]})),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    // Patch the secret too, so the update path is scanned as well.
    let r = s
        .admin(
            Method::PATCH,
            "/api/v1/integrations/sealed",
            Some(json!({"auth": {"mode": "access_keys", "secret_access_key": secret}})),
        )
        .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    s.admin(Method::GET, "/api/v1/integrations/sealed", None)
        .await;
    s.admin(Method::GET, "/api/v1/integrations", None).await;
}

#[tokio::test]
async fn secrets_never_appear_in_sqlite_files_logs_or_responses() {
    let logs = captured_logs();
    let dir = TempDir::new("seal-sqlite");
    let secret = "SqliteSecretNeverShown/0123456789abcdef";
    let key_id = "AKIAFAKESEALTE42";
    let s = TestServer::start(options(&dir.0)).await;
    add_secret_integration(&s, key_id, secret).await;

    // The broker's path: the sealed value opens to the original.
    let store = berth_store::open(
        &berth_store::Location::Sqlite(dir.0.join("berth.db")),
        berth_store::Keyring::load(&dir.0.join("master.key"))
            .unwrap()
            .unwrap(),
    )
    .await
    .unwrap();
    let i = store.get_integration("sealed").await.unwrap();
    let opened = store.open_secrets(&i.id).await.unwrap();
    assert_eq!(
        opened[&berth_core::SecretField::AwsSecretAccessKey].expose_secret(),
        secret
    );
    drop(store);
    let seen = s.seen.lock().unwrap().clone();
    s.stop().await;

    let mut scanned = 0;
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        let path = entry.unwrap().path();
        // SQLite removes its -wal/-shm files when the last connection closes, which may happen
        // while this loop runs; their content is then in the main file, which is scanned.
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("berth.db") {
            scanned += bytes.len();
        }
        if name != "master.key" {
            assert!(!contains(&bytes, secret), "secret found in {name}");
            assert!(!contains(&bytes, key_id), "access key id found in {name}");
        }
    }
    assert!(scanned > 0, "the database files were scanned");
    assert!(
        !seen.contains(secret) && !seen.contains(key_id),
        "secret in an API response"
    );
    assert!(
        seen.contains("\"****TE42\""),
        "the masked id is shown: {seen}"
    );
    let logs = logs.lock().unwrap().clone();
    assert!(!logs.is_empty(), "logs were captured");
    assert!(!contains(&logs, secret), "secret in the logs");
    assert!(!contains(&logs, key_id), "access key id in the logs");
}

#[tokio::test]
async fn secrets_never_appear_in_postgres_rows() {
    let Some(url) = berth_testkit::postgres_url() else {
        return;
    };
    let db = berth_testkit::TempDb::create(&url).await;
    let dir = TempDir::new("seal-pg");
    let secret = "PostgresSecretNeverShown/0123456789abcdef";
    let key_id = "AKIAFAKESEALL042";
    let mut opts = options(&dir.0);
    opts.database = Some(db.url.clone());
    let s = TestServer::start(opts).await;
    add_secret_integration(&s, key_id, secret).await;
    let (_, health) = s.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health["store"], "postgres");
    s.stop().await;

    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(tables.contains(&"integration_secrets".to_string()));
    let mut dumped = String::new();
    for t in &tables {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT row_to_json(t)::text FROM {t} t"
        )))
        .fetch_all(&mut conn)
        .await
        .unwrap();
        dumped.extend(rows);
    }
    assert!(
        dumped.contains("aws_secret_access_key"),
        "the sealed rows were dumped"
    );
    assert!(!dumped.contains(secret), "secret in PostgreSQL rows");
    assert!(!dumped.contains(key_id), "access key id in PostgreSQL rows");
    conn.close().await.unwrap();
    db.drop_now().await;
}

#[tokio::test]
async fn a_wrong_master_key_stops_startup_with_a_clear_error() {
    let dir = TempDir::new("wrong-key");
    let s = TestServer::start(options(&dir.0)).await;
    add_secret_integration(&s, "AKIAFAKEWRON0042", "whatever-secret").await;
    s.stop().await;

    let mut opts = options(&dir.0);
    opts.master_key = Some(berth_store::MasterKey::generate().unwrap().to_text());
    let err = Server::start(&opts)
        .await
        .err()
        .expect("must refuse the wrong key");
    let text = err.to_string();
    assert!(text.contains("master key does not fit"), "{text}");
    assert!(text.contains("BERTH_MASTER_KEY"), "{text}");

    opts.master_key = Some("not-a-key".to_owned().into());
    let err = Server::start(&opts).await.err().unwrap().to_string();
    assert!(
        err.contains("BERTH_MASTER_KEY") && err.contains("base64"),
        "{err}"
    );
}

#[tokio::test]
async fn a_deleted_key_file_is_refused_and_never_replaced() {
    let dir = TempDir::new("lost-key");
    let s = TestServer::start(options(&dir.0)).await;
    add_secret_integration(&s, "AKIAFAKELOST0042", "whatever-secret").await;
    s.stop().await;
    let key_file = dir.0.join("master.key");
    std::fs::remove_file(&key_file).unwrap();
    let before: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let err = Server::start(&options(&dir.0))
        .await
        .err()
        .expect("must refuse to start without the key");
    let text = err.to_string();
    assert!(
        text.contains("does not exist") && text.contains("Restore the key file"),
        "{text}"
    );
    assert!(!key_file.exists(), "no new, wrong key was written");
    let after: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "the directory is as it was");
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_is_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = TempDir::new("modes");
    let s = TestServer::start(options(&dir.0)).await;
    add_secret_integration(&s, "AKIAFAKEMODE0042", "whatever-secret").await;
    assert_eq!(mode(&dir.0), 0o700);
    for name in ["berth.db", "master.key", "initial-admin-token"] {
        assert_eq!(mode(&dir.0.join(name)), 0o600, "{name}");
    }
    s.stop().await;
    // An existing directory opened up by hand is tightened at the next start.
    for (name, m) in [("", 0o755), ("berth.db", 0o644), ("berth.db-wal", 0o644)] {
        let p = dir.0.join(name);
        if p.exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
        }
    }
    let s = TestServer::start(options(&dir.0)).await;
    assert_eq!(mode(&dir.0), 0o700);
    assert_eq!(mode(&dir.0.join("berth.db")), 0o600);
    if dir.0.join("berth.db-wal").exists() {
        assert_eq!(mode(&dir.0.join("berth.db-wal")), 0o600);
    }
    s.stop().await;
}

#[tokio::test]
async fn admin_token_file_and_rotations() {
    let dir = TempDir::new("rotate");
    let s = TestServer::start(options(&dir.0)).await;
    let token_file = dir.0.join("initial-admin-token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["initial-admin-token", "master.key"] {
            let mode = std::fs::metadata(dir.0.join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap().trim(),
        s.admin
    );
    add_secret_integration(&s, "AKIAFAKEROTA0042", "rotate-me-secret").await;
    let old_admin = s.admin.clone();
    s.stop().await;

    // A second start keeps the token and mints none.
    let again = Server::start(&options(&dir.0)).await.unwrap();
    assert!(again.new_admin_token.is_none());
    drop(again);

    let new_admin = admin::rotate_admin_token(&options(&dir.0)).await.unwrap();
    assert_ne!(new_admin.expose_secret(), old_admin);
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap().trim(),
        new_admin.expose_secret()
    );

    let old_key = std::fs::read_to_string(dir.0.join("master.key")).unwrap();
    let rotation = admin::rotate_master_key(&options(&dir.0), None)
        .await
        .unwrap();
    assert_eq!(rotation.resealed, 2);
    assert!(
        rotation.new_key_text.is_none(),
        "a key file needs no manual step"
    );
    let new_key = std::fs::read_to_string(dir.0.join("master.key")).unwrap();
    assert_ne!(old_key, new_key);

    let s = TestServer::start(options(&dir.0)).await;
    assert_eq!(s.admin, new_admin.expose_secret());
    let (status, _) = s
        .call(Method::GET, "/api/v1/integrations", Some(&old_admin), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old admin token is dead"
    );
    let (status, body) = s
        .admin(Method::GET, "/api/v1/integrations/sealed", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["auth"]["secret_access_key_set"], true);
    s.stop().await;

    let mut with_old = options(&dir.0);
    with_old.master_key = Some(
        old_key
            .lines()
            .find(|l| !l.starts_with('#'))
            .unwrap()
            .to_owned()
            .into(),
    );
    let err = Server::start(&with_old)
        .await
        .err()
        .expect("the retired key is refused");
    assert!(err.to_string().contains("does not fit"), "{err}");
}
