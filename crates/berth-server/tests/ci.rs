//! `POST /api/v1/ci/resolve`: branch rules, the subscription check with Shippable's exact
//! message, region defaults, errors with line numbers, and the dependencies it records.

mod common;

use berth_testkit::TempDir;
use common::{TestServer, assert_error, options};
use reqwest::{Method, StatusCode};
use serde_json::json;

const YML: &str = r#"
language: go
integrations:
  hub:
    - integrationName: prod
      type: ecr
      region: us-west-2
      branches:
        only: [master, "v1.*"]
    - integrationName: dev
      type: ecr
      branches:
        except: [master]
  notifications:
    - integrationName: chat
      type: slack
"#;

#[tokio::test]
async fn resolve_applies_branch_rules_and_records_dependencies() {
    let dir = TempDir::new("ci");
    let s = TestServer::start(options(&dir.0)).await;
    for sub in ["acme", "globex"] {
        s.admin(
            Method::POST,
            "/api/v1/subscriptions",
            Some(json!({"name": sub})),
        )
        .await;
    }
    s.admin(
        Method::POST,
        "/api/v1/projects",
        Some(json!({"name": "acme/web", "subscription": "acme"})),
    )
    .await;
    for (name, sub, extra) in [
        ("prod", "acme", json!({"registry_id": "123456789012"})),
        ("dev", "acme", json!({"endpoint": "http://127.0.0.1:5080"})),
        ("other", "globex", json!({})),
    ] {
        let mut body = json!({"name": name, "type": "ecr", "auth": {"mode": "ambient"}, "subscriptions": [sub]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        assert_eq!(
            s.admin(Method::POST, "/api/v1/integrations", Some(body))
                .await
                .0,
            StatusCode::CREATED
        );
    }
    let acme = s
        .admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"subscription": "acme"})),
        )
        .await
        .1["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let globex = s
        .admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"subscription": "globex"})),
        )
        .await
        .1["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resolve = |token: String, body: serde_json::Value| {
        let s = &s;
        async move {
            s.call(Method::POST, "/api/v1/ci/resolve", Some(&token), Some(body))
                .await
        }
    };

    let (status, v) = resolve(
        acme.clone(),
        json!({"project": "acme/web", "branch": "master", "shippable_yml": YML}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["integrations"].as_array().unwrap().len(), 1);
    assert_eq!(v["integrations"][0]["integration"], "prod");
    assert_eq!(v["integrations"][0]["region"], "us-west-2");
    assert_eq!(
        v["integrations"][0]["registry"],
        "123456789012.dkr.ecr.us-west-2.amazonaws.com"
    );
    assert_eq!(v["skipped"][0]["integration"], "dev");
    assert!(
        v["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("except [master]")
    );
    assert_eq!(
        v["notes"].as_array().unwrap().len(),
        1,
        "notifications are noted, not used"
    );

    let (_, v) = resolve(
        acme.clone(),
        json!({"project": "acme/web", "branch": "feature/login", "shippable_yml": YML}),
    )
    .await;
    assert_eq!(v["integrations"][0]["integration"], "dev");
    assert_eq!(
        v["integrations"][0]["region"], "us-east-1",
        "Shippable's default when the entry names none"
    );
    assert_eq!(v["integrations"][0]["registry"], "127.0.0.1:5080");
    let (_, v) = resolve(
        acme.clone(),
        json!({"project": "acme/web", "tag": "v1.4.0", "shippable_yml": YML}),
    )
    .await;
    assert_eq!(
        v["integrations"].as_array().unwrap().len(),
        2,
        "release tags follow the rules too"
    );

    // Not assigned to the subscription: Shippable's message, word for word.
    let foreign = YML.replace("integrationName: dev", "integrationName: other");
    let r = resolve(
        acme.clone(),
        json!({"project": "acme/web", "branch": "feature/x", "shippable_yml": foreign}),
    )
    .await;
    assert_error(&r, 400, "invalid_field", Some("shippable_yml"));
    assert_eq!(
        r.1["error"]["message"],
        "shippable_yml: Integration name specified in yml does not match integrations present in Subscription settings: other"
    );
    assert_eq!(
        r.1["error"]["line"], 10,
        "the entry's line, beside the message"
    );
    let r = resolve(acme.clone(), json!({"project": "acme/web", "branch": "x", "shippable_yml": "integrations:\n  hub:\n    - type: ecr\n"})).await;
    assert_error(&r, 400, "invalid_field", Some("shippable_yml"));
    assert!(
        r.1["error"]["message"].as_str().unwrap().contains("line 3"),
        "{}",
        r.1
    );
    let r = resolve(
        acme.clone(),
        json!({"project": "acme/web", "shippable_yml": YML}),
    )
    .await;
    assert_error(&r, 400, "invalid_field", Some("branch"));
    // Another subscription's project answers exactly as a project that does not exist.
    let theirs = resolve(
        globex.clone(),
        json!({"project": "acme/web", "branch": "master", "shippable_yml": YML}),
    )
    .await;
    let absent = resolve(
        globex,
        json!({"project": "acme/none", "branch": "master", "shippable_yml": YML}),
    )
    .await;
    assert_error(&theirs, 400, "invalid_field", Some("project"));
    assert_eq!(
        theirs.1.to_string().replace("acme/web", "P"),
        absent.1.to_string().replace("acme/none", "P"),
        "'not yours' and 'absent' must be indistinguishable"
    );
    assert!(!theirs.1.to_string().contains("acme'"), "{}", theirs.1);

    // The resolutions recorded the project; delete is refused with the list.
    let (_, deps) = s
        .admin(Method::GET, "/api/v1/integrations/prod/dependencies", None)
        .await;
    assert_eq!(
        deps["dependencies"],
        json!([{"kind": "project", "name": "acme/web"}])
    );
    let r = s
        .admin(Method::DELETE, "/api/v1/integrations/prod", None)
        .await;
    assert_error(&r, 409, "in_use", None);
    assert_eq!(r.1["error"]["used_by"], json!(["project acme/web"]));
    let (_, deps) = s
        .admin(Method::GET, "/api/v1/integrations/other/dependencies", None)
        .await;
    assert_eq!(
        deps["dependencies"],
        json!([]),
        "a refused resolution records nothing"
    );
    // An entry that resolves before one that is refused is not recorded either.
    s.admin(
        Method::POST,
        "/api/v1/projects",
        Some(json!({"name": "acme/api", "subscription": "acme"})),
    )
    .await;
    let mixed = "integrations:\n  hub:\n    - integrationName: dev\n      type: ecr\n    - integrationName: other\n      type: ecr\n";
    let r = resolve(
        acme.clone(),
        json!({"project": "acme/api", "branch": "main", "shippable_yml": mixed}),
    )
    .await;
    assert_error(&r, 400, "invalid_field", Some("shippable_yml"));
    let (_, deps) = s
        .admin(Method::GET, "/api/v1/integrations/dev/dependencies", None)
        .await;
    assert!(!deps.to_string().contains("acme/api"), "{deps}");

    // Environments hold their integrations too, until they are deleted.
    let r = s
        .admin(
            Method::POST,
            "/api/v1/environments",
            Some(json!({"name": "staging", "subscription": "acme", "integrations": ["dev"]})),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    assert_eq!(r.1["integrations"], json!(["dev"]));
    let r = s
        .admin(
            Method::POST,
            "/api/v1/environments",
            Some(json!({"name": "bad", "subscription": "acme", "integrations": ["other"]})),
        )
        .await;
    assert_error(&r, 400, "invalid_field", Some("integrations[0]"));
    let r = s
        .admin(Method::DELETE, "/api/v1/integrations/dev", None)
        .await;
    assert_error(&r, 409, "in_use", None);
    assert!(
        r.1["error"]["used_by"]
            .as_array()
            .unwrap()
            .contains(&json!("environment staging")),
        "{}",
        r.1
    );
    assert_eq!(
        s.admin(Method::DELETE, "/api/v1/environments/staging", None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (_, deps) = s
        .admin(Method::GET, "/api/v1/integrations/dev/dependencies", None)
        .await;
    assert!(!deps.to_string().contains("staging"), "{deps}");
    s.stop().await;
}

#[tokio::test]
async fn pipeline_resources_give_the_job_its_environment() {
    let dir = TempDir::new("resources");
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
    let key_id = format!("AKIA{}", "RESOURCEKEY1");
    let secret = format!("resource-secret-{}", "x".repeat(20));
    let r = s
        .admin(
            Method::POST,
            "/api/v1/integrations",
            // The export switch: this test is about the environment's shape; sessions are
            // tested against the local ECR in crates/berth/tests/job_credentials.rs.
            Some(json!({"name": "ecr-prod", "type": "ecr", "region": "us-west-2", "subscriptions": ["acme"],
                "export_long_lived_keys": true,
                "auth": {"mode": "access_keys", "access_key_id": key_id, "secret_access_key": secret}})),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    let acme = s
        .admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"subscription": "acme"})),
        )
        .await
        .1["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let yml = r#"
resources:
  - name: my-image
    type: image
    integration: ecr-prod
    versionTemplate:
      sourceName: 123456789012.dkr.ecr.us-west-2.amazonaws.com/app
  - name: my-key-1
    type: integration
    integration: ecr-prod
  - name: cli
    type: cliConfig
    integration: ecr-prod
    pointer:
      region: eu-west-1
"#;
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/ci/resources",
            Some(&acme),
            Some(json!({"project": "acme/web", "shippable_yml": yml})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let env = &v["env"];
    assert_eq!(
        env["MYIMAGE_SOURCENAME"],
        "123456789012.dkr.ecr.us-west-2.amazonaws.com/app"
    );
    assert_eq!(env["MYIMAGE_VERSIONNAME"], "latest");
    assert_eq!(env["MYKEY1_INTEGRATION_AWS_REGION"], "us-west-2");
    assert_eq!(env["CLI_INTEGRATION_AWS_REGION"], "eu-west-1");
    assert!(
        env.get("MYKEY1_INTEGRATION_AWS_SECRET_ACCESS_KEY")
            .is_none(),
        "no secrets unless asked"
    );
    assert!(!v.to_string().contains(&secret));

    let (_, v) = s
        .call(Method::POST, "/api/v1/ci/resources", Some(&acme), Some(json!({"project": "acme/web", "shippable_yml": yml, "resources": ["my-key-1"], "with_secrets": true})))
        .await;
    assert_eq!(
        v["env"]["MYKEY1_INTEGRATION_AWS_ACCESS_KEY_ID"],
        key_id.as_str()
    );
    assert_eq!(
        v["env"]["MYKEY1_INTEGRATION_AWS_SECRET_ACCESS_KEY"],
        secret.as_str()
    );
    assert!(
        v["env"].get("MYIMAGE_SOURCENAME").is_none(),
        "only the resources asked for"
    );
    let r = s
        .call(
            Method::POST,
            "/api/v1/ci/resources",
            Some(&acme),
            Some(json!({"project": "acme/web", "shippable_yml": yml, "resources": ["nope"]})),
        )
        .await;
    assert_error(&r, 400, "invalid_field", Some("resources[0]"));

    let (_, deps) = s
        .admin(
            Method::GET,
            "/api/v1/integrations/ecr-prod/dependencies",
            None,
        )
        .await;
    let names: Vec<&str> = deps["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["acme/web:cli", "acme/web:my-image", "acme/web:my-key-1"]
    );
    assert!(
        deps["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["kind"] == "pipeline_resource")
    );
    s.stop().await;
}

/// Renames a table of the server's SQLite database under it: every query on it then fails as a
/// broken or unreachable database would.
async fn break_table(dir: &std::path::Path, table: &str) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("berth.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE {table} RENAME TO {table}_gone"
    )))
    .execute(&mut c)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_failing_store_is_a_503_never_a_yml_or_project_mistake() {
    let dir = TempDir::new("ci-store-down");
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
    for name in ["prod", "dev"] {
        let r = s
            .admin(
                Method::POST,
                "/api/v1/integrations",
                Some(json!({"name": name, "type": "ecr", "auth": {"mode": "ambient"}, "subscriptions": ["acme"]})),
            )
            .await;
        assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    }
    let body = json!({"project": "acme/web", "branch": "master", "shippable_yml": YML});
    let r = s
        .admin(Method::POST, "/api/v1/ci/resolve", Some(body.clone()))
        .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    for table in ["integrations", "projects"] {
        break_table(&dir.0, table).await;
        for path in ["/api/v1/ci/resolve", "/api/v1/ci/resources"] {
            let body = match path {
                "/api/v1/ci/resolve" => body.clone(),
                _ => {
                    json!({"project": "acme/web", "shippable_yml": "resources:\n  - name: k\n    type: integration\n    integration: prod\n"})
                }
            };
            let r = s.admin(Method::POST, path, Some(body)).await;
            assert_error(&r, 503, "store_unavailable", None);
            let text = r.1.to_string();
            assert!(
                !text.contains("does not exist") && !text.contains("does not match"),
                "{table} gone, {path}: {text}"
            );
            assert!(
                r.1["error"]["hint"].as_str().unwrap().contains("retry"),
                "{text}"
            );
        }
    }
    s.stop().await;
}

fn resources_yml(from: usize, count: usize) -> String {
    let mut yml = String::from("resources:\n");
    for i in from..from + count {
        yml.push_str(&format!(
            "  - name: r{i}\n    type: image\n    integration: prod\n    versionTemplate:\n      sourceName: example.com/app\n"
        ));
    }
    yml
}

#[tokio::test]
async fn a_read_only_token_cannot_grow_dependencies_without_bound() {
    let dir = TempDir::new("ci-bounds");
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
            "/api/v1/integrations",
            Some(json!({"name": "prod", "type": "ecr", "auth": {"mode": "ambient"}, "subscriptions": ["acme"]})),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    let acme = s
        .admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"subscription": "acme"})),
        )
        .await
        .1["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let post = |yml: String| {
        let acme = acme.clone();
        let s = &s;
        async move {
            s.call(
                Method::POST,
                "/api/v1/ci/resources",
                Some(&acme),
                Some(json!({"project": "acme/web", "shippable_yml": yml})),
            )
            .await
        }
    };
    // One request names at most 100 entries.
    let r = post(resources_yml(0, 101)).await;
    assert_error(&r, 400, "invalid_field", Some("shippable_yml"));
    assert!(
        r.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 100"),
        "{}",
        r.1
    );
    // A project holds at most 500: the sixth hundred is refused, naming the way out.
    for batch in 0..5 {
        let r = post(resources_yml(batch * 100, 100)).await;
        assert_eq!(r.0, StatusCode::OK, "batch {batch}: {}", r.1);
    }
    let r = post(resources_yml(500, 100)).await;
    assert_error(&r, 409, "dependency_limit", None);
    assert!(
        r.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("berth project release-dependencies acme/web"),
        "{}",
        r.1
    );
    // Only an admin releases them; then the integration can be deleted.
    let r = s
        .call(
            Method::POST,
            "/api/v1/projects/acme/web/release-dependencies",
            Some(&acme),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    let r = s
        .admin(Method::DELETE, "/api/v1/integrations/prod", None)
        .await;
    assert_error(&r, 409, "in_use", None);
    let r = s
        .admin(
            Method::POST,
            "/api/v1/projects/acme/web/release-dependencies",
            Some(json!({})),
        )
        .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    assert_eq!(r.1["released"], 500);
    let r = s
        .admin(Method::GET, "/api/v1/projects/acme/web", None)
        .await;
    assert_eq!(r.0, StatusCode::OK, "the project stays: {}", r.1);
    let r = s
        .admin(Method::DELETE, "/api/v1/integrations/prod", None)
        .await;
    assert_eq!(r.0, StatusCode::NO_CONTENT, "{}", r.1);
    s.stop().await;
}
