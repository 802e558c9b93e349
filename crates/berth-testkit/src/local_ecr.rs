//! The local ECR on port 0, stopped when its handle goes away.

use std::path::PathBuf;

use berth_ecr_local::{LocalEcr, LocalEcrOptions};

use crate::TempDir;

/// An access key pair.
#[derive(Debug, Clone)]
pub struct Keys {
    pub id: String,
    pub secret: String,
}

/// Keys generated per run (`AKIA<tag><random>`), so nothing key-shaped is committed.
pub fn random_keys(tag: &str) -> Keys {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the operating system's random source");
    let suffix: String = b.iter().map(|x| format!("{:X}", x % 16)).collect();
    Keys {
        id: format!("AKIA{tag}{suffix}"),
        secret: format!("secret-{tag}-{suffix}/abc+def"),
    }
}

/// A running local ECR in its own temp dir.
pub struct LocalEcrFixture {
    /// Its base URL (`http://127.0.0.1:<port>`), for the ECR API, STS and `/v2/`.
    pub url: String,
    pub dir: TempDir,
    /// The credentials file it wrote for its demo user (only when it seeded one).
    pub credentials_file: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl LocalEcrFixture {
    /// As `berth up` starts it: no IAM file, so it seeds its demo user and role.
    pub async fn seeded(tag: &str) -> Self {
        Self::start(tag, None, |_| {}).await
    }

    /// With `iam` written as its `iam.toml` (the caller's users and roles), after `configure`
    /// has changed its options.
    pub async fn with_iam(
        tag: &str,
        iam: &str,
        configure: impl FnOnce(&mut LocalEcrOptions),
    ) -> Self {
        Self::start(tag, Some(iam), configure).await
    }

    /// The demo user's keys, read from the credentials file the local ECR wrote.
    pub fn demo_keys(&self) -> Keys {
        let text = std::fs::read_to_string(&self.credentials_file)
            .expect("the local ECR wrote its credentials file");
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k} = ")))
                .unwrap_or_else(|| panic!("{k} in the local ECR's credentials file"))
                .to_owned()
        };
        Keys {
            id: field("aws_access_key_id"),
            secret: field("aws_secret_access_key"),
        }
    }

    async fn start(
        tag: &str,
        iam: Option<&str>,
        configure: impl FnOnce(&mut LocalEcrOptions),
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = TempDir::new(tag);
        if let Some(iam) = iam {
            std::fs::write(dir.0.join("iam.toml"), iam).expect("write iam.toml");
        }
        let mut options = LocalEcrOptions::new(dir.0.clone(), "127.0.0.1:0".parse().unwrap());
        configure(&mut options);
        let ecr = LocalEcr::start(&options)
            .await
            .expect("start the local ECR");
        assert_eq!(ecr.seeded, iam.is_none(), "the test's IAM file is used");
        let url = ecr.public_url.clone();
        let credentials_file = ecr.credentials_file.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(ecr.run(async {
            let _ = rx.await;
        }));
        LocalEcrFixture {
            url,
            dir,
            credentials_file,
            stop: Some(tx),
        }
    }
}

impl Drop for LocalEcrFixture {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An `iam.toml` for the local ECR, built user by user and role by role.
pub struct IamToml(String);

impl IamToml {
    pub fn new(account_id: &str) -> Self {
        IamToml(format!("account_id = \"{account_id}\"\n"))
    }

    /// A user with the key pair `id`/`secret`, allowed `actions` on every repository.
    pub fn user(self, name: &str, id: &str, secret: &str, actions: &[&str]) -> Self {
        self.user_in(name, id, secret, actions, None)
    }

    /// A user allowed `actions` on the repositories matching `repositories` only, when given.
    pub fn user_in(
        mut self,
        name: &str,
        id: &str,
        secret: &str,
        actions: &[&str],
        repositories: Option<&[&str]>,
    ) -> Self {
        let scope = repositories
            .map(|r| format!(", repositories = {}", list(r)))
            .unwrap_or_default();
        self.0.push_str(&format!(
            "[[users]]\nname = \"{name}\"\naccess_key_id = \"{id}\"\nsecret_access_key = \"{secret}\"\npolicy = {{ actions = {}{scope} }}\n",
            list(actions)
        ));
        self
    }

    /// A role the `trust`ed principals may assume (with `external_id` when given).
    pub fn role(
        mut self,
        name: &str,
        trust: &[&str],
        external_id: Option<&str>,
        actions: &[&str],
    ) -> Self {
        self.0.push_str(&format!(
            "[[roles]]\nname = \"{name}\"\ntrust = {}\n",
            list(trust)
        ));
        if let Some(id) = external_id {
            self.0.push_str(&format!("external_id = \"{id}\"\n"));
        }
        if !actions.is_empty() {
            self.0
                .push_str(&format!("policy = {{ actions = {} }}\n", list(actions)));
        }
        self
    }

    pub fn build(self) -> String {
        self.0
    }
}

fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", quoted.join(", "))
}
