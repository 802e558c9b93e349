//! One story, run on both backends: SQLite always, PostgreSQL when BERTH_TEST_POSTGRES_URL is set
//! (always in CI). It covers create, filtered and paginated listing, update, rename, reassignment,
//! concurrent edits, guarded deletes, sealed secrets and key rotation.

use std::sync::Arc;

use berth_core::resolution::{Dependency, DependencyKind};
use berth_core::{
    IntegrationDraft, IntegrationPatch, Name, ProjectName, RuntimeScope, SecretField,
};
use berth_store::{IntegrationQuery, Keyring, Location, MasterKey, Store, StoreError};
use berth_testkit::{TempDb, TempDir, postgres_url};
use secrecy::ExposeSecret;
use serde_json::json;

const SECRET: &str = "StorySecret/Value+0123456789abcdefXYZ";

fn draft(v: serde_json::Value) -> IntegrationDraft {
    IntegrationDraft::create(serde_json::from_value(v).unwrap()).unwrap()
}

fn patch(v: serde_json::Value) -> IntegrationPatch {
    serde_json::from_value(v).unwrap()
}

fn apply(v: serde_json::Value) -> berth_store::IntegrationChange<'static> {
    Box::new(move |cur| IntegrationDraft::patch(cur, patch(v)))
}

fn name(s: &str) -> Name {
    Name::parse("name", s).unwrap()
}

fn query() -> IntegrationQuery {
    IntegrationQuery {
        limit: 50,
        ..Default::default()
    }
}

fn names(page: &berth_store::Page<berth_core::Integration>) -> Vec<&str> {
    page.items.iter().map(|i| i.name.as_str()).collect()
}

