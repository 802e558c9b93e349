//! What a CI build says about the image it made: the git facts its environment carries (GitHub
//! Actions, GitLab CI, Jenkins, CircleCI, Shippable), and the issue-tracker keys in the branch
//! name, the commit message and the pull request's title, found by a prefix list (`DEV,OPS`)
//! or a regular expression (`/[A-Z]{2,}-\d+/`).

use berth_api::GitFacts;

use crate::FieldError;

/// Reads the git facts of the CI system whose variables are set; `None` when none is.
pub fn from_ci_env(var: impl Fn(&str) -> Option<String>) -> Option<GitFacts> {
    let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
    if get("GITHUB_ACTIONS").is_some() {
        return Some(github(&get));
    }
    if get("GITLAB_CI").is_some() {
        return Some(gitlab(&get));
    }
    if get("CIRCLECI").is_some() {
        return Some(circleci(&get));
    }
    if get("SHIPPABLE").is_some() {
        return Some(shippable(&get));
    }
    if get("JENKINS_URL").is_some() {
        return Some(jenkins(&get));
    }
    None
}

fn github(get: &impl Fn(&str) -> Option<String>) -> GitFacts {
    let server = get("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
    let repository = get("GITHUB_REPOSITORY");
    let repository_url = repository.as_ref().map(|r| format!("{server}/{r}"));
    // `refs/pull/42/merge` on pull_request events.
    let pull_request = get("GITHUB_REF")
        .and_then(|r| {
            r.strip_prefix("refs/pull/")
                .map(|p| p.split('/').next().unwrap_or("").to_owned())
        })
        .filter(|n| !n.is_empty());
    GitFacts {
        ci: Some("github-actions".into()),
        commit: get("GITHUB_SHA"),
        branch: get("GITHUB_HEAD_REF").or_else(|| get("GITHUB_REF_NAME")),
        pull_request_url: match (&repository_url, &pull_request) {
            (Some(url), Some(n)) => Some(format!("{url}/pull/{n}")),
            _ => None,
        },
        build_url: match (&repository_url, get("GITHUB_RUN_ID")) {
            (Some(url), Some(run)) => Some(format!("{url}/actions/runs/{run}")),
            _ => None,
        },
        repository_url,
        author: get("GITHUB_ACTOR"),
        pull_request,
        ..GitFacts::default()
    }
}

fn gitlab(get: &impl Fn(&str) -> Option<String>) -> GitFacts {
    let project = get("CI_PROJECT_URL");
    let pull_request = get("CI_MERGE_REQUEST_IID");
    GitFacts {
        ci: Some("gitlab-ci".into()),
        commit: get("CI_COMMIT_SHA"),
        branch: get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME").or_else(|| get("CI_COMMIT_REF_NAME")),
        author: get("CI_COMMIT_AUTHOR").or_else(|| get("GITLAB_USER_LOGIN")),
        message: get("CI_COMMIT_MESSAGE"),
        pull_request_url: match (&project, &pull_request) {
            (Some(url), Some(n)) => Some(format!("{url}/-/merge_requests/{n}")),
            _ => None,
        },
        pull_request_title: get("CI_MERGE_REQUEST_TITLE"),
        pull_request,
        build_url: get("CI_PIPELINE_URL").or_else(|| get("CI_JOB_URL")),
        repository_url: project,
    }
}

fn jenkins(get: &impl Fn(&str) -> Option<String>) -> GitFacts {
    GitFacts {
        ci: Some("jenkins".into()),
        commit: get("GIT_COMMIT"),
        branch: get("CHANGE_BRANCH")
            .or_else(|| get("BRANCH_NAME"))
            .or_else(|| get("GIT_BRANCH").map(|b| b.trim_start_matches("origin/").to_owned())),
        repository_url: get("GIT_URL"),
        author: get("CHANGE_AUTHOR").or_else(|| get("GIT_AUTHOR_NAME")),
        message: None,
        pull_request: get("CHANGE_ID"),
        pull_request_url: get("CHANGE_URL"),
        pull_request_title: get("CHANGE_TITLE"),
        build_url: get("BUILD_URL"),
    }
}

fn circleci(get: &impl Fn(&str) -> Option<String>) -> GitFacts {
    let pull_request_url = get("CIRCLE_PULL_REQUEST");
    GitFacts {
        ci: Some("circleci".into()),
        commit: get("CIRCLE_SHA1"),
        branch: get("CIRCLE_BRANCH"),
        repository_url: get("CIRCLE_REPOSITORY_URL"),
        author: get("CIRCLE_USERNAME"),
        message: None,
        pull_request: get("CIRCLE_PR_NUMBER").or_else(|| {
            pull_request_url
                .as_deref()
                .and_then(|u| u.rsplit('/').next())
                .map(str::to_owned)
        }),
        pull_request_url,
        pull_request_title: None,
        build_url: get("CIRCLE_BUILD_URL"),
    }
}

fn shippable(get: &impl Fn(&str) -> Option<String>) -> GitFacts {
    let pull_request = get("PULL_REQUEST").filter(|p| p != "false");
    let repository_url = get("REPOSITORY_URL");
    GitFacts {
        ci: Some("shippable".into()),
        commit: get("COMMIT"),
        branch: get("HEAD_BRANCH").or_else(|| get("BRANCH")),
        author: get("COMMITTER"),
        message: get("COMMIT_MESSAGE"),
        pull_request_url: get("PULL_REQUEST_REPO_FULL_NAME")
            .zip(pull_request.clone())
            .map(|(repo, n)| format!("https://github.com/{repo}/pull/{n}")),
        pull_request,
        pull_request_title: None,
        build_url: get("BUILD_URL"),
        repository_url,
    }
}

/// How issue keys are recognised.
#[derive(Debug, Clone)]
pub enum IssueRule {
    /// Keys with one of these project prefixes: `DEV-12`.
    Prefixes(Vec<String>),
    Pattern(regex_lite::Regex),
}

/// What Jira, YouTrack, Linear and others print: `PROJ-123`.
pub const DEFAULT_ISSUE_PATTERN: &str = r"\b[A-Z][A-Z0-9]+-[0-9]+\b";

impl IssueRule {
    /// `DEV,OPS`: letters and digits, starting with a letter.
    pub fn prefixes(field: &str, list: &str) -> Result<IssueRule, FieldError> {
        let prefixes: Vec<String> = list
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        let ok = |p: &String| {
            p.starts_with(|c: char| c.is_ascii_alphabetic())
                && p.chars().all(|c| c.is_ascii_alphanumeric())
                && p.len() <= 32
        };
        if prefixes.is_empty() || !prefixes.iter().all(ok) {
            return Err(FieldError::new(
                field,
                format!("'{list}' is not a comma-separated list of issue prefixes such as DEV,OPS"),
            ));
        }
        Ok(IssueRule::Prefixes(prefixes))
    }

    /// `/[A-Z]{2,}-\d+/` (the slashes are optional).
    pub fn pattern(field: &str, text: &str) -> Result<IssueRule, FieldError> {
        let inner = text
            .strip_prefix('/')
            .and_then(|t| t.strip_suffix('/'))
            .unwrap_or(text);
        if inner.is_empty() || inner.len() > 256 {
            return Err(FieldError::new(
                field,
                "must be a regular expression of 1 to 256 characters",
            ));
        }
        regex_lite::Regex::new(inner)
            .map(IssueRule::Pattern)
            .map_err(|e| {
                FieldError::new(field, format!("'{text}' is not a regular expression: {e}"))
            })
    }

    pub fn default_rule() -> IssueRule {
        IssueRule::Pattern(regex_lite::Regex::new(DEFAULT_ISSUE_PATTERN).expect("a valid pattern"))
    }

    /// The keys found in `texts`, each once, in the order first seen.
    pub fn keys(&self, texts: &[&str]) -> Vec<String> {
        let mut found: Vec<String> = Vec::new();
        let mut push = |k: String| {
            if !found.contains(&k) {
                found.push(k);
            }
        };
        for text in texts {
            match self {
                IssueRule::Pattern(re) => {
                    re.find_iter(text).for_each(|m| push(m.as_str().to_owned()))
                }
                IssueRule::Prefixes(prefixes) => {
                    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
                        let Some((prefix, number)) = word.split_once('-') else {
                            continue;
                        };
                        let number: String =
                            number.chars().take_while(char::is_ascii_digit).collect();
                        if !number.is_empty()
                            && prefixes.iter().any(|p| p.eq_ignore_ascii_case(prefix))
                        {
                            push(format!("{}-{number}", prefix.to_ascii_uppercase()));
                        }
                    }
                }
            }
        }
        found
    }
}

