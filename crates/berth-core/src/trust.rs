//! Whether a role's trust policy (`AssumeRolePolicyDocument`) lets a principal `sts:AssumeRole`
//! it: the prerequisite Codefresh's ECR integration states, that the cluster's IAM role may
//! assume the integration's role. Read as IAM reads it for this one question — an `Allow` whose
//! action covers `sts:AssumeRole` and whose `Principal.AWS` names the principal, its account's
//! root, the bare account id or `*`, and no `Deny` that does the same. Conditions are reported,
//! never evaluated: they depend on the request (an external id, a source identity, tags).

use serde_json::Value;

/// What a trust policy says about one principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustVerdict {
    /// An `Allow` statement covers the principal; `conditions` are its `Condition` keys
    /// (`StringEquals sts:ExternalId`), which the request must still satisfy.
    Allowed {
        statement: String,
        conditions: Vec<String>,
    },
    /// A `Deny` statement covers the principal.
    Denied { statement: String },
    /// No statement covers the principal.
    Missing,
}

/// A trust policy that is not a policy document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the role's trust policy is not a policy document: {0}")]
pub struct TrustPolicyError(String);

/// A parsed trust policy.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    statements: Vec<Value>,
}

impl TrustPolicy {
    /// Parses the JSON document IAM's GetRole returns (already URL-decoded).
    pub fn parse(document: &str) -> Result<TrustPolicy, TrustPolicyError> {
        let doc: Value =
            serde_json::from_str(document).map_err(|e| TrustPolicyError(e.to_string()))?;
        let statements = match doc.get("Statement") {
            Some(Value::Array(list)) => list.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => return Err(TrustPolicyError("no Statement".into())),
        };
        Ok(TrustPolicy { statements })
    }

    /// Whether `principal_arn` (an IAM role or user ARN) may `sts:AssumeRole` the role.
    pub fn verdict(&self, principal_arn: &str) -> TrustVerdict {
        let covering = |effect: &str| {
            self.statements.iter().enumerate().find(|(_, s)| {
                s.get("Effect").and_then(Value::as_str) == Some(effect)
                    && covers_assume_role(s.get("Action"))
                    && names_principal(s.get("Principal"), principal_arn)
            })
        };
        if let Some((i, s)) = covering("Deny") {
            return TrustVerdict::Denied {
                statement: label(i, s),
            };
        }
        match covering("Allow") {
            Some((i, s)) => TrustVerdict::Allowed {
                statement: label(i, s),
                conditions: conditions(s.get("Condition")),
            },
            None => TrustVerdict::Missing,
        }
    }
}

/// The statement to add to the role's trust policy so that `principal_arn` may assume it.
pub fn statement_to_add(principal_arn: &str) -> String {
    serde_json::json!({
        "Effect": "Allow",
        "Principal": {"AWS": principal_arn},
        "Action": "sts:AssumeRole"
    })
    .to_string()
}

/// `Sid` when the statement has one, else its position.
fn label(index: usize, statement: &Value) -> String {
    match statement.get("Sid").and_then(Value::as_str) {
        Some(sid) if !sid.is_empty() => format!("statement '{sid}'"),
        _ => format!("statement {}", index + 1),
    }
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn covers_assume_role(action: Option<&Value>) -> bool {
    strings(action).iter().any(|a| {
        let a = a.to_ascii_lowercase();
        a == "*" || a == "sts:*" || a == "sts:assumerole"
    })
}

fn names_principal(principal: Option<&Value>, arn: &str) -> bool {
    let mut parts = arn.split(':');
    let partition = parts.nth(1).unwrap_or("aws");
    let account = parts.nth(2).unwrap_or_default();
    let root = format!("arn:{partition}:iam::{account}:root");
    let aws = match principal {
        Some(Value::String(s)) if s == "*" => return true,
        Some(Value::Object(map)) => strings(map.get("AWS")),
        _ => return false,
    };
    aws.iter()
        .any(|p| *p == "*" || *p == arn || *p == root || (!account.is_empty() && *p == account))
}

/// `Operator key` for each condition, without values (an external id is no one's business).
fn conditions(condition: Option<&Value>) -> Vec<String> {
    let Some(Value::Object(operators)) = condition else {
        return Vec::new();
    };
    let mut named: Vec<String> = operators
        .iter()
        .flat_map(|(op, keys)| match keys {
            Value::Object(keys) => keys.keys().map(|k| format!("{op} {k}")).collect(),
            _ => vec![op.clone()],
        })
        .collect();
    named.sort();
    named
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "arn:aws:iam::111122223333:role/eksctl-prod-ServiceRole";

    fn verdict(doc: serde_json::Value) -> TrustVerdict {
        TrustPolicy::parse(&doc.to_string())
            .unwrap()
            .verdict(CLUSTER)
    }

    #[test]
    fn the_principal_its_root_or_its_account_is_trusted() {
        for aws in [
            serde_json::json!(CLUSTER),
            serde_json::json!("arn:aws:iam::111122223333:root"),
            serde_json::json!(["arn:aws:iam::999999999999:root", "111122223333"]),
            serde_json::json!("*"),
        ] {
            let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [
                {"Sid": "Cluster", "Effect": "Allow", "Principal": {"AWS": aws}, "Action": ["sts:AssumeRole"]}
            ]});
            assert_eq!(
                verdict(doc),
                TrustVerdict::Allowed {
                    statement: "statement 'Cluster'".into(),
                    conditions: vec![]
                },
                "{aws}"
            );
        }
    }

    #[test]
    fn other_principals_actions_and_effects_do_not_count() {
        let docs = [
            serde_json::json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/other"}, "Action": "sts:AssumeRole"}}),
            serde_json::json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": CLUSTER}, "Action": "sts:TagSession"}]}),
            serde_json::json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
            serde_json::json!({"Statement": [{"Effect": "Allow", "Principal": {"Federated": CLUSTER}, "Action": "sts:AssumeRoleWithWebIdentity"}]}),
        ];
        for doc in docs {
            assert_eq!(verdict(doc.clone()), TrustVerdict::Missing, "{doc}");
        }
    }

    #[test]
    fn a_deny_wins_and_conditions_are_named_without_values() {
        let doc = serde_json::json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": CLUSTER}, "Action": "sts:*",
             "Condition": {"StringEquals": {"sts:ExternalId": "do-not-show"}, "Bool": {"aws:MultiFactorAuthPresent": "false"}}},
        ]});
        let TrustVerdict::Allowed {
            statement,
            conditions,
        } = verdict(doc.clone())
        else {
            panic!("allowed");
        };
        assert_eq!(statement, "statement 1");
        assert_eq!(
            conditions,
            [
                "Bool aws:MultiFactorAuthPresent",
                "StringEquals sts:ExternalId"
            ]
        );
        let mut denied = doc;
        denied["Statement"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "*"}));
        assert_eq!(
            verdict(denied),
            TrustVerdict::Denied {
                statement: "statement 2".into()
            }
        );
    }

    #[test]
    fn a_document_that_is_not_a_policy_is_an_error() {
        assert!(TrustPolicy::parse("not json").is_err());
        assert!(TrustPolicy::parse("{\"Version\": \"2012-10-17\"}").is_err());
    }

    #[test]
    fn the_statement_to_add_names_the_principal() {
        let add: serde_json::Value = serde_json::from_str(&statement_to_add(CLUSTER)).unwrap();
        let policy = serde_json::json!({"Statement": [add]});
        assert!(matches!(verdict(policy), TrustVerdict::Allowed { .. }));
    }
}
