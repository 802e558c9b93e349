//! The broker against the local ECR through the real AWS SDK: credentials that work on `/v2/`,
//! the cache and its single flight, roles, and a precise diagnosis for each failure.

use std::sync::Arc;
use std::time::Duration;

use berth_aws::{Broker, Diagnosis, StepStatus, Timeouts};
use berth_core::{AwsAuth, Integration, IntegrationConfig, RoleSource, Secrets};
use berth_testkit::integration::{EcrFixture, access_keys};
use berth_testkit::{IamToml, LocalEcrFixture, random_keys};
use secrecy::ExposeSecret;

struct Local {
    url: String,
    admin: (String, String),
    no_token: (String, String),
    _ecr: LocalEcrFixture,
}

fn random(n: usize) -> String {
    berth_testkit::random_hex(n).to_ascii_uppercase()[..n].to_owned()
}

async fn local() -> Local {
    local_with_clock_offset(0).await
}

async fn local_with_clock_offset(offset: i64) -> Local {
    let admin = random_keys("ADMN");
    let no_token = random_keys("PULL");
    let iam = IamToml::new("123456789012")
        .user(
            "admin",
            &admin.id,
            &admin.secret,
            &["ecr:*", "sts:AssumeRole"],
        )
        .user(
            "pull-only",
            &no_token.id,
            &no_token.secret,
            &["ecr:BatchGetImage"],
        )
        .role(
            "pusher",
            &["arn:aws:iam::123456789012:user/admin"],
            Some("ext-1"),
            &["ecr:*"],
        )
        .build();
    let ecr =
        LocalEcrFixture::with_iam("aws-broker", &iam, |o| o.clock_offset_seconds = offset).await;
    Local {
        url: ecr.url.clone(),
        admin: (admin.id, admin.secret),
        no_token: (no_token.id, no_token.secret),
        _ecr: ecr,
    }
}

/// The test's integration, served by the local ECR at `endpoint`.
fn integration(endpoint: &str, auth: AwsAuth, version: i64) -> Integration {
    EcrFixture::new("ecr-test")
        .id("int-1")
        .endpoint(endpoint)
        .auth(auth)
        .version(version)
        .build()
}

fn secrets(id: &str, secret: &str) -> Secrets {
    access_keys(id, secret)
}