/// The tracker's page for `key`: `base` ends where the key goes (`https://jira.example.com/browse/`).
pub fn issue_url(base: &str, key: &str) -> String {
    if base.ends_with('/') || base.ends_with('=') {
        format!("{base}{key}")
    } else {
        format!("{base}/{key}")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn facts(vars: &[(&str, &str)]) -> GitFacts {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_ci_env(|k| map.get(k).cloned()).expect("a CI system")
    }

    #[test]
    fn each_ci_systems_variables_give_the_same_facts() {
        let gh = facts(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SHA", "abc123"),
            ("GITHUB_REF", "refs/pull/42/merge"),
            ("GITHUB_HEAD_REF", "feature/DEV-7-login"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/web"),
            ("GITHUB_ACTOR", "ana"),
            ("GITHUB_RUN_ID", "99"),
        ]);
        assert_eq!(gh.commit.as_deref(), Some("abc123"));
        assert_eq!(gh.branch.as_deref(), Some("feature/DEV-7-login"));
        assert_eq!(gh.pull_request.as_deref(), Some("42"));
        assert_eq!(
            gh.pull_request_url.as_deref(),
            Some("https://github.com/acme/web/pull/42")
        );
        assert_eq!(
            gh.build_url.as_deref(),
            Some("https://github.com/acme/web/actions/runs/99")
        );

        let gl = facts(&[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", "def456"),
            ("CI_COMMIT_REF_NAME", "main"),
            ("CI_PROJECT_URL", "https://gitlab.example.com/acme/web"),
            ("CI_COMMIT_MESSAGE", "Fix OPS-3 and DEV-7"),
            ("CI_MERGE_REQUEST_IID", "5"),
            ("CI_MERGE_REQUEST_TITLE", "DEV-8: login"),
            (
                "CI_PIPELINE_URL",
                "https://gitlab.example.com/acme/web/-/pipelines/1",
            ),
        ]);
        assert_eq!(
            gl.pull_request_url.as_deref(),
            Some("https://gitlab.example.com/acme/web/-/merge_requests/5")
        );
        assert_eq!(gl.message.as_deref(), Some("Fix OPS-3 and DEV-7"));

        let jk = facts(&[
            ("JENKINS_URL", "https://jenkins/"),
            ("GIT_COMMIT", "0a0b"),
            ("GIT_BRANCH", "origin/release"),
            ("GIT_URL", "https://git/acme/web.git"),
            ("CHANGE_ID", "12"),
            ("CHANGE_URL", "https://github.com/acme/web/pull/12"),
            ("BUILD_URL", "https://jenkins/job/web/3/"),
        ]);
        assert_eq!(
            (jk.branch.as_deref(), jk.pull_request.as_deref()),
            (Some("release"), Some("12"))
        );

        let cc = facts(&[
            ("CIRCLECI", "true"),
            ("CIRCLE_SHA1", "c1"),
            ("CIRCLE_BRANCH", "DEV-9-x"),
            ("CIRCLE_PULL_REQUEST", "https://github.com/acme/web/pull/77"),
            ("CIRCLE_BUILD_URL", "https://circleci.com/gh/acme/web/5"),
        ]);
        assert_eq!(cc.pull_request.as_deref(), Some("77"));

        let sh = facts(&[
            ("SHIPPABLE", "true"),
            ("COMMIT", "5h1p"),
            ("BRANCH", "master"),
            ("COMMITTER", "ana"),
            ("COMMIT_MESSAGE", "OPS-1 deploy"),
            ("PULL_REQUEST", "false"),
            ("BUILD_URL", "https://app.shippable.com/runs/1"),
        ]);
        assert_eq!(
            (sh.commit.as_deref(), sh.pull_request),
            (Some("5h1p"), None)
        );
        assert!(from_ci_env(|_| None).is_none());
    }

    #[test]
    fn issue_keys_by_prefix_or_pattern() {
        let texts = [
            "feature/dev-7-login",
            "Fix OPS-3, DEV-7 and ABC-1",
            "DEV-8: login",
        ];
        let by_prefix = IssueRule::prefixes("issue_prefixes", "DEV,OPS").unwrap();
        assert_eq!(by_prefix.keys(&texts), ["DEV-7", "OPS-3", "DEV-8"]);
        let by_pattern = IssueRule::pattern("issue_pattern", r"/[A-Z]{2,}-\d+/").unwrap();
        assert_eq!(
            by_pattern.keys(&texts),
            ["OPS-3", "DEV-7", "ABC-1", "DEV-8"]
        );
        assert_eq!(
            IssueRule::default_rule().keys(&["no keys here"]),
            Vec::<String>::new()
        );
        assert_eq!(
            IssueRule::prefixes("issue_prefixes", "DEV,2X")
                .unwrap_err()
                .field,
            "issue_prefixes"
        );
        assert_eq!(
            IssueRule::pattern("issue_pattern", "/([A-Z/")
                .unwrap_err()
                .field,
            "issue_pattern"
        );
        assert_eq!(
            issue_url("https://jira.example.com/browse/", "DEV-7"),
            "https://jira.example.com/browse/DEV-7"
        );
    }
}
