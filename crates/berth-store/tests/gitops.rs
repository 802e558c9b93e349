//! GitOps state as one story on both backends (PostgreSQL when BERTH_TEST_POSTGRES_URL is set,
//! always in CI): settings with the push password sealed (kept when not given, never in the
//! clear in the database), queued syncs and their retries, a change queued during a push staying
//! due, the ledger replaced per integration, and a runtime's new sealing certificate.

use berth_core::Name;
use berth_store::{
    GitOpsSettingsInput, Keyring, Location, MasterKey, Store, StoreError, SyncState, WrittenFile,
};
use berth_testkit::{TempDb, TempDir, postgres_url};
use secrecy::{ExposeSecret, SecretString};
use time::{Duration, OffsetDateTime};

fn input<'a>(repo: &'a str, password: Option<&'a SecretString>) -> GitOpsSettingsInput<'a> {
    GitOpsSettingsInput {
        repo,
        username: Some("ci"),
        password,
        clear_password: false,
        account_cert: None,
        namespace: "codefresh",
    }
}

fn file(path: &str, key: &str, tag: &str) -> WrittenFile {
    WrittenFile {
        path: path.into(),
        name_key: key.into(),
        sha256: format!("hash-of-{path}"),
        tag: tag.into(),
    }
}

async fn settings(store: &dyn Store) {
    assert!(store.gitops_settings().await.unwrap().is_none());
    let password = SecretString::from("push-token-abc".to_owned());
    let saved = store
        .put_gitops_settings(&input("/srv/a.git", Some(&password)), "admin")
        .await
        .unwrap();
    assert_eq!(saved.password.unwrap().expose_secret(), "push-token-abc");
    assert_eq!(saved.version, 1);
    let kept = store
        .put_gitops_settings(&input("/srv/b.git?ref=main", None), "admin")
        .await
        .unwrap();
    assert_eq!(kept.repo, "/srv/b.git?ref=main");
    assert_eq!(
        kept.password.unwrap().expose_secret(),
        "push-token-abc",
        "kept"
    );
    assert_eq!(kept.version, 2);
}

async fn syncs(store: &dyn Store) {
    let now = OffsetDateTime::now_utc() + Duration::seconds(1);
    let names = vec![
        ("ecr-a".to_owned(), "ecr-A".to_owned()),
        ("ecr-b".to_owned(), "ecr-b".to_owned()),
    ];
    store
        .queue_sync(&names, "berth: create integration ecr-A")
        .await
        .unwrap();
    let stale = now - Duration::minutes(10);
    let due = store.claim_syncs(now, stale).await.unwrap();
    assert_eq!(due.len(), 2);
    assert!(due.iter().all(|r| r.state == SyncState::Syncing));
    let again = store.claim_syncs(now, stale).await.unwrap();
    assert!(
        again.is_empty(),
        "a claimed change is nobody else's: {again:?}"
    );

    // A change to ecr-b arrives while the push runs: it stays due after the push lands.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store
        .queue_sync(&names[1..], "berth: update integration ecr-b")
        .await
        .unwrap();
    let files = [
        file("r/a.yaml", "ecr-a", "revision 1"),
        file("r/b.yaml", "ecr-b", "revision 1"),
    ];
    store
        .finish_sync(&due, &files, Some("c0ffee"))
        .await
        .unwrap();
    let records = store.sync_records().await.unwrap();
    let a = records.iter().find(|r| r.name_key == "ecr-a").unwrap();
    let b = records.iter().find(|r| r.name_key == "ecr-b").unwrap();
    assert_eq!(
        (a.state, a.commit_id.as_deref()),
        (SyncState::Synced, Some("c0ffee"))
    );
    assert_eq!(
        b.state,
        SyncState::Pending,
        "queued during the push: still due"
    );
    assert_eq!(b.message, "berth: update integration ecr-b");
    assert_eq!(store.written_files().await.unwrap().len(), 2);

    // A failed push: out of sync with the reason, due again only at the retry time.
    let retry = OffsetDateTime::now_utc() + Duration::minutes(5);
    store
        .fail_sync(&["ecr-b".into()], "git push failed: unreachable", retry)
        .await
        .unwrap();
    let due = store.claim_syncs(now, stale).await.unwrap();
    assert!(due.is_empty(), "not before its retry time: {due:?}");
    let later = store
        .claim_syncs(retry + Duration::seconds(1), stale)
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(
        (later[0].name_key.as_str(), later[0].attempts),
        ("ecr-b", 1)
    );
    assert_eq!(
        later[0].reason.as_deref(),
        Some("git push failed: unreachable")
    );
    // A replica that died mid-push leaves it SYNCING: taken again once its lease is over.
    let soon = retry + Duration::seconds(2);
    assert!(store.claim_syncs(soon, stale).await.unwrap().is_empty());
    let taken = store.claim_syncs(soon, soon).await.unwrap();
    assert_eq!(taken.len(), 1, "a stale push is taken over");

    // The ledger of a name is replaced, not added to: a moved file leaves its old path.
    store
        .finish_sync(
            &taken,
            &[file("r/moved/b.yaml", "ecr-b", "revision 2")],
            None,
        )
        .await
        .unwrap();
    let ledger: Vec<String> = store
        .written_files()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(ledger, ["r/a.yaml", "r/moved/b.yaml"]);
}

async fn runtime_certificate(store: &dyn Store) {
    let name = Name::parse("name", "prod-eu").unwrap();
    store.create_runtime(&name, None, "admin").await.unwrap();
    let r = store
        .set_runtime_sealing_cert("PROD-EU", "-----BEGIN CERTIFICATE-----", "admin")
        .await
        .unwrap();
    assert_eq!(
        r.sealing_cert.as_deref(),
        Some("-----BEGIN CERTIFICATE-----")
    );
    assert_eq!(r.meta.version, 2);
    assert!(matches!(
        store.set_runtime_sealing_cert("nope", "x", "admin").await,
        Err(StoreError::NotFound {
            kind: "runtime",
            ..
        })
    ));
}

async fn story(store: std::sync::Arc<dyn Store>) {
    settings(store.as_ref()).await;
    syncs(store.as_ref()).await;
    runtime_certificate(store.as_ref()).await;
}

#[tokio::test]
async fn gitops_state_on_sqlite() {
    let dir = TempDir::new("gitops-store");
    let path = dir.path().join("berth.db");
    let store = berth_store::open(
        &Location::Sqlite(path.clone()),
        Keyring::new(MasterKey::generate().unwrap()),
    )
    .await
    .unwrap();
    story(store).await;
    let raw = std::fs::read(&path).unwrap();
    let wal = std::fs::read(path.with_extension("db-wal")).unwrap_or_default();
    let needle = b"push-token-abc";
    assert!(
        !raw.windows(needle.len()).any(|w| w == needle)
            && !wal.windows(needle.len()).any(|w| w == needle),
        "the push password is sealed in the database"
    );
}

#[tokio::test]
async fn gitops_state_on_postgres() {
    let Some(url) = postgres_url() else { return };
    let db = TempDb::create(&url).await;
    let store = berth_store::open(
        &Location::parse(&db.url),
        Keyring::new(MasterKey::generate().unwrap()),
    )
    .await
    .unwrap();
    story(store).await;
    db.drop_now().await;
}
