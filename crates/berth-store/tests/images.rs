//! Image resources and versions as one story on both backends (PostgreSQL when
//! BERTH_TEST_POSTGRES_URL is set, always in CI): a tag seen at the same digest by poll, post
//! and event is one version; a moved tag is a new one; concurrent sightings of one push make one
//! version; versions page newest first and pin by number or name; polls are claimed once and
//! back off; a replayed event is refused; deleting the project takes its resources along.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_core::{Name, ProjectName};
use berth_store::{
    Keyring, Location, MasterKey, Recorded, ResourceInput, Sighting, Store, StoreError,
    VersionSource,
};
use berth_testkit::{TempDb, TempDir, postgres_url};
use time::{Duration, OffsetDateTime};

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn seen<'a>(
    tag: &'a str,
    digest: &'a str,
    source: VersionSource,
    properties: &'a BTreeMap<String, String>,
) -> Sighting<'a> {
    Sighting {
        version_name: tag,
        digest,
        source,
        pushed_at: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
        properties,
    }
}

async fn story(store: Arc<dyn Store>) {
    let sub = Name::parse("name", "acme").unwrap();
    store.create_subscription(&sub, "admin").await.unwrap();
    let project = ProjectName::parse("project", "acme/web").unwrap();
    let project = store
        .create_project(&project, "acme", "admin")
        .await
        .unwrap();
    let input = ResourceInput {
        name: "appImage".into(),
        integration: "ecr-prod".into(),
        source_name: "123456789012.dkr.ecr.us-east-1.amazonaws.com/app".into(),
        tag: "latest".into(),
        poll_seconds: Some(60),
    };
    let r = store
        .put_resource(&project.id, &input, "admin")
        .await
        .unwrap();
    assert_eq!((r.last_version, r.meta.version), (0, 1));
    let redefined = ResourceInput {
        poll_seconds: None,
        ..input.clone()
    };
    let again = store
        .put_resource(&project.id, &redefined, "ci")
        .await
        .unwrap();
    assert_eq!(
        again.poll_seconds, 60,
        "a redefinition without an interval keeps it"
    );
    assert_eq!(
        (again.id.as_str(), again.meta.version),
        (r.id.as_str(), 2),
        "redefined in place"
    );
    assert_eq!(
        store
            .get_resource(&project.id, "APPIMAGE")
            .await
            .unwrap()
            .id,
        r.id
    );

    // One push seen three ways is one version; a moved tag is the next.
    let none = BTreeMap::new();
    let (a, b) = (digest(1), digest(2));
    let first = store
        .record_sighting(&r.id, &seen("latest", &a, VersionSource::Poll, &none))
        .await
        .unwrap();
    assert!(matches!(&first, Recorded::New(v) if v.version_number == 1));
    let props = BTreeMap::from([("commit".to_owned(), "abc123".to_owned())]);
    for source in [VersionSource::Post, VersionSource::Webhook] {
        let known = store
            .record_sighting(&r.id, &seen("latest", &a, source, &props))
            .await
            .unwrap();
        assert_eq!(
            known,
            Recorded::Known(first.version().clone()),
            "{source:?}"
        );
    }
    let moved = store
        .record_sighting(&r.id, &seen("latest", &b, VersionSource::Webhook, &props))
        .await
        .unwrap();
    assert!(matches!(&moved, Recorded::New(v) if v.version_number == 2 && v.properties == props));
    let back = store
        .record_sighting(&r.id, &seen("latest", &a, VersionSource::Post, &none))
        .await
        .unwrap();
    assert!(
        matches!(&back, Recorded::New(v) if v.version_number == 3),
        "moving back is a new push"
    );
    store
        .record_sighting(&r.id, &seen("v1.4", &b, VersionSource::Post, &none))
        .await
        .unwrap();

    // Many replicas seeing one push at once: one version.
    let c = digest(3);
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let (id, c) = (r.id.clone(), c.clone());
            tokio::spawn(async move {
                let none = BTreeMap::new();
                store
                    .record_sighting(&id, &seen("latest", &c, VersionSource::Poll, &none))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut new = 0;
    for racer in racers {
        new += matches!(racer.await.unwrap(), Recorded::New(_)) as usize;
    }
    assert_eq!(new, 1, "exactly one sighting of a push is new");

    let page = store.list_versions(&r.id, None, 2).await.unwrap();
    let numbers: Vec<i64> = page.iter().map(|v| v.version_number).collect();
    assert_eq!(numbers, [5, 4], "newest first");
    let rest = store.list_versions(&r.id, Some(4), 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|v| v.version_number).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    let latest = store
        .find_version(&r.id, None, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (latest.version_number, latest.digest.as_str()),
        (5, c.as_str())
    );
    let pinned = store
        .find_version(&r.id, Some(2), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pinned.digest, b);
    let by_name = store
        .find_version(&r.id, None, Some("v1.4"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_name.version_number, 4);
    assert!(
        store
            .find_version(&r.id, Some(99), None)
            .await
            .unwrap()
            .is_none()
    );

    // Polls: due ones are claimed once; a failure is counted and kept, a success clears it.
    let now = OffsetDateTime::now_utc() + Duration::seconds(1);
    let claimed = store.claim_polls(now, 30).await.unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [r.id.as_str()]
    );
    assert!(
        store.claim_polls(now, 30).await.unwrap().is_empty(),
        "leased"
    );
    store
        .finish_poll(&r.id, Some("503 from the registry"), now)
        .await
        .unwrap();
    let failed = store.claim_polls(now, 30).await.unwrap();
    assert_eq!(failed[0].poll_failures, 1);
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some("503 from the registry")
    );
    store
        .finish_poll(&r.id, None, now + Duration::hours(1))
        .await
        .unwrap();
    let ok = store.get_resource(&project.id, "appImage").await.unwrap();
    assert_eq!((ok.poll_failures, ok.last_error), (0, None));

    // Events: a secret's hash, and each event id once.
    assert!(!ok.event_secret_set);
    store.set_event_secret_hash(&r.id, "hash-1").await.unwrap();
    assert_eq!(
        store.event_secret_hash(&r.id).await.unwrap().as_deref(),
        Some("hash-1")
    );
    assert!(store.note_event(&r.id, "event-1").await.unwrap());
    assert!(
        !store.note_event(&r.id, "event-1").await.unwrap(),
        "a replay"
    );

    triggers(store.as_ref(), &r.id).await;
    store
        .delete_resource(&project.id, "appimage")
        .await
        .unwrap();
    assert!(matches!(
        store.get_resource(&project.id, "appImage").await,
        Err(StoreError::NotFound {
            kind: "resource",
            ..
        })
    ));
    let r = store
        .put_resource(&project.id, &input, "admin")
        .await
        .unwrap();
    assert_eq!(r.last_version, 0, "a new resource starts its own numbering");
    store.delete_project("acme/web").await.unwrap();
    assert!(
        store
            .list_versions(&r.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A trigger gets one delivery per new version, queued with the version; a failed attempt is
/// retried when due, a delivered one is done.
async fn triggers(store: &dyn Store, resource_id: &str) {
    use berth_store::{Attempt, DeliveryState};
    let secret = secrecy::SecretString::from("hook-secret-123".to_owned());
    let t = store
        .add_trigger(resource_id, "http://127.0.0.1:9/hook", &secret, "admin")
        .await
        .unwrap();
    assert!(matches!(
        store
            .add_trigger(resource_id, "http://127.0.0.1:9/hook", &secret, "admin")
            .await,
        Err(StoreError::Duplicate {
            kind: "trigger",
            ..
        })
    ));
    let none = BTreeMap::new();
    let d = digest(9);
    let v = store
        .record_sighting(resource_id, &seen("latest", &d, VersionSource::Poll, &none))
        .await
        .unwrap();
    let Recorded::New(v) = v else { panic!("new") };
    store
        .record_sighting(resource_id, &seen("latest", &d, VersionSource::Post, &none))
        .await
        .unwrap();
    let log = store.deliveries(&t.id, 10).await.unwrap();
    assert_eq!(
        log.len(),
        1,
        "one delivery per new version, none for a known one"
    );
    assert_eq!(
        (log[0].version_number, log[0].state),
        (v.version_number, DeliveryState::Pending)
    );

    let now = OffsetDateTime::now_utc() + Duration::seconds(1);
    let due = store.claim_deliveries(now, 60).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].url, "http://127.0.0.1:9/hook");
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&due[0].secret),
        "hook-secret-123"
    );
    assert_eq!(due[0].version.digest, d);
    assert!(
        store.claim_deliveries(now, 60).await.unwrap().is_empty(),
        "leased"
    );
    let failed = Attempt::Failed {
        status: Some(500),
        error: "500 Internal Server Error".into(),
        retry_at: Some(now),
    };
    store
        .finish_delivery(&t.id, v.version_number, &failed)
        .await
        .unwrap();
    let again = store.claim_deliveries(now, 60).await.unwrap();
    assert_eq!(again[0].delivery.attempts, 1);
    assert_eq!(again[0].delivery.last_status, Some(500));
    store
        .finish_delivery(&t.id, v.version_number, &Attempt::Delivered { status: 204 })
        .await
        .unwrap();
    let log = store.deliveries(&t.id, 10).await.unwrap();
    assert_eq!(
        (log[0].state, log[0].attempts),
        (DeliveryState::Delivered, 2)
    );
    assert!(log[0].delivered_at.is_some());
    assert!(
        store.claim_deliveries(now, 60).await.unwrap().is_empty(),
        "delivered once"
    );
    assert_eq!(store.list_triggers(resource_id).await.unwrap().len(), 1);
    store.delete_trigger(resource_id, &t.id).await.unwrap();
    assert!(store.list_triggers(resource_id).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_versions_on_sqlite() {
    let dir = TempDir::new("images-store");
    let store = berth_store::open(
        &Location::Sqlite(dir.path().join("berth.db")),
        Keyring::new(MasterKey::generate().unwrap()),
    )
    .await
    .unwrap();
    story(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_versions_on_postgres() {
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
