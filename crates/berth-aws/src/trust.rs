//! Test connection's `runtime_trust` steps: for each runtime an integration is shared with, whether
//! the integration's role trusts the runtime's cluster role (`iam:GetRole`, then the trust policy
//! read by `berth_core::trust`), naming the runtime and the statement to add when it does not.

use std::time::Instant;

use aws_credential_types::provider::SharedCredentialsProvider;
use berth_core::trust::{TrustPolicy, TrustVerdict, statement_to_add};
use berth_core::{AwsAuth, EcrConfig, RoleSource, Secrets};

use crate::diagnose::{self, Diagnosis, TestReport};
use crate::{Broker, BrokerError, keys};

/// IAM is global; its requests are signed for the partition's first region.
const IAM_REGION: &str = "us-east-1";

/// A runtime an integration is shared with, and the IAM role its cluster assumes roles as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeTrust {
    pub runtime: String,
    pub cluster_role_arn: Option<String>,
}

impl Broker {
    /// Adds one `runtime_trust` step per runtime (none when there are no runtimes).
    pub(crate) async fn check_trust(
        &self,
        ecr: &EcrConfig,
        secrets: &Secrets,
        runtimes: &[RuntimeTrust],
        report: &mut TestReport,
    ) {
        if runtimes.is_empty() {
            return;
        }
        let AwsAuth::AssumeRole {
            role_arn, source, ..
        } = &ecr.auth
        else {
            report.skip(
                "runtime_trust",
                "the integration has no role for the runtimes' clusters to assume",
            );
            return;
        };
        let started = Instant::now();
        let policy = match self.trust_policy(ecr, source, secrets, role_arn).await {
            Ok(policy) => policy,
            Err(e) => return report.fail("runtime_trust", &e, started),
        };
        for runtime in runtimes {
            judge(&policy, role_arn, runtime, report, started);
            report.about(&runtime.runtime);
        }
    }

    /// The role's trust policy, read with the identity that assumes the role.
    async fn trust_policy(
        &self,
        ecr: &EcrConfig,
        source: &RoleSource,
        secrets: &Secrets,
        role_arn: &str,
    ) -> Result<TrustPolicy, BrokerError> {
        let creds = match source {
            RoleSource::AccessKeys { .. } => Some(SharedCredentialsProvider::new(keys(secrets)?)),
            RoleSource::Ambient => None,
        };
        let config = self
            .sdk_config(IAM_REGION, ecr.endpoint.as_deref(), creds)
            .await;
        let role_name = role_arn.rsplit('/').next().unwrap_or(role_arn);
        let out = aws_sdk_iam::Client::new(&config)
            .get_role()
            .role_name(role_name)
            .send()
            .await
            .map_err(|e| {
                let e = diagnose::iam_error(e);
                BrokerError::new(
                    e.diagnosis,
                    format!("the trust policy of {role_arn} cannot be read: {}", e.message),
                    format!(
                        "allow the identity Berth assumes the role with iam:GetRole on {role_arn}, or check the role's trust by hand ({})",
                        e.hint
                    ),
                )
            })?;
        let document = out
            .role()
            .and_then(|r| r.assume_role_policy_document())
            .unwrap_or_default();
        // IAM returns the document URL-encoded (RFC 3986).
        TrustPolicy::parse(&berth_core::percent_decode(document)).map_err(|e| {
            BrokerError::new(
                Diagnosis::Other,
                format!("{role_arn}: {e}"),
                "check the role's trust policy in IAM",
            )
        })
    }
}

/// One runtime's step: trusted (with the conditions it did not evaluate), denied or missing.
fn judge(
    policy: &TrustPolicy,
    role_arn: &str,
    runtime: &RuntimeTrust,
    report: &mut TestReport,
    started: Instant,
) {
    let name = &runtime.runtime;
    let Some(cluster_role) = &runtime.cluster_role_arn else {
        return report.skip(
            "runtime_trust",
            &format!(
                "runtime {name} records no cluster role: set one (berth runtime set-cluster-role {name} ARN) to check that it may assume {role_arn}"
            ),
        );
    };
    let untrusted = |why: String, hint: String| {
        BrokerError::new(
            Diagnosis::TrustMissing,
            format!("runtime {name}: its cluster role {cluster_role} {why}"),
            hint,
        )
    };
    match policy.verdict(cluster_role) {
        TrustVerdict::Allowed {
            statement,
            conditions,
        } => {
            let unevaluated = match conditions.is_empty() {
                true => String::new(),
                false => format!(
                    "; its conditions are not evaluated here: {}",
                    conditions.join(", ")
                ),
            };
            report.ok(
                "runtime_trust",
                &format!(
                    "runtime {name}: its cluster role {cluster_role} may assume {role_arn} ({statement}{unevaluated})"
                ),
                started,
            );
        }
        TrustVerdict::Denied { statement } => report.fail(
            "runtime_trust",
            &untrusted(
                format!("is denied sts:AssumeRole on {role_arn} by {statement}"),
                format!("remove {cluster_role} (or its account) from {statement} of the trust policy of {role_arn}"),
            ),
            started,
        ),
        TrustVerdict::Missing => report.fail(
            "runtime_trust",
            &untrusted(
                format!("is not trusted by {role_arn}: no statement allows it sts:AssumeRole"),
                format!(
                    "add this statement to the trust policy of {role_arn}: {}",
                    statement_to_add(cluster_role)
                ),
            ),
            started,
        ),
    }
}
