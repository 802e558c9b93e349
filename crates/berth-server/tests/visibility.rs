//! The one authorization policy, walked over every endpoint with a subscription token: for each
//! name a request can carry, a record that exists in another subscription and a record that does
//! not exist at all get byte-identical answers (the names themselves aside), so a token cannot
//! probe what other tenants have.

mod common;

use berth_testkit::TempDir;
use common::{TestServer, options};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A request template: `{}` in the path, `%N%` in the body, stands for the probed name.
struct Probe {
    method: Method,
    path: &'static str,
    body: Option<&'static str>,
    /// The name of a record another subscription owns, and one that exists nowhere.
    theirs: &'static str,
    nobody: &'static str,
}

const YML: &str = "integrations:\\n  hub:\\n    - integrationName: theirs\\n      type: ecr\\n";

fn probes() -> Vec<Probe> {
    let p = |method: Method, path, body, theirs, nobody| Probe {
        method,
        path,
        body,
        theirs,
        nobody,
    };
    vec![
        p(
            Method::GET,
            "/api/v1/integrations/{}",
            None,
            "theirs",
            "nothing",
        ),
        p(
            Method::PATCH,
            "/api/v1/integrations/{}",
            Some(r#"{"region": "eu-west-1"}"#),
            "theirs",
            "nothing",
        ),
        p(
            Method::DELETE,
            "/api/v1/integrations/{}",
            None,
            "theirs",
            "nothing",
        ),
        p(
            Method::POST,
            "/api/v1/integrations/{}/credentials",
            Some("{}"),
            "theirs",
            "nothing",
        ),
        p(
            Method::POST,
            "/api/v1/integrations/{}/test",
            Some("{}"),
            "theirs",
            "nothing",
        ),
        p(
            Method::GET,
            "/api/v1/integrations/{}/dependencies",
            None,
            "theirs",
            "nothing",
        ),
        p(
            Method::GET,
            "/api/v1/integrations?subscription={}",
            None,
            "other",
            "nobody",
        ),
        p(
            Method::POST,
            "/api/v1/repositories",
            Some(r#"{"integration": "%N%", "repository": "team/app"}"#),
            "theirs",
            "nothing",
        ),
        p(
            Method::POST,
            "/api/v1/registry-credentials",
            Some(r#"{"host": "%N%"}"#),
            "111111111111.dkr.ecr.us-east-1.amazonaws.com",
            "222222222222.dkr.ecr.us-east-1.amazonaws.com",
        ),
        p(
            Method::POST,
            "/api/v1/ci/resolve",
            Some(r#"{"project": "%N%", "branch": "main", "shippable_yml": "YML"}"#),
            "other/web",
            "other/none",
        ),
        p(
            Method::POST,
            "/api/v1/ci/resources",
            Some(r#"{"project": "%N%", "shippable_yml": "resources: []\n"}"#),
            "other/web",
            "other/none",
        ),
        p(
            Method::GET,
            "/api/v1/projects/{}",
            None,
            "other/web",
            "other/none",
        ),
        p(
            Method::DELETE,
            "/api/v1/projects/{}",
            None,
            "other/web",
            "other/none",
        ),
        p(
            Method::GET,
            "/api/v1/images/{}",
            None,
            "sha256:1111111111111111111111111111111111111111111111111111111111111111",
            "sha256:2222222222222222222222222222222222222222222222222222222222222222",
        ),
        p(
            Method::GET,
            "/api/v1/projects/{}/resources",
            None,
            "other/web",
            "other/none",
        ),
        p(
            Method::GET,
            "/api/v1/projects/{}/resources/app",
            None,
            "other/web",
            "other/none",
        ),
        p(
            Method::PUT,
            "/api/v1/projects/{}/resources/app",
            Some(
                r#"{"integration": "theirs", "source_name": "111111111111.dkr.ecr.us-east-1.amazonaws.com/app"}"#,
            ),
            "other/web",
            "other/none",
        ),
        p(
            Method::DELETE,
            "/api/v1/projects/{}/resources/app",
            None,
            "other/web",
            "other/none",
        ),
        p(
            Method::GET,
            "/api/v1/projects/{}/resources/app/versions",
            None,
            "other/web",
            "other/none",
        ),
        p(
            Method::POST,
            "/api/v1/projects/{}/resources/app/versions",
            Some("{}"),
            "other/web",
            "other/none",
        ),
        p(
            Method::POST,
            "/api/v1/projects/{}/resources/app/event-secret",
            Some("{}"),
            "other/web",
            "other/none",
        ),
        p(
            Method::GET,
            "/api/v1/projects/{}/resources/app/triggers",
            None,
            "other/web",
            "other/none",
        ),
        p(
            Method::POST,
            "/api/v1/projects/{}/resources/app/triggers",
            Some(r#"{"url": "http://127.0.0.1:9/hook"}"#),
            "other/web",
            "other/none",
        ),
        p(
            Method::DELETE,
            "/api/v1/projects/{}/resources/app/triggers/t1",
            None,
            "other/web",
            "other/none",
        ),
        p(
            Method::POST,
            "/api/v1/resources/{}/app/events",
            Some("{}"),
            "other/web",
            "other/none",
        ),
        p(
            Method::POST,
            "/api/v1/projects/{}/release-dependencies",
            Some("{}"),
            "other/web",
            "other/none",
        ),
        p(
            Method::GET,
            "/api/v1/projects?subscription={}",
            None,
            "other",
            "nobody",
        ),
        p(
            Method::GET,
            "/api/v1/subscriptions/{}",
            None,
            "other",
            "nobody",
        ),
        p(
            Method::DELETE,
            "/api/v1/subscriptions/{}",
            None,
            "other",
            "nobody",
        ),
        p(
            Method::GET,
            "/api/v1/environments?subscription={}",
            None,
            "other",
            "nobody",
        ),
        p(
            Method::DELETE,
            "/api/v1/environments/{}",
            None,
            "their-env",
            "no-env",
        ),
        p(
            Method::GET,
            "/api/v1/runtimes/{}",
            None,
            "their-cluster",
            "no-cluster",
        ),
        p(
            Method::DELETE,
            "/api/v1/runtimes/{}",
            None,
            "their-cluster",
            "no-cluster",
        ),
        p(
            Method::PUT,
            "/api/v1/runtimes/{}/namespace",
            Some(r#"{"namespace": "apps"}"#),
            "their-cluster",
            "no-cluster",
        ),
        p(
            Method::PUT,
            "/api/v1/runtimes/{}/cluster-role",
            Some(r#"{"cluster_role_arn": "arn:aws:iam::111122223333:role/cluster"}"#),
            "their-cluster",
            "no-cluster",
        ),
        p(
            Method::PUT,
            "/api/v1/runtimes/{}/sealing-cert",
            Some(r#"{"sealing_cert": "not a certificate"}"#),
            "their-cluster",
            "no-cluster",
        ),
        p(
            Method::DELETE,
            "/api/v1/tokens/{}",
            None,
            "THEIR_TOKEN",
            "tok-absent",
        ),
        p(
            Method::DELETE,
            "/api/v1/users/{}",
            None,
            "their-user",
            "no-user",
        ),
        p(
            Method::PUT,
            "/api/v1/users/{}/password",
            Some(r#"{"password": "a long enough password"}"#),
            "their-user",
            "no-user",
        ),
    ]
}

/// Every route that takes a name (in its path or body) must have a probe here.
const NAMELESS: &[(&str, &str)] = &[
    ("/healthz", "get"),
    ("/api/v1/openapi.json", "get"),
    ("/api/v1/integrations", "post"),
    ("/api/v1/connection-tests", "post"),
    ("/api/v1/environments", "post"),
    ("/api/v1/gitops", "get"),
    ("/api/v1/gitops", "put"),
    ("/api/v1/gitops/status", "get"),
    ("/api/v1/gitops/diff", "get"),
    ("/api/v1/gitops/reconcile", "post"),
    ("/api/v1/gitops/import", "post"),
    ("/api/v1/subscriptions", "get"),
    ("/api/v1/subscriptions", "post"),
    ("/api/v1/projects", "post"),
    // Confined to the token's own projects (tests/images.rs shows another's are not listed).
    ("/api/v1/images", "get"),
    ("/api/v1/images/reports", "post"),
    ("/api/v1/runtimes", "get"),
    ("/api/v1/runtimes", "post"),
    ("/api/v1/tokens", "get"),
    ("/api/v1/tokens", "post"),
    ("/api/v1/users", "get"),
    ("/api/v1/users", "post"),
];

/// A documented path as the probes write it: `{}` for the probed name; under a project, the
/// project is probed and the resource is `app`.
fn template(path: &str) -> String {
    match path.contains("{project}") {
        true => path
            .replace("{project}", "{}")
            .replace("{name}", "app")
            .replace("{id}", "t1"),
        false => path
            .replace("{id}", "{}")
            .replace("{name}", "{}")
            .replace("{digest}", "{}"),
    }
}

async fn setup(s: &TestServer) -> (String, String) {
    for (path, body) in [
        ("/api/v1/subscriptions", json!({"name": "acme"})),
        ("/api/v1/subscriptions", json!({"name": "other"})),
        (
            "/api/v1/projects",
            json!({"name": "other/web", "subscription": "other"}),
        ),
        ("/api/v1/runtimes", json!({"name": "their-cluster"})),
        (
            "/api/v1/integrations",
            json!({"name": "theirs", "type": "ecr", "auth": {"mode": "ambient"}, "registry_id": "111111111111",
                   "subscriptions": ["other"]}),
        ),
        (
            "/api/v1/environments",
            json!({"name": "their-env", "subscription": "other", "integrations": ["theirs"]}),
        ),
        (
            "/api/v1/users",
            json!({"name": "their-user", "password": "a long enough password", "subscription": "other"}),
        ),
    ] {
        let r = s.admin(Method::POST, path, Some(body)).await;
        assert_eq!(r.0, StatusCode::CREATED, "{path}: {}", r.1);
    }
    let token = |sub: &'static str| async move {
        s.admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"subscription": sub})),
        )
        .await
        .1
    };
    let acme = token("acme").await["token"].as_str().unwrap().to_owned();
    let other_id = token("other").await["id"].as_str().unwrap().to_owned();
    (acme, other_id)
}

async fn ask(s: &TestServer, token: &str, probe: &Probe, name: &str) -> (StatusCode, String) {
    let path = probe.path.replace("{}", name);
    let body = probe.body.map(|b| {
        serde_json::from_str::<Value>(&b.replace("%N%", name).replace("YML", YML)).unwrap()
    });
    let (status, v) = s.call(probe.method.clone(), &path, Some(token), body).await;
    (status, v.to_string().replace(name, "NAME"))
}

#[tokio::test]
async fn another_tenants_records_answer_as_absent_ones_on_every_endpoint() {
    let dir = TempDir::new("visibility");
    let s = TestServer::start(options(&dir.0)).await;
    let (acme, other_token) = setup(&s).await;
    let probes = probes();
    let doc = serde_json::to_value(berth_server::openapi()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let covered = NAMELESS.contains(&(path.as_str(), method.as_str()))
                || probes.iter().any(|p| {
                    p.method.as_str().eq_ignore_ascii_case(method)
                        && p.path.split('?').next().unwrap() == template(path)
                });
            assert!(covered, "{method} {path} has no visibility probe");
        }
    }
    for probe in &probes {
        let theirs = probe.theirs.replace("THEIR_TOKEN", &other_token);
        let (status_theirs, theirs_body) = ask(&s, &acme, probe, &theirs).await;
        let (status_nobody, nobody_body) = ask(&s, &acme, probe, probe.nobody).await;
        assert_eq!(
            (status_theirs, &theirs_body),
            (status_nobody, &nobody_body),
            "{} {}: another subscription's record and an absent one must answer alike",
            probe.method,
            probe.path
        );
        assert!(
            !status_theirs.is_success(),
            "{} {} must not serve another subscription's record: {theirs_body}",
            probe.method,
            probe.path
        );
    }
    s.stop().await;
}