fn keys_auth() -> AwsAuth {
    AwsAuth::AccessKeys {
        access_key_hint: "XXXX".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_work_on_the_registry_and_are_cached_with_single_flight() {
    let l = local().await;
    let broker = Arc::new(Broker::new());
    let i = Arc::new(integration(&l.url, keys_auth(), 1));
    let s = secrets(&l.admin.0, &l.admin.1);

    // 100 concurrent requests on a cold cache: one GetAuthorizationToken call.
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (broker, i, s) = (broker.clone(), i.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            broker
                .credentials(&i, None, || async { Ok::<_, String>(s) })
                .await
                .unwrap()
        }));
    }
    let mut passwords = Vec::new();
    for t in tasks {
        passwords.push(t.await.unwrap().password.expose_secret().to_owned());
    }
    assert_eq!(broker.token_calls(), 1, "single flight");
    let metrics: serde_json::Value = reqwest::get(format!("{}/_berth/metrics", l.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metrics["calls"]["GetAuthorizationToken"], 1,
        "the local ECR saw one call: {metrics}"
    );
    assert!(passwords.windows(2).all(|w| w[0] == w[1]));

    let c = broker
        .credentials(&i, None, || async { Ok::<_, String>(s.clone()) })
        .await
        .unwrap();
    assert_eq!(broker.token_calls(), 1, "served from the cache");
    assert_eq!(c.username, "AWS");
    assert_eq!(c.registry, l.url.trim_start_matches("http://"));
    assert!(c.expires_at > time::OffsetDateTime::now_utc().unix_timestamp() + 11 * 3600);
    let r = reqwest::Client::new()
        .get(format!("{}/v2/", l.url))
        .basic_auth(&c.username, Some(c.password.expose_secret()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the broker's token opens the registry");

    // Another region, an edit (new version), an invalidation: each a new call.
    broker
        .credentials(&i, Some("eu-west-1"), || async {
            Ok::<_, String>(s.clone())
        })
        .await
        .unwrap();
    assert_eq!(broker.token_calls(), 2);
    let edited = integration(&l.url, keys_auth(), 2);
    broker
        .credentials(&edited, None, || async { Ok::<_, String>(s.clone()) })
        .await
        .unwrap();
    assert_eq!(broker.token_calls(), 3);
    broker.invalidate("int-1");
    broker
        .credentials(&edited, None, || async { Ok::<_, String>(s.clone()) })
        .await
        .unwrap();
    assert_eq!(broker.token_calls(), 4);
    let bad = broker
        .credentials(&i, Some("moon-1"), || async { Ok::<_, String>(s.clone()) })
        .await
        .unwrap_err();
    assert_eq!(bad.diagnosis, Diagnosis::BadRegion);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_assumed_with_their_external_id() {
    let l = local().await;
    let broker = Broker::new();
    let role = |external_id: Option<&str>| AwsAuth::AssumeRole {
        role_arn: "arn:aws:iam::123456789012:role/pusher".into(),
        external_id: external_id.map(str::to_owned),
        session_name: None,
        source: RoleSource::AccessKeys {
            access_key_hint: "XXXX".into(),
        },
    };
    let s = secrets(&l.admin.0, &l.admin.1);
    let ok = broker
        .credentials(
            &integration(&l.url, role(Some("ext-1")), 1),
            None,
            || async { Ok::<_, String>(s.clone()) },
        )
        .await;
    assert!(ok.is_ok(), "{:?}", ok.err());
    let e = broker
        .credentials(
            &integration(&l.url, role(Some("wrong")), 2),
            None,
            || async { Ok::<_, String>(s.clone()) },
        )
        .await
        .unwrap_err();
    assert_eq!(e.diagnosis, Diagnosis::RoleNotAssumable, "{e}");
    assert!(e.hint.contains("external id"));
    // A principal the role does not trust.
    let untrusted = secrets(&l.no_token.0, &l.no_token.1);
    let e = broker
        .credentials(
            &integration(&l.url, role(Some("ext-1")), 3),
            None,
            || async { Ok::<_, String>(untrusted.clone()) },
        )
        .await
        .unwrap_err();
    assert_eq!(e.diagnosis, Diagnosis::RoleNotAssumable, "{e}");
    assert!(e.hint.contains("trust policy"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_names_each_failure() {
    let l = local().await;
    let broker = Broker::new();
    let cfg = |endpoint: &str, auth: AwsAuth| {
        let IntegrationConfig::Ecr(e) = integration(endpoint, auth, 1).config;
        e
    };

    let report = broker
        .test_connection(
            "t",
            &cfg(&l.url, keys_auth()),
            &secrets(&l.admin.0, &l.admin.1),
            None,
            &[],
        )
        .await;
    assert!(report.ok, "{report:?}");
    let steps: Vec<_> = report.steps.iter().map(|s| (s.step, s.status)).collect();
    assert_eq!(
        steps,
        [
            ("credentials", StepStatus::Ok),
            ("assume_role", StepStatus::Skipped),
            ("authorization_token", StepStatus::Ok),
            ("registry", StepStatus::Ok),
            ("describe_repositories", StepStatus::Ok)
        ]
    );

    let failed = |r: &berth_aws::TestReport| {
        r.steps
            .iter()
            .find(|s| s.status == StepStatus::Failed)
            .cloned()
            .unwrap()
    };
    let r = broker
        .test_connection(
            "t",
            &cfg(&l.url, keys_auth()),
            &secrets(&format!("AKIA{}", random(16)), "x"),
            None,
            &[],
        )
        .await;
    assert_eq!(failed(&r).diagnosis, Some(Diagnosis::UnknownAccessKey));
    assert_eq!(r.steps.last().unwrap().status, StepStatus::Skipped);
    let r = broker
        .test_connection(
            "t",
            &cfg(&l.url, keys_auth()),
            &secrets(&l.admin.0, "wrong-secret"),
            None,
            &[],
        )
        .await;
    assert_eq!(failed(&r).diagnosis, Some(Diagnosis::WrongSecret));
    let r = broker
        .test_connection(
            "t",
            &cfg(&l.url, keys_auth()),
            &secrets(&l.no_token.0, &l.no_token.1),
            None,
            &[],
        )
        .await;
    let f = failed(&r);
    assert_eq!(
        (f.step, f.diagnosis),
        ("authorization_token", Some(Diagnosis::AccessDenied)),
        "{f:?}"
    );
    assert!(f.hint.unwrap().contains("GetAuthorizationToken"));
    let r = broker
        .test_connection("t", &cfg(&l.url, keys_auth()), &Secrets::new(), None, &[])
        .await;
    assert_eq!(failed(&r).diagnosis, Some(Diagnosis::MissingSecret));

    // Nothing listens on this port: refused, quickly, with the time it took.
    let closed = {
        let sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        drop(sock);
        format!("http://127.0.0.1:{port}")
    };
    let started = std::time::Instant::now();
    let r = broker
        .test_connection(
            "t",
            &cfg(&closed, keys_auth()),
            &secrets(&l.admin.0, &l.admin.1),
            None,
            &[],
        )
        .await;
    let f = failed(&r);
    assert_eq!(f.diagnosis, Some(Diagnosis::EndpointUnreachable), "{f:?}");
    assert!(
        f.detail.contains("refused") && f.detail.contains(" ms"),
        "{}",
        f.detail
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded by timeouts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_is_named_as_such() {
    let l = local_with_clock_offset(3600).await;
    let IntegrationConfig::Ecr(ecr) = integration(&l.url, keys_auth(), 1).config;
    let r = Broker::new()
        .test_connection("t", &ecr, &secrets(&l.admin.0, &l.admin.1), None, &[])
        .await;
    let failed = r
        .steps
        .iter()
        .find(|s| s.status == StepStatus::Failed)
        .unwrap();
    assert_eq!(failed.diagnosis, Some(Diagnosis::ClockSkew), "{failed:?}");
    assert!(failed.hint.as_deref().unwrap().contains("clock"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_never_answers_times_out_within_bounds() {
    // Accepts connections, never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    let broker = Broker::with_timeouts(Timeouts {
        connect: Duration::from_secs(1),
        attempt: Duration::from_millis(500),
        operation: Duration::from_secs(2),
    });
    let IntegrationConfig::Ecr(ecr) = integration(&url, keys_auth(), 1).config;
    let started = std::time::Instant::now();
    let r = broker
        .test_connection(
            "t",
            &ecr,
            &secrets(&format!("AKIA{}", random(16)), "s"),
            None,
            &[],
        )
        .await;
    let f = r
        .steps
        .iter()
        .find(|s| s.status == StepStatus::Failed)
        .unwrap();
    assert_eq!(f.diagnosis, Some(Diagnosis::EndpointUnreachable), "{f:?}");
    assert!(f.detail.contains("timed out"), "{}", f.detail);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

fn trust_steps(report: &berth_aws::TestReport) -> Vec<&berth_aws::Step> {
    report
        .steps
        .iter()
        .filter(|s| s.step == "runtime_trust")
        .collect()
}

/// The seed's prerequisite: each runtime's cluster role must be trusted by the integration's
/// role. The local ECR answers `iam:GetRole` with the trust it enforces on AssumeRole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_checks_each_runtimes_trust() {
    let admin = random_keys("ADMN");
    let blind = random_keys("BLND");
    let trusted = "arn:aws:iam::111122223333:role/eksctl-prod-ServiceRole";
    let iam = IamToml::new("123456789012")
        .user(
            "admin",
            &admin.id,
            &admin.secret,
            &["ecr:*", "sts:AssumeRole", "iam:GetRole"],
        )
        .user(
            "blind",
            &blind.id,
            &blind.secret,
            &["ecr:*", "sts:AssumeRole"],
        )
        .role(
            "pusher",
            &[
                "arn:aws:iam::123456789012:user/admin",
                "arn:aws:iam::123456789012:user/blind",
                trusted,
            ],
            Some("ext-1"),
            &["ecr:*"],
        )
        .build();
    let ecr = LocalEcrFixture::with_iam("aws-trust", &iam, |_| {}).await;
    let broker = Broker::new();
    let role_arn = "arn:aws:iam::123456789012:role/pusher";
    let IntegrationConfig::Ecr(ecr_config) = integration(
        &ecr.url,
        AwsAuth::AssumeRole {
            role_arn: role_arn.into(),
            external_id: Some("ext-1".into()),
            session_name: None,
            source: RoleSource::AccessKeys {
                access_key_hint: "XXXX".into(),
            },
        },
        1,
    )
    .config;
    let runtime = |name: &str, arn: Option<&str>| berth_aws::RuntimeTrust {
        runtime: name.into(),
        cluster_role_arn: arn.map(str::to_owned),
    };
    let untrusted = "arn:aws:iam::111122223333:role/eksctl-dev-ServiceRole";
    let runtimes = [
        runtime("prod", Some(trusted)),
        runtime("dev", Some(untrusted)),
        runtime("edge", None),
    ];
    let report = broker
        .test_connection(
            "t",
            &ecr_config,
            &secrets(&admin.id, &admin.secret),
            None,
            &runtimes,
        )
        .await;
    let trust = trust_steps(&report);
    let seen: Vec<_> = trust
        .iter()
        .map(|s| (s.subject.as_deref(), s.status))
        .collect();
    assert_eq!(
        seen,
        [
            (Some("prod"), StepStatus::Ok),
            (Some("dev"), StepStatus::Failed),
            (Some("edge"), StepStatus::Skipped),
        ],
        "{report:#?}"
    );
    assert!(!report.ok, "a missing trust fails the test");
    assert!(
        trust[0].detail.contains("StringEquals sts:ExternalId")
            && !trust[0].detail.contains("ext-1"),
        "conditions are named, their values are not shown: {}",
        trust[0].detail
    );
    assert_eq!(trust[1].diagnosis, Some(Diagnosis::TrustMissing));
    assert!(trust[1].detail.contains("runtime dev") && trust[1].detail.contains(untrusted));
    let hint = trust[1].hint.as_deref().unwrap();
    let statement: serde_json::Value = serde_json::from_str(hint.split_once(": ").unwrap().1)
        .expect("the hint's statement is JSON");
    assert_eq!(statement["Principal"]["AWS"], untrusted);
    assert_eq!(statement["Action"], "sts:AssumeRole");
    assert!(trust[2].detail.contains("set-cluster-role edge"));

    // An identity that may assume the role but not read it: one failed step saying so.
    let report = broker
        .test_connection(
            "t",
            &ecr_config,
            &secrets(&blind.id, &blind.secret),
            None,
            &runtimes,
        )
        .await;
    let trust = trust_steps(&report);
    assert_eq!(trust.len(), 1, "{report:#?}");
    assert_eq!(trust[0].status, StepStatus::Failed);
    assert_eq!(
        trust[0].diagnosis,
        Some(Diagnosis::AccessDenied),
        "{:?}",
        trust[0]
    );
    assert!(trust[0].hint.as_deref().unwrap().contains("iam:GetRole"));

    // Access keys have no role for a cluster to assume.
    let IntegrationConfig::Ecr(keys_config) = integration(&ecr.url, keys_auth(), 2).config;
    let report = broker
        .test_connection(
            "t",
            &keys_config,
            &secrets(&admin.id, &admin.secret),
            None,
            &runtimes,
        )
        .await;
    let last = report.steps.last().unwrap();
    assert_eq!(
        (last.step, last.status),
        ("runtime_trust", StepStatus::Skipped)
    );
    assert!(report.ok, "{report:#?}");
}
