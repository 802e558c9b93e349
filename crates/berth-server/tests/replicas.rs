//! Hub replicas on one PostgreSQL share the broker's token cache: 100 logins spread over 5
//! replicas cause one GetAuthorizationToken against the local ECR, not one per replica; an edit
//! (a new version) causes exactly one more; the shared entry is sealed and goes with a delete.
//! Two replicas running the GitOps worker push each integration change exactly once.

mod common;

use std::path::Path;

use berth_server::{AppState, build_app};
use berth_testkit::{LocalEcrFixture, TempDb, TempDir, postgres_url};
use common::options;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

struct Replica {
    url: String,
    state: AppState,
}

/// A replica: its own process state (broker, caches) over the shared database and key file.
async fn replica(dir: &Path, db_url: &str, key_file: &Path) -> Replica {
    let mut o = options(dir);
    o.database = Some(db_url.to_owned());
    o.master_key_file = Some(key_file.to_owned());
    let store = o
        .open_store()
        .await
        .expect("the replica opens the shared store");
    let state = AppState::new(store, dir);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = build_app(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Replica { url, state }
}

async fn post(http: &reqwest::Client, url: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let r = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn token_calls(replicas: &[Replica]) -> u64 {
    replicas.iter().map(|r| r.state.broker.token_calls()).sum()
}

/// 100 credential requests at once, round-robin over the replicas; all must succeed.
async fn logins(http: &reqwest::Client, replicas: &[Replica], admin: &str) -> Vec<String> {
    let calls = (0..100).map(|i| {
        let url = format!(
            "{}/api/v1/integrations/local/credentials",
            replicas[i % replicas.len()].url
        );
        let http = http.clone();
        let admin = admin.to_owned();
        async move { post(&http, &url, &admin, json!({})).await }
    });
    let answers = futures_join_all(calls).await;
    answers
        .into_iter()
        .map(|(status, v)| {
            assert_eq!(status, StatusCode::OK, "{v}");
            v["password"].as_str().unwrap().to_owned()
        })
        .collect()
}

async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_replicas_make_one_token_call_for_a_hundred_logins() {
    let Some(pg) = postgres_url() else { return };
    let db = TempDb::create(&pg).await;
    let ecr = LocalEcrFixture::seeded("replicas-ecr").await;
    let keys = ecr.demo_keys();
    let dirs: Vec<TempDir> = (0..5)
        .map(|i| TempDir::new(&format!("replica{i}")))
        .collect();
    let key_file = dirs[0].path().join("master.key");
    let first = replica(dirs[0].path(), &db.url, &key_file).await;
    let admin =
        berth_server::auth::bootstrap_admin_token(first.state.store.as_ref(), dirs[0].path())
            .await
            .unwrap()
            .expect("a fresh database mints the admin token");
    let admin = admin.expose_secret().to_owned();
    let mut replicas = vec![first];
    for dir in &dirs[1..] {
        replicas.push(replica(dir.path(), &db.url, &key_file).await);
    }
    let http = reqwest::Client::new();
    let (status, v) = post(
        &http,
        &format!("{}/api/v1/integrations", replicas[0].url),
        &admin,
        json!({"name": "local", "type": "ecr", "endpoint": ecr.url,
               "auth": {"mode": "access_keys", "access_key_id": keys.id, "secret_access_key": keys.secret}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    let passwords = logins(&http, &replicas, &admin).await;
    assert_eq!(
        token_calls(&replicas),
        1,
        "one GetAuthorizationToken across five replicas"
    );
    assert!(
        passwords.iter().all(|p| p == &passwords[0]),
        "every replica hands out the same token"
    );

    // The shared entry is sealed: the token is nowhere in the clear in the database.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT ciphertext FROM registry_token_cache")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let needle = passwords[0].as_bytes();
    assert!(!rows[0].0.windows(needle.len()).any(|w| w == needle));

    // An edit is a new version: exactly one more call, and every replica follows it.
    let r = http
        .patch(format!("{}/api/v1/integrations/local", replicas[3].url))
        .bearer_auth(&admin)
        .json(&json!({"subscriptions": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    logins(&http, &replicas, &admin).await;
    assert_eq!(
        token_calls(&replicas),
        2,
        "one more call after the edit, not five"
    );

    // Deleting the integration deletes its shared tokens.
    let r = http
        .delete(format!("{}/api/v1/integrations/local", replicas[1].url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM registry_token_cache")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    pool.close().await;
    db.drop_now().await;
}

/// Two replicas, each running the GitOps worker, take integration changes through both APIs:
/// every change lands as exactly one commit (none pushed twice, none lost) and every
/// integration ends SYNCED.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_push_each_gitops_change_once() {
    let Some(pg) = postgres_url() else { return };
    let db = TempDb::create(&pg).await;
    let dirs: Vec<TempDir> = (0..2)
        .map(|i| TempDir::new(&format!("gitops-replica{i}")))
        .collect();
    let key_file = dirs[0].path().join("master.key");
    let first = replica(dirs[0].path(), &db.url, &key_file).await;
    let admin =
        berth_server::auth::bootstrap_admin_token(first.state.store.as_ref(), dirs[0].path())
            .await
            .unwrap()
            .expect("a fresh database mints the admin token");
    let admin = admin.expose_secret().to_owned();
    let second = replica(dirs[1].path(), &db.url, &key_file).await;
    let replicas = [first, second];
    for r in &replicas {
        tokio::spawn(r.state.gitops.clone().run());
    }
    let (bare, _) = berth_testkit::git::bare_repository(dirs[0].path());
    let http = reqwest::Client::new();
    let repo = format!("{}?ref=main", bare.display());
    let r = http
        .put(format!("{}/api/v1/gitops", replicas[0].url))
        .bearer_auth(&admin)
        .json(&json!({"repo": repo}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, v) = post(
        &http,
        &format!("{}/api/v1/runtimes", replicas[1].url),
        &admin,
        json!({"name": "edge"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let creates = (0..12).map(|i| {
        let url = format!("{}/api/v1/integrations", replicas[i % 2].url);
        let body = json!({"name": format!("ecr-{i:02}"), "type": "ecr", "auth": {"mode": "ambient"},
            "runtimes": {"selected": ["edge"]}});
        let (http, admin) = (http.clone(), admin.clone());
        async move { post(&http, &url, &admin, body).await }
    });
    for (status, v) in futures_join_all(creates).await {
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let files = || berth_testkit::git::git(&bare, &["ls-tree", "-r", "--name-only", "main"]);
    let mut synced = false;
    for _ in 0..200 {
        let r = http
            .get(format!("{}/api/v1/gitops/status", replicas[0].url))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        let list: Value = r.json().await.unwrap();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if items.len() == 12 && items.iter().all(|i| i["status"] == "SYNCED") {
            synced = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        synced,
        "every integration ends SYNCED; the tree has {}",
        files()
    );
    assert_eq!(
        files()
            .lines()
            .filter(|f| f.ends_with(".configmap.yaml"))
            .count(),
        12
    );
    let log = berth_testkit::git::git(&bare, &["log", "--format=%B", "main"]);
    for i in 0..12 {
        let name = format!("ecr-{i:02}");
        let mentions = log
            .lines()
            .filter(|l| l.contains(&format!("integration {name} ")) || l.trim() == name)
            .count();
        assert_eq!(mentions, 1, "{name} is pushed exactly once:\n{log}");
    }
}
