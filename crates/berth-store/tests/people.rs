//! Users, sessions, the sign-in throttle, connection test results and listing counts, as one
//! story on both backends (PostgreSQL when BERTH_TEST_POSTGRES_URL is set, always in CI).

use std::sync::Arc;

use berth_core::{IntegrationDraft, IntegrationType, Name};
use berth_store::{
    IntegrationQuery, Keyring, Location, MasterKey, SessionOwner, Store, StoreError, TokenRole,
};
use berth_testkit::{TempDb, TempDir, postgres_url};
use serde_json::json;
use time::{Duration, OffsetDateTime};

fn name(s: &str) -> Name {
    Name::parse("name", s).unwrap()
}

async fn users_and_sessions(store: &dyn Store) {
    store
        .create_subscription(&name("acme"), "admin")
        .await
        .unwrap();
    let ada = store
        .create_user(&name("Ada"), "$argon2id$fake-a", &TokenRole::Admin, "admin")
        .await
        .unwrap();
    let bob = store
        .create_user(
            &name("bob"),
            "$argon2id$fake-b",
            &TokenRole::Subscription(name("acme")),
            "admin",
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_user(&name("ADA"), "x", &TokenRole::Admin, "admin")
            .await,
        Err(StoreError::Duplicate { kind: "user", .. })
    ));
    assert!(matches!(
        store
            .create_user(
                &name("eve"),
                "x",
                &TokenRole::Subscription(name("nope")),
                "admin"
            )
            .await,
        Err(StoreError::UnknownReference { .. })
    ));
    let found = store.find_user("ada").await.unwrap().unwrap();
    assert_eq!(found.user, ada);
    assert_eq!(found.password_hash, "$argon2id$fake-a");
    let listed: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .iter()
        .map(|u| u.name.to_string())
        .collect();
    assert_eq!(listed, ["Ada", "bob"]);

    let later = OffsetDateTime::now_utc() + Duration::hours(8);
    store
        .open_session(b"s-ada", Some(&ada.id), None, later)
        .await
        .unwrap();
    store
        .open_session(b"s-bob", Some(&bob.id), None, later)
        .await
        .unwrap();
    let past = OffsetDateTime::now_utc() - Duration::seconds(1);
    store
        .open_session(b"s-old", Some(&ada.id), None, past)
        .await
        .unwrap();
    let session = store.find_session(b"s-ada").await.unwrap().unwrap();
    assert_eq!(session.owner, SessionOwner::User(ada.clone()));
    assert!(
        store.find_session(b"s-old").await.unwrap().is_none(),
        "an expired session is not a session"
    );
    assert!(store.find_session(b"nope").await.unwrap().is_none());

    // A new password ends the user's sessions; other users keep theirs.
    store
        .set_password("ADA", "$argon2id$new", "admin")
        .await
        .unwrap();
    assert!(store.find_session(b"s-ada").await.unwrap().is_none());
    assert!(store.find_session(b"s-bob").await.unwrap().is_some());
    assert_eq!(
        store.find_user("ada").await.unwrap().unwrap().password_hash,
        "$argon2id$new"
    );
    // Deleting the subscription deletes its users and so their sessions.
    store.delete_subscription("acme").await.unwrap();
    assert!(store.find_user("bob").await.unwrap().is_none());
    assert!(store.find_session(b"s-bob").await.unwrap().is_none());
    store.delete_user("ada").await.unwrap();
    assert!(matches!(
        store.delete_user("ada").await,
        Err(StoreError::NotFound { kind: "user", .. })
    ));

    // A session opened with a token ends with the token.
    store
        .create_token("t1", &[7u8; 32], &TokenRole::Admin, "ops", "admin")
        .await
        .unwrap();
    let token_id = store.list_tokens().await.unwrap()[0].id.clone();
    store
        .open_session(b"s-token", None, Some(&token_id), later)
        .await
        .unwrap();
    assert!(matches!(
        store.find_session(b"s-token").await.unwrap().unwrap().owner,
        SessionOwner::Token(_)
    ));
    // Ending a session moves the generation: replicas' session caches drop it at once.
    let before = store.generation().await.unwrap();
    store.end_session(b"s-token").await.unwrap();
    assert!(store.generation().await.unwrap() > before);
    assert!(store.find_session(b"s-token").await.unwrap().is_none());
}

