//! Who may call the local ECR: users with access keys, roles that trusted principals may assume,
//! and a simple allow-list policy per user or role (actions and repository patterns). Loaded from
//! `iam.toml`; on first start a demo user and a demo role are written there, and the demo user's
//! keys as profile `berth-local` in an AWS shared-credentials file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ids;

pub const DEMO_PROFILE: &str = "berth-local";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// `ecr:*`, `ecr:BatchGetImage`, `sts:AssumeRole`, `*`.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Repository names or patterns ending in `*`; empty means every repository.
    #[serde(default)]
    pub repositories: Vec<String>,
}

impl Policy {
    /// True when some allowed ECR action may touch `repository` (what a listing may show).
    pub fn covers_repository(&self, repository: &str) -> bool {
        let ecr = self
            .actions
            .iter()
            .any(|a| a == "*" || a.starts_with("ecr:"));
        ecr && self.matches_repository(repository)
    }

    pub fn allows(&self, action: &str, repository: Option<&str>) -> bool {
        let service = action.split(':').next().unwrap_or("");
        let action_ok = self.actions.iter().any(|a| {
            a == "*" || a == action || (a.ends_with(":*") && a.trim_end_matches(":*") == service)
        });
        action_ok && repository.is_none_or(|r| self.matches_repository(r))
    }

    fn matches_repository(&self, repository: &str) -> bool {
        self.repositories.is_empty()
            || self.repositories.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => repository.starts_with(prefix),
                None => p == repository,
            })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    #[serde(default)]
    pub policy: Policy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub name: String,
    /// Principal ARNs allowed to assume the role (`arn:aws:iam::<acct>:user/<name>`), or `*`.
    #[serde(default)]
    pub trust: Vec<String>,
    /// When set, AssumeRole must present this ExternalId.
    pub external_id: Option<String>,
    /// For AssumeRoleWithWebIdentity: the token subjects allowed (`*` suffix for a prefix);
    /// empty allows any subject of a trusted provider.
    #[serde(default)]
    pub web_identity_subjects: Vec<String>,
    #[serde(default)]
    pub policy: Policy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamConfig {
    pub account_id: String,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub oidc_providers: Vec<crate::oidc::OidcProvider>,
}

/// The caller behind a verified signature.
#[derive(Debug, Clone)]
pub struct Identity {
    pub account_id: String,
    pub arn: String,
    pub user_id: String,
    pub policy: Policy,
}

impl IamConfig {
    /// A demo user allowed everything in ECR, to assume the demo role and to read roles' trust
    /// policies, and that role.
    pub fn demo(account_id: &str) -> IamConfig {
        IamConfig {
            account_id: account_id.to_owned(),
            users: vec![User {
                name: "demo".into(),
                access_key_id: ids::access_key_id("AKIA"),
                secret_access_key: ids::secret_access_key(),
                policy: Policy {
                    actions: vec![
                        "ecr:*".into(),
                        "sts:AssumeRole".into(),
                        "iam:GetRole".into(),
                    ],
                    repositories: vec![],
                },
            }],
            roles: vec![Role {
                name: "demo-role".into(),
                trust: vec![format!("arn:aws:iam::{account_id}:user/demo")],
                external_id: None,
                web_identity_subjects: vec![],
                policy: Policy {
                    actions: vec!["ecr:*".into()],
                    repositories: vec![],
                },
            }],
            oidc_providers: vec![],
        }
    }

    pub fn user_by_key(&self, access_key_id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.access_key_id == access_key_id)
    }

    pub fn user_arn(&self, user: &User) -> String {
        format!("arn:aws:iam::{}:user/{}", self.account_id, user.name)
    }

    pub fn role_arn(&self, role: &Role) -> String {
        format!("arn:aws:iam::{}:role/{}", self.account_id, role.name)
    }

    pub fn role_by_arn(&self, arn: &str) -> Option<&Role> {
        self.roles.iter().find(|r| self.role_arn(r) == arn)
    }

    pub fn user_by_name(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    pub fn role_by_name(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    pub fn user_identity(&self, user: &User) -> Identity {
        Identity {
            account_id: self.account_id.clone(),
            arn: self.user_arn(user),
            user_id: format!("AIDA{}", &user.access_key_id[4..].to_ascii_uppercase()),
            policy: user.policy.clone(),
        }
    }

    pub fn session_identity(
        &self,
        role: &Role,
        session_name: &str,
        access_key_id: &str,
    ) -> Identity {
        Identity {
            account_id: self.account_id.clone(),
            arn: format!(
                "arn:aws:sts::{}:assumed-role/{}/{session_name}",
                self.account_id, role.name
            ),
            user_id: format!("AROA{}:{session_name}", &access_key_id[4..]),
            policy: role.policy.clone(),
        }
    }

    /// Loads `iam.toml`, or writes the demo configuration (and its credentials file) first.
    pub fn load_or_seed(
        dir: &Path,
        account_id: &str,
        region: &str,
    ) -> std::io::Result<(IamConfig, bool)> {
        let path = dir.join("iam.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let config = toml::from_str(&text)
                    .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
                Ok((config, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let config = IamConfig::demo(account_id);
                let text = toml::to_string_pretty(&config).map_err(std::io::Error::other)?;
                write_private(
                    &path,
                    format!(
                        "# Local ECR users, roles and policies (demo seed; edit freely).\n{text}"
                    ),
                )?;
                let user = &config.users[0];
                write_private(
                    &dir.join("credentials"),
                    format!(
                        "[{DEMO_PROFILE}]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = {region}\n",
                        user.access_key_id, user.secret_access_key
                    ),
                )?;
                Ok((config, true))
            }
            Err(e) => Err(e),
        }
    }
}

/// Writes a file atomically, readable by the owner only.
pub fn write_private(path: &Path, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    berth_files::write_atomically(path, bytes.as_ref(), berth_files::Access::Private)
}

/// When `iam.toml` in `dir` was last modified, RFC 3339 (now when that cannot be read).
pub(crate) fn written_at(dir: &Path) -> String {
    let modified = std::fs::metadata(dir.join("iam.toml"))
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| std::time::SystemTime::now());
    time::OffsetDateTime::from(modified)
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::from(modified))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_allow_by_action_and_repository_pattern() {
        let p = Policy {
            actions: vec!["ecr:BatchGetImage".into(), "sts:*".into()],
            repositories: vec!["team/*".into(), "base".into()],
        };
        assert!(p.allows("ecr:BatchGetImage", Some("team/app")));
        assert!(p.allows("ecr:BatchGetImage", Some("base")));
        assert!(!p.allows("ecr:BatchGetImage", Some("other")));
        assert!(!p.allows("ecr:PutImage", Some("team/app")));
        assert!(p.allows("sts:AssumeRole", None));
        let all = Policy {
            actions: vec!["ecr:*".into()],
            repositories: vec![],
        };
        assert!(all.allows("ecr:PutImage", Some("anything")));
        assert!(!all.allows("sts:AssumeRole", None));
    }
}