async fn story(store: Arc<dyn Store>) {
    let generation = store.generation().await.unwrap();
    for s in ["acme", "globex"] {
        store.create_subscription(&name(s), "admin").await.unwrap();
    }
    store
        .create_runtime(&name("prod-eu"), None, "admin")
        .await
        .unwrap();
    let project = ProjectName::parse("name", "acme/web").unwrap();
    store
        .create_project(&project, "ACME", "admin")
        .await
        .unwrap();
    assert_eq!(store.list_projects(Some("acme")).await.unwrap().len(), 1);

    let a = store
        .create_integration(
            draft(json!({"name": "ecr-a", "type": "ecr", "region": "us-west-2",
                "auth": {"mode": "access_keys", "access_key_id": "AKIAFAKESTOR1234", "secret_access_key": SECRET},
                "subscriptions": ["acme"]})),
            "admin",
        )
        .await
        .unwrap();
    assert_eq!(a.subscriptions, vec![name("acme")]);
    let after_writes = store.generation().await.unwrap();
    assert!(
        after_writes >= generation + 5,
        "every write moves the generation"
    );
    store.list_integrations(&query()).await.unwrap();
    assert_eq!(
        store.generation().await.unwrap(),
        after_writes,
        "reads do not"
    );
    assert_eq!(a.meta.version, 1);
    assert_eq!(a.meta.created_by, "admin");
    store
        .create_integration(
            draft(
                json!({"name": "ecr-b", "type": "ecr", "auth": {"mode": "ambient"},
                "subscriptions": ["globex"], "runtimes": {"all": true}}),
            ),
            "admin",
        )
        .await
        .unwrap();
    let c = store
        .create_integration(
            draft(json!({"name": "ecr-c", "type": "ecr",
                "auth": {"mode": "assume_role", "role_arn": "arn:aws:iam::123456789012:role/pull"},
                "subscriptions": ["acme", "globex"], "runtimes": {"selected": ["prod-eu"]}})),
            "admin",
        )
        .await
        .unwrap();
    assert_eq!(c.runtimes, RuntimeScope::Selected(vec![name("prod-eu")]));

    // Refusals change nothing.
    let dup = store
        .create_integration(
            draft(json!({"name": "ECR-A", "type": "ecr", "auth": {"mode": "ambient"}})),
            "admin",
        )
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Duplicate { .. }), "{dup}");
    let unknown = store
        .create_integration(
            draft(json!({"name": "ecr-d", "type": "ecr", "auth": {"mode": "ambient"}, "subscriptions": ["initech"]})),
            "admin",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown, StoreError::UnknownReference { field, .. } if field == "subscriptions[0]"),
        "{unknown}"
    );
    assert!(matches!(
        store.get_integration("ecr-d").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.generation().await.unwrap(),
        after_writes + 2,
        "refused writes roll back, generation included"
    );

    // Listing: filters and stable pagination.
    assert_eq!(
        names(&store.list_integrations(&query()).await.unwrap()),
        ["ecr-a", "ecr-b", "ecr-c"]
    );
    let by_name = IntegrationQuery {
        name_contains: Some("-B".into()),
        ..query()
    };
    assert_eq!(
        names(&store.list_integrations(&by_name).await.unwrap()),
        ["ecr-b"]
    );
    let wildcard = IntegrationQuery {
        name_contains: Some("%".into()),
        ..query()
    };
    assert!(
        store
            .list_integrations(&wildcard)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let by_sub = IntegrationQuery {
        subscription: Some("acme".into()),
        ..query()
    };
    assert_eq!(
        names(&store.list_integrations(&by_sub).await.unwrap()),
        ["ecr-a", "ecr-c"]
    );
    let by_type = IntegrationQuery {
        kind: Some(berth_core::IntegrationType::Ecr),
        ..query()
    };
    assert_eq!(
        store.list_integrations(&by_type).await.unwrap().items.len(),
        3
    );
    let first = store
        .list_integrations(&IntegrationQuery {
            limit: 2,
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(names(&first), ["ecr-a", "ecr-b"]);
    let second = store
        .list_integrations(&IntegrationQuery {
            limit: 2,
            after: first.next_after.clone(),
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(names(&second), ["ecr-c"]);
    assert!(second.next_after.is_none());

    // Update keeps omitted secrets; version and updated_by move.
    let updated = store
        .update_integration("ecr-a", "ops", apply(json!({"region": "eu-west-1"})))
        .await
        .unwrap();
    assert_eq!(updated.meta.version, 2);
    assert_eq!(updated.meta.updated_by, "ops");
    assert_eq!(updated.meta.created_by, "admin");
    let secrets = store.open_secrets(&a.id).await.unwrap();
    assert_eq!(
        secrets[&SecretField::AwsSecretAccessKey].expose_secret(),
        SECRET
    );
    assert_eq!(
        secrets[&SecretField::AwsAccessKeyId].expose_secret(),
        "AKIAFAKESTOR1234"
    );

    // Rename, and rename onto an existing name.
    store
        .update_integration("ECR-A", "ops", apply(json!({"name": "ecr-z"})))
        .await
        .unwrap();
    assert!(matches!(
        store.get_integration("ecr-a").await,
        Err(StoreError::NotFound { .. })
    ));
    let clash = store
        .update_integration(
            "ecr-z",
            "ops",
            apply(json!({"name": "Ecr-B", "region": "ap-south-1"})),
        )
        .await
        .unwrap_err();
    assert!(matches!(clash, StoreError::Duplicate { .. }), "{clash}");
    let z = store.get_integration("ecr-z").await.unwrap();
    assert_eq!(z.id, a.id);
    let berth_core::IntegrationConfig::Ecr(ecr) = &z.config;
    assert_eq!(
        ecr.region, "eu-west-1",
        "a refused patch must not half-apply"
    );

    // Reassign.
    store
        .update_integration("ecr-z", "ops", apply(json!({"subscriptions": ["globex"]})))
        .await
        .unwrap();
    assert_eq!(
        names(&store.list_integrations(&by_sub).await.unwrap()),
        ["ecr-c"]
    );

    // Concurrent read-modify-write edits all land.
    for i in 0..12 {
        store
            .create_subscription(&name(&format!("team-{i}")), "admin")
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .update_integration(
                    "ecr-b",
                    &format!("worker-{i}"),
                    Box::new(move |cur| {
                        let mut subs: Vec<String> =
                            cur.subscriptions.iter().map(|n| n.to_string()).collect();
                        subs.push(format!("team-{i}"));
                        IntegrationDraft::patch(cur, patch(json!({"subscriptions": subs})))
                    }),
                )
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let b = store.get_integration("ecr-b").await.unwrap();
    assert_eq!(b.subscriptions.len(), 13, "{:?}", b.subscriptions);
    assert_eq!(b.meta.version, 13);

    // Dependencies keep an integration from being deleted.
    let dep = store
        .create_integration(
            draft(json!({"name": "ecr-dep", "type": "ecr", "auth": {"mode": "ambient"}})),
            "admin",
        )
        .await
        .unwrap();
    let uses = [
        Dependency::project(&dep.id, "acme/web"),
        Dependency::pipeline_resource(&dep.id, "acme/web", "img"),
    ];
    store
        .record_project_dependencies("ACME/web", &uses)
        .await
        .unwrap();
    store
        .record_project_dependencies("acme/web", &uses[..1])
        .await
        .unwrap();
    assert_eq!(
        store.dependencies("ECR-DEP").await.unwrap(),
        [
            (DependencyKind::PipelineResource, "acme/web:img".to_owned()),
            (DependencyKind::Project, "acme/web".to_owned())
        ]
    );
    assert_eq!(store.project_dependency_count("acme/WEB").await.unwrap(), 2);
    let refused = store
        .record_project_dependencies("acme/gone", &uses)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &refused,
            StoreError::NotFound {
                kind: "project",
                ..
            }
        ),
        "{refused}"
    );
    let refused = store.delete_integration("ecr-dep").await.unwrap_err();
    assert!(
        matches!(&refused, StoreError::InUse { users, .. } if users == &["pipeline_resource acme/web:img".to_owned(), "project acme/web".to_owned()]),
        "{refused}"
    );
    assert!(store.get_integration("ecr-dep").await.is_ok());

    // Environments hold the integrations they use.
    let env = store
        .create_environment(&name("staging"), "acme", &[name("ecr-c")], "admin")
        .await
        .unwrap();
    assert_eq!(env.integrations, vec![name("ecr-c")]);
    assert!(
        store
            .dependencies("ecr-c")
            .await
            .unwrap()
            .contains(&(DependencyKind::Environment, "staging".to_owned()))
    );
    let refused = store
        .create_environment(&name("prod"), "acme", &[name("ecr-b")], "admin")
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::UnknownReference { field, .. } if field == "integrations[0]"),
        "{refused}"
    );
    assert!(
        store
            .list_environments(Some("acme"))
            .await
            .unwrap()
            .iter()
            .all(|e| e.name.as_str() != "prod"),
        "nothing half-written"
    );
    assert!(matches!(
        store.delete_subscription("acme").await,
        Err(StoreError::InUse { .. })
    ));
    store.delete_environment("staging").await.unwrap();
    assert!(
        !store
            .dependencies("ecr-c")
            .await
            .unwrap()
            .iter()
            .any(|(k, _)| *k == DependencyKind::Environment)
    );

    // Deletes guarded by use.
    let in_use = store.delete_subscription("acme").await.unwrap_err();
    assert!(
        matches!(&in_use, StoreError::InUse { users, .. } if users.contains(&"integration ecr-c".to_string()) && users.contains(&"project acme/web".to_string())),
        "{in_use}"
    );
    assert!(matches!(
        store.delete_runtime("prod-eu").await,
        Err(StoreError::InUse { .. })
    ));
    store.delete_integration("ecr-z").await.unwrap();
    assert!(matches!(
        store.delete_integration("ecr-z").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        store.open_secrets(&a.id).await.unwrap().is_empty(),
        "secrets go with the integration"
    );
    let refused = store.delete_integration("ecr-c").await.unwrap_err();
    assert!(
        matches!(&refused, StoreError::InUse { users, .. } if users == &["runtime prod-eu".to_owned()]),
        "a selected runtime is a dependency: {refused}"
    );
    store
        .update_integration(
            "ecr-c",
            "admin",
            apply(json!({"runtimes": {"selected": []}})),
        )
        .await
        .unwrap();
    store.delete_integration("ecr-c").await.unwrap();
    store.delete_runtime("prod-eu").await.unwrap();
    store.delete_project("acme/web").await.unwrap();
    assert!(
        store.dependencies("ecr-dep").await.unwrap().is_empty(),
        "deleting the project releases it"
    );
    store.delete_integration("ecr-dep").await.unwrap();
    store.delete_subscription("acme").await.unwrap();
}

async fn rotation(location: &Location) {
    let old = Keyring::new(MasterKey::generate().unwrap());
    let store = berth_store::open(location, old.clone()).await.unwrap();
    store
        .create_subscription(&name("acme"), "admin")
        .await
        .unwrap();
    let i = store
        .create_integration(
            draft(json!({"name": "rot", "type": "ecr",
                "auth": {"mode": "access_keys", "access_key_id": "AKIAFAKESTOR9999", "secret_access_key": SECRET}})),
            "admin",
        )
        .await
        .unwrap();
    // Secrets sealed outside the integrations: the GitOps push password, a trigger's secret.
    let push = secrecy::SecretString::from("push-password-rot".to_owned());
    store
        .put_gitops_settings(
            &berth_store::GitOpsSettingsInput {
                repo: "/srv/config.git",
                username: Some("ci"),
                password: Some(&push),
                clear_password: false,
                account_cert: None,
                namespace: "codefresh",
            },
            "admin",
        )
        .await
        .unwrap();
    let project = store
        .create_project(
            &berth_core::ProjectName::parse("p", "acme/web").unwrap(),
            "acme",
            "admin",
        )
        .await
        .unwrap();
    let resource = store
        .put_resource(
            &project.id,
            &berth_store::ResourceInput {
                name: "app".into(),
                integration: "rot".into(),
                source_name: "127.0.0.1:5000/app".into(),
                tag: "latest".into(),
                poll_seconds: None,
            },
            "admin",
        )
        .await
        .unwrap();
    let hook = secrecy::SecretString::from("hook-secret-rot".to_owned());
    store
        .add_trigger(&resource.id, "http://127.0.0.1:9/hook", &hook, "admin")
        .await
        .unwrap();
    let new_key = MasterKey::generate().unwrap();
    let both = Keyring::with_keys(vec![new_key.clone(), old.primary().clone()]).unwrap();
    assert_eq!(store.reseal_all(&both).await.unwrap(), 4);

    // The old process's key is no longer registered: it must refuse to seal, not write orphans.
    let refused = store
        .update_integration(
            "rot",
            "x",
            apply(json!({"auth": {"mode": "access_keys", "secret_access_key": "other"}})),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::KeyRotated), "{refused}");
    drop(store);

    let reopened = berth_store::open(location, Keyring::new(new_key))
        .await
        .unwrap();
    assert_eq!(
        reopened.open_secrets(&i.id).await.unwrap()[&SecretField::AwsSecretAccessKey]
            .expose_secret(),
        SECRET
    );
    let settings = reopened.gitops_settings().await.unwrap().unwrap();
    assert_eq!(
        settings.password.unwrap().expose_secret(),
        "push-password-rot",
        "the push password opens with the new key"
    );
    reopened
        .record_sighting(
            &resource.id,
            &berth_store::Sighting {
                version_name: "latest",
                digest: &format!("sha256:{}", "ab".repeat(32)),
                source: berth_store::VersionSource::Post,
                pushed_at: time::OffsetDateTime::now_utc(),
                properties: &Default::default(),
            },
        )
        .await
        .unwrap();
    let due = reopened
        .claim_deliveries(
            time::OffsetDateTime::now_utc() + time::Duration::seconds(1),
            60,
        )
        .await
        .unwrap();
    assert_eq!(
        due[0].secret.expose_secret(),
        "hook-secret-rot",
        "the trigger secret opens with the new key"
    );
    drop(reopened);
    let wrong = berth_store::open(location, old)
        .await
        .err()
        .expect("old key must be refused");
    assert!(
        matches!(&wrong, StoreError::KeyMismatch(m) if m.contains("key id")),
        "{wrong}"
    );
    let stranger = berth_store::open(location, Keyring::new(MasterKey::generate().unwrap()))
        .await
        .err()
        .expect("a foreign key must be refused");
    assert!(stranger.to_string().contains("does not fit"), "{stranger}");
}

async fn concurrent_start(location: &Location) {
    let key = Keyring::new(MasterKey::generate().unwrap());
    let (a, b) = tokio::join!(
        berth_store::open(location, key.clone()),
        berth_store::open(location, key.clone())
    );
    a.unwrap();
    b.unwrap();
}

/// Deletes racing new dependencies: afterwards either the integration is gone and nothing points
/// at it, or it exists and holds every dependency that was recorded.
async fn delete_races_dependencies(
    store: Arc<dyn Store>,
    dangling: impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = i64> + Send>>,
) {
    store
        .create_subscription(&name("acme"), "admin")
        .await
        .unwrap();
    let project = ProjectName::parse("name", "acme/race").unwrap();
    store
        .create_project(&project, "acme", "admin")
        .await
        .unwrap();
    for round in 0..25 {
        let name = format!("race-{round}");
        let i = store
            .create_integration(
                draft(json!({"name": name, "type": "ecr", "auth": {"mode": "ambient"}})),
                "admin",
            )
            .await
            .unwrap();
        let (a, b) = (store.clone(), store.clone());
        let id = i.id.clone();
        let n2 = name.clone();
        let recorded = tokio::spawn(async move {
            a.record_project_dependencies("acme/race", &[Dependency::project(&id, "acme/race")])
                .await
                .is_ok()
        });
        let deleted = tokio::spawn(async move { b.delete_integration(&n2).await.is_ok() });
        let (recorded, deleted) = (recorded.await.unwrap(), deleted.await.unwrap());
        assert!(
            !(recorded && deleted),
            "round {round}: a recorded dependency was deleted with its integration"
        );
        assert!(
            recorded || deleted,
            "round {round}: one of the two must win"
        );
        if recorded {
            assert_eq!(store.dependencies(&name).await.unwrap().len(), 1);
        }
        assert_eq!(
            dangling().await,
            0,
            "round {round}: dangling dependency rows"
        );
    }
}

fn sqlite_location(tag: &str) -> (TempDir, Location) {
    let dir = TempDir::new(tag);
    let loc = Location::Sqlite(dir.path().join("berth.db"));
    (dir, loc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn story_on_sqlite() {
    let (dir, loc) = sqlite_location("story");
    let store = berth_store::open(&loc, Keyring::new(MasterKey::generate().unwrap()))
        .await
        .unwrap();
    assert_eq!(store.backend(), "sqlite");
    story(store).await;
    // The key registered at creation guards the file against a stray key.
    let store = berth_store::open(&loc, Keyring::new(MasterKey::generate().unwrap())).await;
    assert!(
        store.is_err(),
        "a fresh key must not open a database sealed under another"
    );
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn story_on_postgres() {
    let Some(url) = postgres_url() else { return };
    let db = TempDb::create(&url).await;
    let store = berth_store::open(
        &Location::parse(&db.url),
        Keyring::new(MasterKey::generate().unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(store.backend(), "postgres");
    story(store).await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_racing_a_new_dependency_never_dangles() {
    use sqlx::Connection;
    let (_dir, loc) = sqlite_location("dep-race");
    let store = berth_store::open(&loc, Keyring::new(MasterKey::generate().unwrap()))
        .await
        .unwrap();
    let Location::Sqlite(path) = loc.clone() else {
        unreachable!()
    };
    let dangling_sqlite =
        move || -> std::pin::Pin<Box<dyn std::future::Future<Output = i64> + Send>> {
            let path = path.clone();
            Box::pin(async move {
                let mut c = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
                    .await
                    .unwrap();
                sqlx::query_scalar("SELECT COUNT(*) FROM integration_dependencies d LEFT JOIN integrations i ON i.id = d.integration_id WHERE i.id IS NULL")
                .fetch_one(&mut c)
                .await
                .unwrap()
            })
        };
    delete_races_dependencies(store, dangling_sqlite).await;
    if let Some(url) = postgres_url() {
        let db = TempDb::create(&url).await;
        let store = berth_store::open(
            &Location::parse(&db.url),
            Keyring::new(MasterKey::generate().unwrap()),
        )
        .await
        .unwrap();
        let db_url = db.url.clone();
        let dangling_pg =
            move || -> std::pin::Pin<Box<dyn std::future::Future<Output = i64> + Send>> {
                let url = db_url.clone();
                Box::pin(async move {
                    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                    sqlx::query_scalar("SELECT COUNT(*) FROM integration_dependencies d LEFT JOIN integrations i ON i.id = d.integration_id WHERE i.id IS NULL")
                    .fetch_one(&mut c)
                    .await
                    .unwrap()
                })
            };
        delete_races_dependencies(store, dangling_pg).await;
        db.drop_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_rotation_on_both_backends() {
    let (_dir, loc) = sqlite_location("rotate");
    rotation(&loc).await;
    if let Some(url) = postgres_url() {
        let db = TempDb::create(&url).await;
        rotation(&Location::parse(&db.url)).await;
        db.drop_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_starting_together_both_migrate_cleanly() {
    for _ in 0..10 {
        let (_dir, loc) = sqlite_location("race");
        concurrent_start(&loc).await;
    }
    if let Some(url) = postgres_url() {
        for _ in 0..3 {
            let db = TempDb::create(&url).await;
            concurrent_start(&Location::parse(&db.url)).await;
            db.drop_now().await;
        }
    }
}
