//! The web pages in headless Chromium against a real server and a real local ECR: sign-in,
//! Add integration with Test connection (a wrong secret diagnosed, then passing), filters,
//! edit keeping the secret, the delete dialog guarded by dependencies, a subscription member's
//! narrower view, and the phone-width layout. axe-core checks every page; each is saved as a
//! PNG under `target/tmp/screenshots/`.

#[path = "common/browser.rs"]
mod browser;
mod common;

use berth_testkit::{LocalEcrFixture, TempDir};
use browser::Browser;
use common::{TestServer, options};
use reqwest::{Method, StatusCode};
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";

async fn sign_in_user(b: &Browser, url: &str, name: &str, password: &str) {
    b.goto(&format!("{url}/login")).await;
    b.fill("#name", name).await;
    b.fill("#password", password).await;
    b.click("form.stack button[type=submit]").await;
}

async fn checked(b: &Browser, page: &str) {
    b.check_accessibility(page).await;
    b.screenshot(page).await;
}

/// The Add integration form, filled for the local ECR with `secret`.
async fn fill_new_integration(b: &Browser, ecr: &LocalEcrFixture, key_id: &str, secret: &str) {
    b.fill("#name", "local-ecr").await;
    b.fill("#access_key_id", key_id).await;
    b.fill("#secret_access_key", secret).await;
    b.fill("#endpoint", &ecr.url).await;
    b.click("#subscriptions option[value=acme]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_tests_edits_filters_and_deletes_an_integration() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let dir = TempDir::new("ui-admin");
    let ecr = LocalEcrFixture::seeded("ui-ecr").await;
    let keys = ecr.demo_keys();
    let s = TestServer::start(options(&dir.0)).await;
    s.admin(
        Method::POST,
        "/api/v1/subscriptions",
        Some(json!({"name": "acme"})),
    )
    .await;
    s.admin(
        Method::POST,
        "/api/v1/projects",
        Some(json!({"name": "acme/web", "subscription": "acme"})),
    )
    .await;
    let r = s
        .admin(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": "ada", "password": PASSWORD, "admin": true})),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);

    // `/` leads to sign-in; a wrong password is refused and the name is kept.
    b.goto(&format!("{}/", s.url)).await;
    assert_eq!(b.path().await, "/login");
    checked(&b, "login").await;
    sign_in_user(&b, &s.url, "ada", "not the password at all").await;
    b.wait_for_text("#login-error", "not valid").await;
    sign_in_user(&b, &s.url, "ada", PASSWORD).await;
    b.wait_for_path("/integrations").await;
    assert!(b.text(".empty").await.contains("No integration yet"));
    checked(&b, "integrations-empty").await;

    // Add integration: the type, then the form; a wrong secret is diagnosed, the right passes.
    b.click("a.button.primary").await;
    checked(&b, "add-integration-type").await;
    b.click("a.type").await;
    fill_new_integration(&b, &ecr, &keys.id, "a-wrong-secret-value").await;
    b.click("button[value=test]").await;
    let report = b.wait_for_text("#test-result", "failed").await;
    assert!(report.contains("wrong_secret"), "{report}");
    b.fill("#secret_access_key", &keys.secret).await;
    b.click("button[value=test]").await;
    b.wait_for_text("#test-result", "passed").await;
    b.scroll_to("#test-result").await;
    checked(&b, "integration-form-test-connection").await;
    b.click("button[value=save]").await;
    b.wait_for_path("/integrations?done=").await;
    assert!(
        b.text(".notice")
            .await
            .contains("Added integration local-ecr")
    );
    let html = b.source().await;
    assert!(!html.contains(&keys.secret) && !html.contains(&keys.id));

    // Filters narrow the list in place and land in the URL.
    s.admin(
        Method::POST,
        "/api/v1/integrations",
        Some(json!({"name": "other-ambient", "type": "ecr", "auth": {"mode": "ambient"}})),
    )
    .await;
    b.goto(&format!("{}/integrations", s.url)).await;
    assert_eq!(b.text("#count").await, "1–2 of 2");
    b.fill("#filter-name", "local").await;
    b.wait_for_path("name=local").await;
    assert_eq!(b.text("#count").await, "1–1 of 1");
    assert_eq!(b.count("tbody tr").await, 1);
    b.client
        .find(fantoccini::Locator::Css("#filter-type"))
        .await
        .unwrap()
        .select_by_value("ecr")
        .await
        .unwrap();
    b.wait_for_path("type=ecr").await;
    assert_eq!(b.text("#count").await, "1–1 of 1");
    checked(&b, "integrations-list").await;

    // Edit keeps the secret: after saving with blank secrets, the row's test still passes.
    b.goto(&format!("{}/integrations/local-ecr/edit", s.url))
        .await;
    assert!(b.text("#secret-help").await.contains("Set"));
    checked(&b, "integration-edit").await;
    b.click("button[value=save]").await;
    b.wait_for_path("/integrations?done=").await;
    assert!(
        b.text(".notice")
            .await
            .contains("Saved integration local-ecr")
    );
    b.click("button[aria-label='Test connection of local-ecr']")
        .await;
    b.wait_for_text("#row-test", "passed").await;
    b.goto(&format!("{}/integrations?name=local", s.url)).await;
    assert_eq!(b.text("td[data-label=Status] .badge").await, "ok");

    delete_guarded_by_dependencies(&b, &s).await;
    for page in ["subscriptions", "runtimes", "users"] {
        b.goto(&format!("{}/{page}", s.url)).await;
        assert!(b.text("h1").await.eq_ignore_ascii_case(page));
        checked(&b, page).await;
    }
    b.goto(&format!("{}/gitops", s.url)).await;
    assert_eq!(b.text("h1").await, "GitOps repository");
    checked(&b, "gitops").await;
    for (path, heading) in [("/images", "Images"), ("/resources", "Image resources")] {
        b.goto(&format!("{}{path}", s.url)).await;
        assert_eq!(b.text("h1").await, heading);
        checked(&b, path.trim_start_matches('/')).await;
    }
    phone_width(&b, &s).await;
    b.close().await;
    s.stop().await;
}

/// The dialog lists the project that uses the integration; once released, `No dependency`,
/// `Yes`, and the row is gone.
async fn delete_guarded_by_dependencies(b: &Browser, s: &TestServer) {
    let yml = "integrations:\n  hub:\n    - integrationName: local-ecr\n      type: ecr\n";
    let r = s
        .admin(
            Method::POST,
            "/api/v1/ci/resolve",
            Some(json!({"project": "acme/web", "branch": "master", "shippable_yml": yml})),
        )
        .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    b.goto(&format!("{}/integrations", s.url)).await;
    b.click("a[aria-label='Delete local-ecr']").await;
    let dialog = b.wait_for_text("#dialog", "acme/web").await;
    assert!(dialog.contains("cannot be deleted"), "{dialog}");
    assert!(!dialog.contains("Yes"));
    checked(b, "delete-dialog-blocked").await;
    for _ in 0..4 {
        b.tab().await;
        assert!(
            b.focus_is_inside("#dialog").await,
            "focus stays in the dialog"
        );
    }
    b.goto(&format!("{}/projects", s.url)).await;
    checked(b, "projects").await;
    b.click("button[aria-label='Release dependencies acme/web']")
        .await;
    // The answer lands on the same page: wait for its notice, not for the path.
    b.wait_for_path("/projects?done=").await;
    b.goto(&format!("{}/integrations", s.url)).await;
    b.click("a[aria-label='Delete local-ecr']").await;
    b.wait_for_text("#dialog", "No dependency").await;
    checked(b, "delete-dialog").await;
    b.click("#dialog button.danger").await;
    b.wait_for_path("/integrations?done=").await;
    assert!(
        b.text(".notice")
            .await
            .contains("Deleted integration local-ecr")
    );
    assert_eq!(b.count("tr#row-local-ecr").await, 0);
}

async fn phone_width(b: &Browser, s: &TestServer) {
    b.client.set_window_size(390, 844).await.unwrap();
    for (path, name) in [
        ("/integrations", "integrations-phone"),
        ("/integrations/new?type=ecr", "integration-form-phone"),
        ("/subscriptions", "subscriptions-phone"),
    ] {
        b.goto(&format!("{}{path}", s.url)).await;
        assert!(
            !b.scrolls_sideways().await,
            "{path} scrolls sideways at 390 px"
        );
        checked(b, name).await;
    }
    b.client.set_window_size(1280, 800).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_member_sees_only_its_integrations_and_no_edit_controls() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let dir = TempDir::new("ui-member");
    let s = TestServer::start(options(&dir.0)).await;
    for sub in ["acme", "globex"] {
        s.admin(
            Method::POST,
            "/api/v1/subscriptions",
            Some(json!({"name": sub})),
        )
        .await;
        s.admin(
            Method::POST,
            "/api/v1/integrations",
            Some(json!({"name": format!("{sub}-registry"), "type": "ecr",
                        "auth": {"mode": "ambient"}, "subscriptions": [sub]})),
        )
        .await;
    }
    let r = s
        .admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"subscription": "acme", "description": "ui"})),
        )
        .await;
    let token = r.1["token"].as_str().unwrap().to_owned();

    b.goto(&format!("{}/login", s.url)).await;
    b.fill("#token", "brt_000000_wrong").await;
    b.click("form.stack button[type=submit]").await;
    b.wait_for_text("#login-error", "not valid").await;
    b.fill("#token", &token).await;
    b.click("form.stack button[type=submit]").await;
    b.wait_for_path("/integrations").await;
    assert_eq!(b.count("tbody tr").await, 1);
    assert!(b.text("tbody").await.contains("acme-registry"));
    let html = b.source().await;
    assert!(!html.contains("globex-registry"));
    assert_eq!(b.count("a.button.primary").await, 0, "no Add integration");
    assert_eq!(
        b.count("a[href$='/edit'], a[data-dialog]").await,
        0,
        "no edit controls"
    );
    checked(&b, "integrations-member").await;

    for path in [
        "/integrations/globex-registry/edit",
        "/integrations/globex-registry/delete",
        "/integrations/acme-registry/edit",
    ] {
        b.goto(&format!("{}{path}", s.url)).await;
        let body = b.text("main").await;
        assert!(
            body.contains("Not allowed") || body.contains("Not found"),
            "{path}: {body}"
        );
        assert!(
            !b.source().await.contains("ambient"),
            "{path} shows nothing of it"
        );
    }
    b.goto(&format!("{}/integrations?name=globex", s.url)).await;
    assert!(b.text(".empty").await.contains("No integration matches"));
    b.close().await;
    s.stop().await;
}