async fn throttle(store: &dyn Store) {
    let since = OffsetDateTime::now_utc() - Duration::minutes(15);
    for expected in 1..=3 {
        assert_eq!(
            store
                .record_sign_in_failure("user:mallory", since)
                .await
                .unwrap(),
            expected
        );
    }
    assert_eq!(
        store.sign_in_failures("user:mallory", since).await.unwrap(),
        3
    );
    assert_eq!(
        store.sign_in_failures("user:other", since).await.unwrap(),
        0
    );
    let future = OffsetDateTime::now_utc() + Duration::minutes(1);
    assert_eq!(
        store
            .sign_in_failures("user:mallory", future)
            .await
            .unwrap(),
        0
    );
    store.clear_sign_in_failures("user:mallory").await.unwrap();
    assert_eq!(
        store.sign_in_failures("user:mallory", since).await.unwrap(),
        0
    );
}

async fn tests_and_counts(store: &dyn Store) {
    let mut ids = Vec::new();
    for n in ["ecr-a", "ecr-b", "other-c"] {
        let draft = IntegrationDraft::create(
            serde_json::from_value(json!({"name": n, "type": "ecr", "auth": {"mode": "ambient"}}))
                .unwrap(),
        )
        .unwrap();
        ids.push(store.create_integration(draft, "admin").await.unwrap().id);
    }
    store
        .record_connection_test(
            &ids[0],
            false,
            "get_authorization_token: wrong secret",
            "admin",
        )
        .await
        .unwrap();
    let before = store.generation().await.unwrap();
    store
        .record_connection_test(&ids[0], true, "all steps passed", "ada")
        .await
        .unwrap();
    assert!(
        store.generation().await.unwrap() > before,
        "a new result drops cached list pages"
    );
    let tests = store.connection_tests(&ids).await.unwrap();
    assert_eq!(tests.len(), 1, "only tested integrations have a result");
    assert!(tests[0].ok);
    assert_eq!(tests[0].tested_by, "ada");
    assert!(store.connection_tests(&[]).await.unwrap().is_empty());

    let mut q = IntegrationQuery {
        limit: 1,
        kind: Some(IntegrationType::Ecr),
        ..Default::default()
    };
    let all = store.count_integrations(&q).await.unwrap();
    assert_eq!((all.total, all.before), (3, 0));
    q.name_contains = Some("ECR-".into());
    q.after = Some("ecr-a".into());
    let counted = store.count_integrations(&q).await.unwrap();
    assert_eq!((counted.total, counted.before), (2, 1));
    assert_eq!(
        counted.previous_after, None,
        "the previous page is the first"
    );
    q.name_contains = None;
    q.after = Some("other-c".into());
    let third = store.count_integrations(&q).await.unwrap();
    assert_eq!((third.total, third.before), (3, 3));
    assert_eq!(third.previous_after.as_deref(), Some("ecr-b"));
    // Deleting the integration deletes its test result.
    store.delete_integration("ecr-a").await.unwrap();
    assert!(store.connection_tests(&ids).await.unwrap().is_empty());
}

async fn people(store: Arc<dyn Store>) {
    users_and_sessions(store.as_ref()).await;
    throttle(store.as_ref()).await;
    tests_and_counts(store.as_ref()).await;
}

#[tokio::test]
async fn people_on_sqlite() {
    let dir = TempDir::new("people");
    let loc = Location::Sqlite(dir.path().join("berth.db"));
    let store = berth_store::open(&loc, Keyring::new(MasterKey::generate().unwrap()))
        .await
        .unwrap();
    people(store).await;
}

#[tokio::test]
async fn people_on_postgres() {
    let Some(url) = postgres_url() else { return };
    let db = TempDb::create(&url).await;
    let store = berth_store::open(
        &Location::parse(&db.url),
        Keyring::new(MasterKey::generate().unwrap()),
    )
    .await
    .unwrap();
    people(store).await;
    db.drop_now().await;
}
