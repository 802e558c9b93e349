//! The broker against moto, an independent implementation of the ECR and STS APIs: tokens,
//! roles, Test connection, and an unknown key refused when moto checks signatures. moto has no
//! registry (`/v2/`), and its tokens expire in 2015, which exercises refresh-before-expiry.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_aws::{Broker, Diagnosis, StepStatus};
use berth_core::{AwsAuth, Integration, IntegrationConfig, RoleSource, Secrets};
use berth_testkit::integration::{EcrFixture, access_keys};
use secrecy::ExposeSecret;

struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_bin() -> Option<PathBuf> {
    berth_testkit::peer("moto_server")
}

async fn moto(bin: &PathBuf, auth: bool) -> Moto {
    let port = {
        let s = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let mut cmd = Command::new(bin);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if auth {
        // Check signatures from the first request on.
        cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
    }
    let moto = Moto {
        child: cmd.spawn().unwrap(),
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..200 {
        if reqwest::get(format!("{}/moto-api/", moto.url))
            .await
            .is_ok()
        {
            return moto;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("moto did not start");
}

fn integration(endpoint: &str, auth: AwsAuth, version: i64) -> Integration {
    EcrFixture::new("moto")
        .id("moto-int")
        .endpoint(endpoint)
        .auth(auth)
        .version(version)
        .build()
}

fn secrets() -> Secrets {
    access_keys("AKIAMOTOTESTKEY0", "moto-secret")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_roles_and_test_connection_against_moto() {
    let Some(bin) = moto_bin() else { return };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let m = moto(&bin, false).await;
    let broker = Broker::new();
    let keys = integration(
        &m.url,
        AwsAuth::AccessKeys {
            access_key_hint: "KEY0".into(),
        },
        1,
    );
    let c = broker
        .credentials(&keys, None, || async { Ok::<_, String>(secrets()) })
        .await
        .unwrap();
    assert_eq!(c.username, "AWS");
    assert!(!c.password.expose_secret().is_empty());
    assert_eq!(c.registry, "123456789012.dkr.ecr.us-east-1.amazonaws.com");
    // moto's token expired long ago: it must never be served from the cache.
    broker
        .credentials(&keys, None, || async { Ok::<_, String>(secrets()) })
        .await
        .unwrap();
    assert_eq!(broker.token_calls(), 2);

    let role = integration(
        &m.url,
        AwsAuth::AssumeRole {
            role_arn: "arn:aws:iam::123456789012:role/ecr-pull".into(),
            external_id: Some("ext-1".into()),
            session_name: None,
            source: RoleSource::AccessKeys {
                access_key_hint: "KEY0".into(),
            },
        },
        1,
    );
    let c = broker
        .credentials(&role, None, || async { Ok::<_, String>(secrets()) })
        .await
        .unwrap();
    assert_eq!(c.username, "AWS");

    let IntegrationConfig::Ecr(ecr) = &keys.config;
    let report = broker
        .test_connection("moto", ecr, &secrets(), None, &[])
        .await;
    let status = |step: &str| report.steps.iter().find(|s| s.step == step).unwrap().status;
    assert_eq!(status("credentials"), StepStatus::Ok);
    assert_eq!(status("authorization_token"), StepStatus::Ok);
    assert_eq!(status("describe_repositories"), StepStatus::Ok);
    // moto's proxy endpoint is real ECR's host, which this machine cannot reach.
    let registry = report.steps.iter().find(|s| s.step == "registry").unwrap();
    assert_eq!(registry.status, StepStatus::Failed);
    assert_eq!(
        registry.diagnosis,
        Some(Diagnosis::EndpointUnreachable),
        "{registry:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_with_signature_checks_refuses_an_unknown_key() {
    let Some(bin) = moto_bin() else { return };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let m = moto(&bin, true).await;
    let broker = Broker::new();
    let keys = integration(
        &m.url,
        AwsAuth::AccessKeys {
            access_key_hint: "KEY0".into(),
        },
        1,
    );
    let e = broker
        .credentials(&keys, None, || async { Ok::<_, String>(secrets()) })
        .await
        .unwrap_err();
    assert_eq!(e.diagnosis, Diagnosis::UnknownAccessKey, "{e}: {}", e.hint);
}
