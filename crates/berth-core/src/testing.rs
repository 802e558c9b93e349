//! Test fixtures over the domain's own types, shared by this crate's unit tests and, through
//! `berth-testkit`, every other crate's tests. Compiled only for tests (`testing` feature).

use secrecy::SecretString;

use crate::{
    AwsAuth, EcrConfig, Integration, IntegrationConfig, Meta, Name, RuntimeScope, SecretField,
    Secrets,
};

/// An ECR integration as the store returns it: id `id-<name>`, region `us-east-1`, ambient
/// auth, no endpoint, shared with no subscription and all runtimes, version 1. Each method
/// changes one thing.
pub struct EcrFixture(Integration);

impl EcrFixture {
    pub fn new(name: &str) -> Self {
        let t = time::OffsetDateTime::UNIX_EPOCH;
        EcrFixture(Integration {
            id: format!("id-{name}"),
            name: Name::parse("name", name).expect("a valid fixture name"),
            config: IntegrationConfig::Ecr(EcrConfig {
                region: "us-east-1".into(),
                auth: AwsAuth::Ambient,
                registry_id: None,
                endpoint: None,
                export_long_lived_keys: false,
            }),
            subscriptions: Vec::new(),
            runtimes: RuntimeScope::All,
            secrets_set: Default::default(),
            meta: Meta {
                created_at: t,
                updated_at: t,
                created_by: "test".into(),
                updated_by: "test".into(),
                version: 1,
            },
        })
    }

    pub fn id(mut self, id: &str) -> Self {
        self.0.id = id.to_owned();
        self
    }

    pub fn endpoint(self, url: &str) -> Self {
        self.ecr(|e| e.endpoint = Some(url.to_owned()))
    }

    pub fn region(self, region: &str) -> Self {
        self.ecr(|e| e.region = region.to_owned())
    }

    pub fn registry_id(self, id: Option<&str>) -> Self {
        self.ecr(|e| e.registry_id = id.map(str::to_owned))
    }

    pub fn auth(self, auth: AwsAuth) -> Self {
        self.ecr(|e| e.auth = auth)
    }

    pub fn version(mut self, version: i64) -> Self {
        self.0.meta.version = version;
        self
    }

    pub fn subscriptions(mut self, names: &[&str]) -> Self {
        self.0.subscriptions = names
            .iter()
            .map(|s| Name::parse("subscriptions", s).expect("a valid subscription name"))
            .collect();
        self
    }

    pub fn build(self) -> Integration {
        self.0
    }

    /// The ECR settings alone, for calls that take an [`EcrConfig`].
    pub fn config(self) -> EcrConfig {
        let IntegrationConfig::Ecr(ecr) = self.0.config;
        ecr
    }

    fn ecr(mut self, change: impl FnOnce(&mut EcrConfig)) -> Self {
        let IntegrationConfig::Ecr(ecr) = &mut self.0.config;
        change(ecr);
        self
    }
}

/// Access keys as the store opens them for the broker.
pub fn access_keys(id: &str, secret: &str) -> Secrets {
    let mut s = Secrets::new();
    s.insert(
        SecretField::AwsAccessKeyId,
        SecretString::from(id.to_owned()),
    );
    s.insert(
        SecretField::AwsSecretAccessKey,
        SecretString::from(secret.to_owned()),
    );
    s
}
