//! Hub replicas as separate processes behind a real load balancer: `scripts/cluster up` starts a
//! fresh PostgreSQL database, the local ECR, three `berth serve` replicas started together and
//! haproxy (round robin, no sticky sessions) in front. Through haproxy, 100 concurrent logins
//! reach every replica and cause one GetAuthorizationToken (counted by the local ECR); an edit
//! on one replica makes every replica fetch anew, once; the migrations ran once; and with one
//! replica killed (-9) logins keep working. Outside CI a missing haproxy or PostgreSQL skips the
//! test loudly; in CI it fails it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_testkit::TempDir;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/cluster")
}

struct Cluster {
    dir: TempDir,
    env: BTreeMap<String, String>,
}

impl Cluster {
    fn up() -> Option<Cluster> {
        if berth_testkit::peer("haproxy").is_none() || berth_testkit::postgres_url().is_none() {
            return None;
        }
        let dir = TempDir::new("cluster");
        let out = Command::new("bash")
            .arg(script())
            .args(["up"])
            .arg(dir.path())
            .env("BERTH_BIN", BIN)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cluster up: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(dir.path().join("cluster.env"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Some(Cluster { dir, env })
    }

    fn url(&self) -> &str {
        &self.env["BERTH_URL"]
    }

    fn replica(&self, i: usize) -> String {
        let addr = std::fs::read_to_string(self.dir.path().join(format!("hub-{i}.addr"))).unwrap();
        format!("http://{}", addr.trim())
    }

    fn kill(&self, i: usize) {
        let pid = std::fs::read_to_string(self.dir.path().join(format!("hub-{i}.pid"))).unwrap();
        let status = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("down")
            .arg(self.dir.path())
            .status();
    }
}

async fn token_calls(http: &reqwest::Client, c: &Cluster) -> u64 {
    let m: Value = http
        .get(format!("{}/_berth/metrics", c.env["BERTH_CLUSTER_ECR"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    m["calls"]["GetAuthorizationToken"].as_u64().unwrap_or(0)
}

/// `n` logins at once through `base`: the replicas that answered, and the passwords given.
async fn logins(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    n: usize,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let calls = (0..n).map(|_| {
        let req = http
            .post(format!("{base}/api/v1/integrations/local/credentials"))
            .bearer_auth(token);
        async move {
            let r = req.send().await.expect("a login through haproxy");
            let replica = r
                .headers()
                .get("x-berth-replica")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            assert_eq!(r.status(), 200, "{:?}", r.text().await);
            let v: Value = r.json().await.unwrap();
            (replica, v["password"].as_str().unwrap().to_owned())
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    answers.into_iter().unzip()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_behind_haproxy_share_one_token_and_survive_losing_one() {
    let Some(c) = Cluster::up() else { return };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let token = c.env["BERTH_TOKEN"].clone();
    let creds = std::fs::read_to_string(&c.env["BERTH_CLUSTER_ECR_CREDENTIALS"]).unwrap();
    let field = |k: &str| {
        creds
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k} = ")))
            .unwrap()
            .to_owned()
    };
    let r = http
        .post(format!("{}/api/v1/integrations", c.url()))
        .bearer_auth(&token)
        .json(
            &json!({"name": "local", "type": "ecr", "endpoint": c.env["BERTH_CLUSTER_ECR"],
            "auth": {"mode": "access_keys", "access_key_id": field("aws_access_key_id"),
                     "secret_access_key": field("aws_secret_access_key")}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);

    let (replicas, passwords) = logins(&http, c.url(), &token, 100).await;
    assert_eq!(replicas.len(), 3, "haproxy spread the logins: {replicas:?}");
    assert_eq!(
        token_calls(&http, &c).await,
        1,
        "one GetAuthorizationToken for 100 logins"
    );
    assert_eq!(passwords.len(), 1);

    // An edit through one replica: every replica fetches for the new version, once in all.
    let r = http
        .patch(format!("{}/api/v1/integrations/local", c.replica(1)))
        .bearer_auth(&token)
        .json(&json!({"region": "eu-west-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let (replicas, after) = logins(&http, c.url(), &token, 30).await;
    assert_eq!(replicas.len(), 3);
    assert_eq!(
        token_calls(&http, &c).await,
        2,
        "the edit invalidated every replica's cache"
    );
    assert_eq!(after.len(), 1, "no replica served the old version's token");
    assert!(after.is_disjoint(&passwords));

    // The replicas started together; each migration ran once.
    let db = &c.env["BERTH_CLUSTER_DATABASE"];
    let out = Command::new("psql")
        .args([
            db.as_str(),
            "-Atc",
            "SELECT count(*), count(DISTINCT version) FROM berth_migrations",
        ])
        .output()
        .unwrap();
    let counts = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let (all, distinct) = counts.split_once('|').expect("two counts");
    assert_eq!(all, distinct, "a migration recorded twice: {counts}");

    // One replica killed: haproxy's health check takes it out, logins keep working.
    c.kill(2);
    let (replicas, _) = logins(&http, c.url(), &token, 30).await;
    assert!(!replicas.contains("hub-2"), "{replicas:?}");
    assert_eq!(replicas.len(), 2, "{replicas:?}");
}
