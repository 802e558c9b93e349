//! The web pages over plain HTTP, without a browser: security headers, sessions that sign-out
//! revokes on the server, CSRF on every state-changing form, the sign-in throttle, a failed
//! save that keeps the typed values but never the secret, and the policy applied to forms.

mod common;

use berth_testkit::TempDir;
use common::{TestServer, options};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";

/// A client that keeps no cookies by itself and never follows redirects: each test sees every
/// answer as it is.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn cookie_of(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

/// A urlencoded form body, as a browser sends it.
fn form_body(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

const FORM: &str = "application/x-www-form-urlencoded";

fn hidden_csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

/// A browser's view of one server: its session cookie once signed in.
struct Visitor {
    url: String,
    http: reqwest::Client,
    session: Option<String>,
}

impl Visitor {
    fn new(s: &TestServer) -> Visitor {
        Visitor {
            url: s.url.clone(),
            http: client(),
            session: None,
        }
    }

    fn cookie(&self) -> String {
        self.session
            .as_ref()
            .map(|s| format!("berth_session={s}"))
            .unwrap_or_default()
    }

    async fn get(&self, path: &str) -> (StatusCode, HeaderMap, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .header("cookie", self.cookie())
            .send()
            .await
            .unwrap();
        (r.status(), r.headers().clone(), r.text().await.unwrap())
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, HeaderMap, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("cookie", self.cookie())
            .header("content-type", FORM)
            .body(form_body(form))
            .send()
            .await
            .unwrap();
        (r.status(), r.headers().clone(), r.text().await.unwrap())
    }

    /// Signs in with the sign-in form's fields; answers the status of the form's answer.
    async fn sign_in(&mut self, fields: &[(&str, &str)]) -> StatusCode {
        let r = self
            .http
            .get(format!("{}/login", self.url))
            .send()
            .await
            .unwrap();
        let guard = cookie_of(r.headers(), "berth_login").expect("a sign-in cookie");
        let csrf = hidden_csrf(&r.text().await.unwrap());
        assert_eq!(csrf, guard, "the form carries its double-submit value");
        let mut form = vec![("csrf", csrf.as_str()), ("next", "/integrations")];
        form.extend_from_slice(fields);
        let r = self
            .http
            .post(format!("{}/login", self.url))
            .header("cookie", format!("berth_login={guard}"))
            .header("content-type", FORM)
            .body(form_body(&form))
            .send()
            .await
            .unwrap();
        if let Some(session) = cookie_of(r.headers(), "berth_session") {
            self.session = Some(session);
        }
        r.status()
    }

    /// The CSRF token of the signed-in session, as a page carries it.
    async fn csrf(&self) -> String {
        hidden_csrf(&self.get("/integrations").await.2)
    }
}

async fn server_with_user(tag: &str) -> (TempDir, TestServer) {
    let dir = TempDir::new(tag);
    let s = TestServer::start(options(&dir.0)).await;
    let r = s
        .admin(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": "ada", "password": PASSWORD, "admin": true})),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    (dir, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_carries_the_security_headers_and_sessions_end_on_sign_out() {
    let (_dir, s) = server_with_user("pages-headers").await;
    let mut v = Visitor::new(&s);
    let (status, headers, _) = v.get("/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/login");
    let (_, headers, _) = v.get("/integrations").await;
    assert!(
        headers[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/login?next=")
    );
    for path in [
        "/login",
        "/assets/berth.css",
        "/assets/berth.js",
        "/integrations",
    ] {
        let (_, h, _) = v.get(path).await;
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
    let login = v.get("/login").await;
    let cookie = login.1[SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(!login.2.contains("<script>") && !login.2.contains("style="));

    assert_eq!(
        v.sign_in(&[("name", "ada"), ("password", PASSWORD)]).await,
        StatusCode::SEE_OTHER
    );
    let (status, _, html) = v.get("/integrations").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Add integration"));
    let csrf = v.csrf().await;
    let (status, _, _) = v.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // The old cookie is dead on the server, not only forgotten by the browser.
    let (status, headers, _) = v.get("/integrations").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(headers[LOCATION].to_str().unwrap().starts_with("/login"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changing_forms_need_the_sessions_csrf_token() {
    let (_dir, s) = server_with_user("pages-csrf").await;
    let mut v = Visitor::new(&s);
    v.sign_in(&[("name", "ada"), ("password", PASSWORD)]).await;
    let form = [("name", "acme"), ("csrf", "forged")];
    let (status, _, html) = v.post("/subscriptions", &form).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("nothing was changed"));
    let (status, _, _) = v.post("/subscriptions", &[("name", "acme")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let r = s.admin(Method::GET, "/api/v1/subscriptions", None).await;
    assert_eq!(r.1["items"], json!([]), "nothing was created");
    // Another session's token does not fit this one.
    let mut other = Visitor::new(&s);
    other
        .sign_in(&[("name", "ada"), ("password", PASSWORD)])
        .await;
    let foreign = other.csrf().await;
    let (status, _, _) = v
        .post("/subscriptions", &[("name", "acme"), ("csrf", &foreign)])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let csrf = v.csrf().await;
    let (status, _, _) = v
        .post("/subscriptions", &[("name", "acme"), ("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let r = s.admin(Method::GET, "/api/v1/subscriptions", None).await;
    assert_eq!(r.1["items"][0]["name"], "acme");
    // The sign-in form itself needs its double-submit value.
    let r = client()
        .post(format!("{}/login", s.url))
        .header("content-type", FORM)
        .body(form_body(&[("name", "ada"), ("password", PASSWORD)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_throttled_per_name() {
    let (_dir, s) = server_with_user("pages-throttle").await;
    let mut v = Visitor::new(&s);
    for _ in 0..4 {
        let status = v
            .sign_in(&[("name", "ada"), ("password", "wrong password here")])
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let fifth = v
        .sign_in(&[("name", "ADA"), ("password", "wrong password here")])
        .await;
    assert_eq!(fifth, StatusCode::TOO_MANY_REQUESTS);
    // Now even the right password waits; another name does not.
    let right = v.sign_in(&[("name", "ada"), ("password", PASSWORD)]).await;
    assert_eq!(right, StatusCode::TOO_MANY_REQUESTS);
    assert!(v.session.is_none());
    let other = v
        .sign_in(&[("name", "bob"), ("password", "wrong password here")])
        .await;
    assert_eq!(other, StatusCode::UNAUTHORIZED);
    let token = s.admin.clone();
    assert_eq!(v.sign_in(&[("token", &token)]).await, StatusCode::SEE_OTHER);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_save_keeps_the_typed_values_but_never_the_secret() {
    let (_dir, s) = server_with_user("pages-refused").await;
    let mut v = Visitor::new(&s);
    v.sign_in(&[("name", "ada"), ("password", PASSWORD)]).await;
    let csrf = v.csrf().await;
    // Generated per run (AKIAPAGES…), so nothing key-shaped is committed.
    let keys = berth_testkit::random_keys("PAGES");
    let (key_id, secret) = (keys.id.as_str(), keys.secret.as_str());
    let masked = format!("****{}", &key_id[key_id.len() - 4..]);
    let form = [
        ("csrf", csrf.as_str()),
        ("action", "save"),
        ("name", "ecr-prod"),
        ("auth_mode", "access_keys"),
        ("access_key_id", key_id),
        ("secret_access_key", secret),
        ("region", "not a region"),
        ("endpoint", "http://127.0.0.1:5080"),
        ("runtimes_mode", "none"),
    ];
    let (status, _, html) = v.post("/integrations/new?type=ecr", &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("id=\"region-error\""),
        "the error is beside its field"
    );
    assert!(html.contains("not an AWS region code"));
    assert!(html.contains("value=\"ecr-prod\""), "typed values are kept");
    assert!(!html.contains(secret) && !html.contains(key_id));
    let r = s.admin(Method::GET, "/api/v1/integrations", None).await;
    assert_eq!(r.1["items"], json!([]), "nothing was saved");

    // Without the script, Test connection answers the whole form with the report in it.
    let mut test = form.to_vec();
    test[1] = ("action", "test");
    test[6] = ("region", "eu-west-1");
    test[7] = ("endpoint", "http://127.0.0.1:1");
    let (status, _, html) = v.post("/integrations/new?type=ecr", &test).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Test connection: failed") && html.contains("endpoint_unreachable"));
    assert!(html.contains("value=\"ecr-prod\"") && !html.contains(secret));
    let r = s.admin(Method::GET, "/api/v1/integrations", None).await;
    assert_eq!(r.1["items"], json!([]), "a test saves nothing");

    // Saved, then edited with the secret left blank: the secret is kept.
    let mut good = form.to_vec();
    good[6] = ("region", "eu-west-1");
    let (status, headers, _) = v.post("/integrations/new?type=ecr", &good).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{headers:?}");
    let edit = [
        ("csrf", csrf.as_str()),
        ("action", "save"),
        ("name", "ecr-prod"),
        ("auth_mode", "access_keys"),
        ("region", "eu-west-2"),
        ("runtimes_mode", "all"),
    ];
    let (status, _, _) = v.post("/integrations/ecr-prod/edit", &edit).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let r = s
        .admin(Method::GET, "/api/v1/integrations/ecr-prod", None)
        .await;
    assert_eq!(r.1["region"], "eu-west-2");
    assert_eq!(r.1["auth"]["secret_access_key_set"], true);
    assert_eq!(r.1["runtimes"], json!({"all": true}));
    let (_, _, page) = v.get("/integrations/ecr-prod/edit").await;
    assert!(page.contains(&masked) && !page.contains(secret));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_member_cannot_change_anything_through_the_pages() {
    let (_dir, s) = server_with_user("pages-member").await;
    s.admin(
        Method::POST,
        "/api/v1/subscriptions",
        Some(json!({"name": "acme"})),
    )
    .await;
    let r = s
        .admin(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": "bob", "password": PASSWORD, "subscription": "acme"})),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    let mut v = Visitor::new(&s);
    v.sign_in(&[("name", "bob"), ("password", PASSWORD)]).await;
    let csrf = v.csrf().await;
    let form = [
        ("csrf", csrf.as_str()),
        ("action", "save"),
        ("name", "x"),
        ("auth_mode", "ambient"),
    ];
    let (status, _, _) = v.post("/integrations/new?type=ecr", &form).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = v
        .post("/subscriptions", &[("name", "evil"), ("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "refused back onto the page");
    let (_, _, html) = v.get("/subscriptions?error=x").await;
    assert!(!html.contains("Add subscription"));
    let r = s.admin(Method::GET, "/api/v1/subscriptions", None).await;
    assert_eq!(r.1["items"].as_array().unwrap().len(), 1, "{}", r.1);
    let (status, _, _) = v.get("/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = v.get("/gitops").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    s.stop().await;
}

/// The link with `rel` (or text) `label` in a page, unescaped.
fn link(html: &str, label: &str) -> Option<String> {
    let end = html.find(label)?;
    let start = html[..end].rfind("href=\"")? + 6;
    Some(
        html[start..]
            .split('"')
            .next()?
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_counts_and_pages_forward_and_back() {
    let (_dir, s) = server_with_user("pages-paging").await;
    for i in 0..120 {
        let body =
            json!({"name": format!("ecr-{i:03}"), "type": "ecr", "auth": {"mode": "ambient"}});
        let r = s
            .admin(Method::POST, "/api/v1/integrations", Some(body))
            .await;
        assert_eq!(r.0, StatusCode::CREATED);
    }
    let mut v = Visitor::new(&s);
    v.sign_in(&[("name", "ada"), ("password", PASSWORD)]).await;
    let (_, _, first) = v.get("/integrations?type=ecr").await;
    assert!(first.contains("1–50 of 120"));
    assert!(link(&first, "Previous page").is_none() && link(&first, "First page").is_none());
    let next = link(&first, ">Next page").expect("a next page");
    assert!(
        next.contains("type=ecr") && next.contains("cursor="),
        "{next}"
    );
    let (_, _, second) = v.get(&next).await;
    assert!(second.contains("51–100 of 120") && second.contains("ecr-050"));
    assert!(
        link(&second, ">Previous page").is_none(),
        "its previous page is the first"
    );
    let (_, _, third) = v.get(&link(&second, ">Next page").unwrap()).await;
    assert!(third.contains("101–120 of 120") && third.contains("ecr-119"));
    assert!(link(&third, ">Next page").is_none());
    let (_, _, back) = v.get(&link(&third, ">Previous page").unwrap()).await;
    assert!(
        back.contains("51–100 of 120") && back.contains("ecr-050") && !back.contains("ecr-049")
    );
    let (_, _, filtered) = v.get("/integrations?name=ecr-11").await;
    assert!(filtered.contains("1–10 of 10"), "ecr-110 to ecr-119");
    s.stop().await;
}

/// The GitOps page: a refused repository is shown with the reason and nothing saved; a real
/// one shows its settings, each integration's sync badge (also in the list's Sync column) and
/// the diff, and the password never reaches the HTML. Members may not see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gitops_page_configures_the_repository_and_shows_sync() {
    let (dir, s) = server_with_user("pages-gitops").await;
    let bare = dir.0.join("shared.git");
    let init = std::process::Command::new("git")
        .args(["init", "--quiet", "--bare", "-b", "main"])
        .arg(&bare)
        .status()
        .unwrap();
    assert!(init.success());
    let mut v = Visitor::new(&s);
    v.sign_in(&[("name", "ada"), ("password", PASSWORD)]).await;
    let (status, _, html) = v.get("/gitops").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No repository is configured yet"), "{html}");
    let csrf = v.csrf().await;
    let missing = dir.0.join("missing.git").display().to_string();
    let (status, headers, _) = v
        .post("/gitops", &[("csrf", &csrf), ("repo", &missing)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, html) = v.get(headers["location"].to_str().unwrap()).await;
    assert!(
        html.contains("role=\"alert\"") && html.contains("missing.git"),
        "{html}"
    );
    assert!(
        html.contains("No repository is configured yet"),
        "nothing was saved"
    );

    let password = "page-token-value-1234";
    let repo = bare.display().to_string();
    let form = [
        ("csrf", csrf.as_str()),
        ("repo", &repo),
        ("username", "ci"),
        ("password", password),
    ];
    let (status, headers, _) = v.post("/gitops", &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, html) = v.get(headers["location"].to_str().unwrap()).await;
    assert!(html.contains("Saved: Berth pushes to"), "{html}");
    assert!(
        html.contains("set (sealed; never shown)") && !html.contains(password),
        "{html}"
    );

    s.share_ambient("edge", "ecr-edge").await;
    let mut html = String::new();
    for _ in 0..100 {
        html = v.get("/gitops").await.2;
        if html.contains("badge synced") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        html.contains("ecr-edge") && html.contains("badge synced"),
        "{html}"
    );
    assert!(
        html.contains("resources/runtimes/edge/ecr-edge.configmap.yaml"),
        "{html}"
    );
    assert!(
        html.contains("None: the branch head holds exactly what Berth writes"),
        "{html}"
    );
    let (_, _, list) = v.get("/integrations").await;
    assert!(
        list.contains("data-label=\"Sync\"") && list.contains("badge synced"),
        "{list}"
    );
    s.stop().await;
}

/// The Images page lists reported digests and filters them; a digest's page links its commit,
/// pull request, issue and the resource version it became; the Image resources page shows a
/// project's resources with their versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_images_and_resources_pages_show_reports_and_versions() {
    use common::images::{password, push, setup};
    let (_dir, s) = server_with_user("pages-images").await;
    let ecr = berth_testkit::LocalEcrFixture::seeded("pages-images-ecr").await;
    setup(&s, "local", &ecr.url, &ecr.demo_keys()).await;
    let pass = password(&s, "local").await;
    let host = ecr.url.trim_start_matches("http://").to_owned();
    let digest = push(&ecr.url, &pass, "app", "v1", "one").await;
    let r = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/images/reports",
            Some(
                serde_json::json!({"image": format!("{host}/app:v1"), "project": "acme/web",
                "git": {"commit": "feedbeef", "branch": "DEV-12-pages",
                        "pull_request_url": "https://github.com/acme/web/pull/3"},
                "issue_tracker_url": "https://jira.example.com/browse/"}),
            ),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    s.admin(
        reqwest::Method::PUT,
        "/api/v1/projects/acme/web/resources/appImage",
        Some(serde_json::json!({"integration": "local", "source_name": format!("{host}/app"), "version_name": "v1"})),
    )
    .await;
    s.admin(
        reqwest::Method::POST,
        "/api/v1/projects/acme/web/resources/appImage/versions",
        None,
    )
    .await;

    let mut v = Visitor::new(&s);
    v.sign_in(&[("name", "ada"), ("password", PASSWORD)]).await;
    let (status, _, html) = v.get("/images").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("href=\"/images/{digest}\"")),
        "{html}"
    );
    let (_, _, html) = v.get("/images?issue=DEV-99").await;
    assert!(html.contains("No image matches."), "the filter applies");
    let (_, _, html) = v.get("/images?issue=DEV-12").await;
    assert!(html.contains(&digest), "{html}");
    let (status, _, html) = v.get(&format!("/images/{digest}")).await;
    assert_eq!(status, StatusCode::OK);
    for needle in [
        "feedbeef",
        "href=\"https://github.com/acme/web/pull/3\"",
        "href=\"https://jira.example.com/browse/DEV-12\"",
        "appImage",
    ] {
        assert!(html.contains(needle), "{needle} in {html}");
    }
    let (status, _, html) = v.get("/images/sha256:nothex").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    let (status, _, html) = v.get("/resources?project=acme/web").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("appImage") && html.contains(&digest),
        "{html}"
    );
}
