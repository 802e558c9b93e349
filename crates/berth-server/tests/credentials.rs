//! Registry credentials and Test connection through the API, against the local ECR: who gets
//! credentials, that they open the registry, that the password is never logged, and what a
//! failing connection reports.

mod common;

use berth_testkit::{LocalEcrFixture, TempDir};
use common::{TestServer, assert_error, captured_logs, options};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_for_assigned_subscriptions_only_and_never_logged() {
    let logs = captured_logs();
    let dir = TempDir::new("creds");
    let ecr = LocalEcrFixture::seeded("server-ecr").await;
    let keys = ecr.demo_keys();
    let s = TestServer::start(options(&dir.0)).await;
    for sub in ["acme", "globex"] {
        s.admin(
            Method::POST,
            "/api/v1/subscriptions",
            Some(json!({"name": sub})),
        )
        .await;
    }
    let r = s
        .admin(
            Method::POST,
            "/api/v1/integrations",
            Some(json!({"name": "local", "type": "ecr", "endpoint": ecr.url,
                "auth": {"mode": "access_keys", "access_key_id": keys.id, "secret_access_key": keys.secret},
                "subscriptions": ["acme"]})),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);

    let (status, c) = s
        .admin(Method::POST, "/api/v1/integrations/local/credentials", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["username"], "AWS");
    assert_eq!(c["registry"], ecr.url.trim_start_matches("http://"));
    let password = c["password"].as_str().unwrap().to_owned();
    let r = reqwest::Client::new()
        .get(format!("{}/v2/", ecr.url))
        .basic_auth("AWS", Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let token = |sub: &str| {
        let sub = sub.to_owned();
        let s = &s;
        async move {
            s.admin(
                Method::POST,
                "/api/v1/tokens",
                Some(json!({"subscription": sub})),
            )
            .await
            .1["token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let acme = token("acme").await;
    let globex = token("globex").await;
    let (status, c2) = s
        .call(
            Method::POST,
            "/api/v1/integrations/local/credentials",
            Some(&acme),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c2["password"], password.as_str(), "served from the cache");
    assert_error(
        &s.call(
            Method::POST,
            "/api/v1/integrations/local/credentials",
            Some(&globex),
            None,
        )
        .await,
        // Not assigned to globex: for its token the integration does not exist.
        404,
        "not_found",
        None,
    );
    assert_error(
        &s.admin(Method::POST, "/api/v1/integrations/nope/credentials", None)
            .await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &s.admin(
            Method::POST,
            "/api/v1/integrations/local/credentials",
            Some(json!({"region": "mars"})),
        )
        .await,
        400,
        "invalid_field",
        Some("region"),
    );
    let (status, c3) = s
        .admin(
            Method::POST,
            "/api/v1/integrations/local/credentials",
            Some(json!({"region": "eu-west-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(
        c3["password"],
        password.as_str(),
        "another region, another token"
    );

    // Test connection: saved, and before saving.
    let (_, report) = s
        .admin(Method::POST, "/api/v1/integrations/local/test", None)
        .await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["steps"].as_array().unwrap().len(), 5);
    let (_, report) = s
        .admin(
            Method::POST,
            "/api/v1/connection-tests",
            Some(json!({"name": "draft", "type": "ecr", "endpoint": ecr.url,
                "auth": {"mode": "access_keys", "access_key_id": keys.id, "secret_access_key": "not-the-secret"}})),
        )
        .await;
    assert_eq!(report["ok"], false);
    assert_eq!(
        report["steps"][0]["status"], "ok",
        "the keys resolve; the signature fails later"
    );
    let failed = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["status"] == "failed")
        .unwrap()
        .clone();
    assert_eq!(failed["diagnosis"], "wrong_secret", "{report}");
    assert_error(
        &s.admin(Method::GET, "/api/v1/integrations/draft", None)
            .await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &s.call(
            Method::POST,
            "/api/v1/integrations/local/test",
            Some(&acme),
            None,
        )
        .await,
        403,
        "forbidden",
        None,
    );

    // An endpoint nobody listens on: a clear 502, quickly.
    s.admin(
        Method::PATCH,
        "/api/v1/integrations/local",
        Some(json!({"endpoint": "http://127.0.0.1:9"})),
    )
    .await;
    let r = s
        .admin(Method::POST, "/api/v1/integrations/local/credentials", None)
        .await;
    assert_error(&r, 502, "registry_credentials_failed", None);
    assert_eq!(r.1["error"]["diagnosis"], "endpoint_unreachable", "{}", r.1);

    s.stop().await;
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        logs.contains("registry credentials issued"),
        "issues are audited"
    );
    assert!(
        logs.contains("registry credentials refused"),
        "refusals are audited"
    );
    assert!(
        !logs.contains(&password),
        "the password never reaches the log"
    );
    assert!(
        !logs.contains(&keys.secret),
        "the secret never reaches the log"
    );
}

/// After the master key is rotated by another process under a running server, Test connection,
/// registry credentials and a job's credentials all give the same clear 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_that_no_longer_open_are_one_diagnosis_everywhere() {
    let dir = TempDir::new("stale-key");
    let ecr = LocalEcrFixture::seeded("server-ecr").await;
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
            "/api/v1/integrations",
            Some(json!({"name": "local", "type": "ecr", "endpoint": ecr.url,
                "auth": {"mode": "access_keys", "access_key_id": keys.id, "secret_access_key": keys.secret},
                "subscriptions": ["acme"]})),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    let (status, report) = s
        .admin(Method::POST, "/api/v1/integrations/local/test", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");

    berth_server::admin::rotate_master_key(&options(&dir.0), None)
        .await
        .unwrap();
    let yml = "resources:\n  - name: k\n    type: integration\n    integration: local\n";
    let calls = [
        ("/api/v1/integrations/local/test", json!({})),
        // Another region: not in the broker's cache, so the secrets must be opened.
        (
            "/api/v1/integrations/local/credentials",
            json!({"region": "eu-west-1"}),
        ),
        (
            "/api/v1/ci/resources",
            json!({"project": "acme/web", "shippable_yml": yml, "with_secrets": true}),
        ),
    ];
    let mut hints = Vec::new();
    for (path, body) in calls {
        let r = s.admin(Method::POST, path, Some(body)).await;
        assert_error(&r, 503, "secrets_unavailable", None);
        assert_eq!(
            r.1["error"]["diagnosis"], "secrets_unavailable",
            "{path}: {}",
            r.1
        );
        hints.push(r.1["error"]["hint"].clone());
    }
    assert!(hints.windows(2).all(|w| w[0] == w[1]), "{hints:?}");
    assert!(hints[0].as_str().unwrap().contains("restart Berth"));
    s.stop().await;
}

/// An unreachable endpoint is a diagnosis and a hint, not the SDK's error chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_reach_callers_as_diagnoses_not_dumps() {
    let dir = TempDir::new("unreachable");
    let s = TestServer::start(options(&dir.0)).await;
    s.admin(
        Method::POST,
        "/api/v1/subscriptions",
        Some(json!({"name": "acme"})),
    )
    .await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let r = s
        .admin(
            Method::POST,
            "/api/v1/integrations",
            Some(json!({"name": "gone", "type": "ecr", "endpoint": format!("http://127.0.0.1:{port}"),
                "auth": {"mode": "access_keys", "access_key_id": "AKIAFAKEGONE0042", "secret_access_key": "gone-secret-value"},
                "subscriptions": ["acme"]})),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    let sub = s
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
    let r = s
        .call(
            Method::POST,
            "/api/v1/integrations/gone/credentials",
            Some(&sub),
            None,
        )
        .await;
    assert_error(&r, 502, "registry_credentials_failed", None);
    assert_eq!(r.1["error"]["diagnosis"], "endpoint_unreachable", "{}", r.1);
    let message = r.1["error"]["message"].as_str().unwrap();
    assert!(message.contains("refused"), "{message}");
    for dump in [
        "DispatchFailure",
        "ConnectError",
        "Some(",
        "source:",
        "tcp connect",
    ] {
        assert!(!message.contains(dump), "{dump} in {message}");
    }
    s.stop().await;
}

/// Test connection of a role shared with runtimes names each runtime whose cluster role the
/// role's trust policy does not allow, with the statement to add; a bad cluster role ARN is
/// refused naming the field, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_names_the_runtime_whose_trust_is_missing() {
    let dir = TempDir::new("trust");
    let admin = berth_testkit::random_keys("ADMN");
    let prod_role = "arn:aws:iam::111122223333:role/eksctl-prod-ServiceRole";
    let dev_role = "arn:aws:iam::111122223333:role/eksctl-dev-ServiceRole";
    let iam = berth_testkit::IamToml::new("123456789012")
        .user(
            "admin",
            &admin.id,
            &admin.secret,
            &["ecr:*", "sts:AssumeRole", "iam:GetRole"],
        )
        .role(
            "pusher",
            &["arn:aws:iam::123456789012:user/admin", prod_role],
            None,
            &["ecr:*"],
        )
        .build();
    let ecr = LocalEcrFixture::with_iam("server-trust", &iam, |_| {}).await;
    let s = TestServer::start(options(&dir.0)).await;

    let bad = s
        .admin(
            Method::POST,
            "/api/v1/runtimes",
            Some(json!({"name": "prod", "cluster_role_arn": "arn:aws:iam::1111:role/x"})),
        )
        .await;
    assert_error(&bad, 400, "invalid_field", Some("cluster_role_arn"));
    let absent = s.admin(Method::GET, "/api/v1/runtimes/prod", None).await;
    assert_error(&absent, 404, "not_found", None);

    let (status, prod) = s
        .admin(
            Method::POST,
            "/api/v1/runtimes",
            Some(json!({"name": "prod", "cluster_role_arn": prod_role})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{prod}");
    assert_eq!(prod["cluster_role_arn"], prod_role);
    s.admin(
        Method::POST,
        "/api/v1/runtimes",
        Some(json!({"name": "dev"})),
    )
    .await;
    let set = |arn: serde_json::Value| {
        s.admin(
            Method::PUT,
            "/api/v1/runtimes/dev/cluster-role",
            Some(json!({"cluster_role_arn": arn})),
        )
    };
    assert_error(
        &set(json!("not-an-arn")).await,
        400,
        "invalid_field",
        Some("cluster_role_arn"),
    );
    let (status, dev) = set(json!(dev_role)).await;
    assert_eq!(
        (status, &dev["cluster_role_arn"]),
        (StatusCode::OK, &json!(dev_role))
    );

    let integration = json!({"name": "pusher", "type": "ecr", "endpoint": ecr.url,
        "auth": {"mode": "assume_role", "role_arn": "arn:aws:iam::123456789012:role/pusher",
                 "source": {"access_key_id": admin.id, "secret_access_key": admin.secret}},
        "runtimes": {"selected": ["prod", "dev"]}});
    let trust_steps = |report: &serde_json::Value| -> Vec<(String, String)> {
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|st| st["step"] == "runtime_trust")
            .map(|st| {
                (
                    st["subject"].as_str().unwrap_or_default().to_owned(),
                    st["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let (_, draft) = s
        .admin(
            Method::POST,
            "/api/v1/connection-tests",
            Some(integration.clone()),
        )
        .await;
    assert_eq!(
        trust_steps(&draft),
        [
            ("dev".into(), "failed".into()),
            ("prod".into(), "ok".into())
        ],
        "{draft}"
    );
    let r = s
        .admin(Method::POST, "/api/v1/integrations", Some(integration))
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    let (_, report) = s
        .admin(Method::POST, "/api/v1/integrations/pusher/test", None)
        .await;
    assert_eq!(report["ok"], false, "{report}");
    let dev_step = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["subject"] == "dev")
        .unwrap();
    assert_eq!(dev_step["diagnosis"], "trust_missing");
    assert!(
        dev_step["hint"].as_str().unwrap().contains(dev_role),
        "{dev_step}"
    );
    // Forgetting dev's cluster role leaves nothing to check there, and the test passes.
    let (status, _) = set(json!(null)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, report) = s
        .admin(Method::POST, "/api/v1/integrations/pusher/test", None)
        .await;
    assert_eq!(
        trust_steps(&report),
        [
            ("dev".into(), "skipped".into()),
            ("prod".into(), "ok".into())
        ]
    );
    assert_eq!(report["ok"], true, "{report}");
    s.stop().await;
}
