//! `shippable.yml`: the parts Berth acts on (`integrations: hub:`, `build: pre_ci_boot:`,
//! `resources:`), read strictly with errors that point at the line and column; everything else
//! in the file is tolerated. Branch rules (`only` / `except`, with wildcards) decide which hub
//! entries apply to a branch or release tag.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::{IntegrationType, validate_region};

/// A problem in the file, where it is, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YmlError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for YmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Which branches an entry applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchRule {
    Only(Vec<String>),
    Except(Vec<String>),
}

impl BranchRule {
    /// Whether a branch (or release tag) name passes the rule. Patterns take `*` (any run of
    /// characters, `/` included) and `?` (one character): `v1.*`, `feature/*`.
    pub fn applies(&self, name: &str) -> bool {
        match self {
            BranchRule::Only(p) => p.iter().any(|p| wildcard(p, name)),
            BranchRule::Except(p) => !p.iter().any(|p| wildcard(p, name)),
        }
    }
}

fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative matcher with backtracking to the last `*`.
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubEntry {
    pub integration_name: String,
    pub kind: IntegrationType,
    pub region: Option<String>,
    pub branches: Option<BranchRule>,
    pub agent_only: bool,
    /// 1-based line of the entry in the file, for messages about it (block-style YAML).
    pub line: Option<usize>,
}

impl HubEntry {
    pub fn applies(&self, branch: &str) -> bool {
        self.branches.as_ref().is_none_or(|b| b.applies(branch))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreCiBoot {
    pub image_name: String,
    pub image_tag: Option<String>,
    pub pull: Option<bool>,
    pub options: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceKind {
    /// `sourceName` (image without tag) and `versionName` (tag, default `latest`).
    Image {
        source_name: String,
        version_name: String,
    },
    Integration,
    CliConfig {
        region: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub name: String,
    pub integration: String,
    pub kind: ResourceKind,
}

impl Resource {
    /// The environment-variable prefix jobs see: upper-cased, non-alphanumerics removed.
    pub fn env_prefix(&self) -> String {
        self.name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShippableYml {
    pub hub: Vec<HubEntry>,
    pub pre_ci_boot: Option<PreCiBoot>,
    pub resources: Vec<Resource>,
    /// What was read but not used (other integration kinds), for the job log.
    pub notes: Vec<String>,
}

// ---- the file as serde sees it ----

fn region<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let r = Option::<String>::deserialize(d)?;
    if let Some(r) = &r {
        validate_region("region", r)
            .map_err(|e| serde::de::Error::custom(format!("region: {}", e.message)))?;
    }
    Ok(r)
}

fn kind<'de, D: serde::Deserializer<'de>>(d: D) -> Result<IntegrationType, D::Error> {
    let t = String::deserialize(d)?;
    IntegrationType::parse(&t).map_err(|_| {
        serde::de::Error::custom(format!(
            "type: '{t}' is not a hub integration type Berth knows (expected ecr)"
        ))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBranches {
    only: Option<Vec<String>>,
    except: Option<Vec<String>>,
}

impl TryFrom<RawBranches> for BranchRule {
    type Error = String;
    fn try_from(b: RawBranches) -> Result<Self, String> {
        match (b.only, b.except) {
            (Some(o), None) => Ok(BranchRule::Only(o)),
            (None, Some(e)) => Ok(BranchRule::Except(e)),
            (Some(_), Some(_)) => Err("branches: takes either `only` or `except`, not both".into()),
            (None, None) => Err("branches: needs `only` or `except`".into()),
        }
    }
}

fn branches<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<BranchRule>, D::Error> {
    match Option::<RawBranches>::deserialize(d)? {
        Some(raw) => BranchRule::try_from(raw)
            .map(Some)
            .map_err(serde::de::Error::custom),
        None => Ok(None),
    }
}

/// Where each `integrations: hub:` list item starts (block style). A flow-style list finds none,
/// and the caller then reports no lines rather than wrong ones.
fn hub_entry_lines(text: &str) -> Vec<usize> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out = Vec::new();
    let mut in_integrations = false;
    let mut hub_indent: Option<usize> = None;
    let mut item_indent: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let ind = indent(line);
        if ind == 0 {
            in_integrations = t.starts_with("integrations:");
            hub_indent = None;
            item_indent = None;
            continue;
        }
        if !in_integrations {
            continue;
        }
        match hub_indent {
            None if t.starts_with("hub:") => hub_indent = Some(ind),
            None => {}
            Some(h) => {
                let is_item = t.starts_with("- ") || t == "-";
                if ind < h || (ind == h && !is_item) {
                    hub_indent = (t.starts_with("hub:")).then_some(ind);
                    item_indent = None;
                    continue;
                }
                if is_item && item_indent.is_none_or(|it| it == ind) {
                    item_indent = Some(ind);
                    out.push(i + 1);
                }
            }
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHub {
    #[serde(rename = "integrationName")]
    integration_name: String,
    #[serde(rename = "type", deserialize_with = "kind")]
    kind: IntegrationType,
    #[serde(default, deserialize_with = "region")]
    region: Option<String>,
    #[serde(default, deserialize_with = "branches")]
    branches: Option<BranchRule>,
    #[serde(default)]
    agent_only: bool,
}

#[derive(Deserialize)]
struct RawIntegrations {
    #[serde(default)]
    hub: Vec<RawHub>,
    #[serde(flatten)]
    other: BTreeMap<String, yaml_serde::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPreCiBoot {
    image_name: String,
    image_tag: Option<yaml_serde::Value>,
    pull: Option<bool>,
    options: Option<String>,
}

#[derive(Deserialize)]
struct RawBuild {
    pre_ci_boot: Option<RawPreCiBoot>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawVersion {
    source_name: Option<String>,
    version_name: Option<yaml_serde::Value>,
    region: Option<String>,
}

#[derive(Deserialize)]
struct RawResource {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    integration: Option<String>,
    #[serde(rename = "versionTemplate")]
    version_template: Option<RawVersion>,
    pointer: Option<RawVersion>,
    seed: Option<RawVersion>,
}

fn resources<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Resource>, D::Error> {
    use serde::de::Error;
    let raw = Option::<Vec<RawResource>>::deserialize(d)?.unwrap_or_default();
    let mut out: Vec<Resource> = Vec::new();
    for r in raw {
        if out.iter().any(|o| o.name == r.name) {
            return Err(D::Error::custom(format!(
                "resource name '{}' is used twice",
                r.name
            )));
        }
        let integration = match (r.kind.as_str(), r.integration) {
            ("image" | "integration" | "cliConfig", Some(i)) => i,
            ("image" | "integration" | "cliConfig", None) => {
                return Err(D::Error::custom(format!(
                    "resource '{}' of type {} needs `integration`",
                    r.name, r.kind
                )));
            }
            // Other resource types (gitRepo, params, …) are not Berth's to read.
            _ => continue,
        };
        let text = |v: &Option<yaml_serde::Value>| match v {
            Some(yaml_serde::Value::String(s)) => Some(s.clone()),
            Some(yaml_serde::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let kind = match r.kind.as_str() {
            "image" => {
                let template = r.version_template.as_ref().or(r.pointer.as_ref());
                let source_name = template.and_then(|t| t.source_name.clone()).ok_or_else(|| {
                    D::Error::custom(format!("image resource '{}' needs versionTemplate.sourceName (or pointer.sourceName)", r.name))
                })?;
                let version_name = r
                    .version_template
                    .as_ref()
                    .and_then(|t| text(&t.version_name))
                    .or_else(|| r.seed.as_ref().and_then(|s| text(&s.version_name)))
                    .unwrap_or_else(|| "latest".into());
                ResourceKind::Image {
                    source_name,
                    version_name,
                }
            }
            "cliConfig" => {
                let region = r
                    .pointer
                    .as_ref()
                    .or(r.version_template.as_ref())
                    .and_then(|p| p.region.clone());
                if let Some(reg) = &region {
                    validate_region("region", reg).map_err(|e| D::Error::custom(e.message))?;
                }
                ResourceKind::CliConfig { region }
            }
            _ => ResourceKind::Integration,
        };
        out.push(Resource {
            name: r.name,
            integration,
            kind,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct RawFile {
    integrations: Option<RawIntegrations>,
    build: Option<RawBuild>,
    #[serde(default, deserialize_with = "resources")]
    resources: Vec<Resource>,
}

/// Parses a `shippable.yml`. Alias bombs are refused by the YAML reader's repetition limit.
pub fn parse(text: &str) -> Result<ShippableYml, YmlError> {
    if text.trim().is_empty() {
        return Ok(ShippableYml::default());
    }
    let raw: RawFile = yaml_serde::from_str(text).map_err(|e| {
        let loc = e.location();
        let message = e.to_string();
        // The reader appends " at line L column C"; the location is reported separately.
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        YmlError {
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message,
        }
    })?;
    let mut notes = Vec::new();
    let hub = match raw.integrations {
        Some(i) => {
            for kind in i.other.keys() {
                notes.push(format!(
                    "integrations.{kind}: not a registry integration; Berth ignores it"
                ));
            }
            let lines = hub_entry_lines(text);
            let lines = (lines.len() == i.hub.len()).then_some(lines);
            i.hub
                .into_iter()
                .enumerate()
                .map(|(n, h)| HubEntry {
                    integration_name: h.integration_name,
                    kind: h.kind,
                    region: h.region,
                    branches: h.branches,
                    agent_only: h.agent_only,
                    line: lines.as_ref().map(|l| l[n]),
                })
                .collect()
        }
        None => Vec::new(),
    };
    let pre_ci_boot = raw.build.and_then(|b| b.pre_ci_boot).map(|p| PreCiBoot {
        image_name: p.image_name,
        image_tag: match p.image_tag {
            Some(yaml_serde::Value::String(s)) => Some(s),
            Some(yaml_serde::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        },
        pull: p.pull,
        options: p.options,
    });
    Ok(ShippableYml {
        hub,
        pre_ci_boot,
        resources: raw.resources,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
language: node_js
build:
  pre_ci_boot:
    image_name: 123456789012.dkr.ecr.us-east-1.amazonaws.com/ci-image
    image_tag: tip
    pull: true
    options: "-e HOME=/root"
  ci:
    - npm test
integrations:
  hub:
    - integrationName: ecr-prod
      type: ecr
      region: us-west-2
      branches:
        only: [master, "v1.*"]
    - integrationName: ecr-dev
      type: ecr
      branches:
        except: [master]
    - integrationName: ecr-all
      type: ecr
      agent_only: true
  notifications:
    - integrationName: slack
      type: slack
resources:
  - name: my-image
    type: image
    integration: ecr-prod
    versionTemplate:
      sourceName: 123456789012.dkr.ecr.us-west-2.amazonaws.com/app
  - name: old-image
    type: image
    integration: ecr-prod
    pointer:
      sourceName: 123456789012.dkr.ecr.us-west-2.amazonaws.com/old
    seed:
      versionName: "1.2"
  - name: cli
    type: cliConfig
    integration: ecr-prod
    pointer:
      region: eu-west-1
  - name: repo
    type: gitRepo
"#;

    #[test]
    fn hub_entries_know_their_lines() {
        let text = "language: none\nintegrations:\n  notifications:\n    - integrationName: email\n      type: email\n  hub:\n    # comment\n    - integrationName: a\n      type: ecr\n\n    - integrationName: b\n      type: ecr\n      branches:\n        only:\n          - master\nbuild:\n  ci:\n    - make\n";
        let y = parse(text).unwrap();
        assert_eq!(
            y.hub.iter().map(|h| h.line).collect::<Vec<_>>(),
            [Some(8), Some(11)]
        );
        let flow = parse("integrations:\n  hub: [{integrationName: a, type: ecr}]\n").unwrap();
        assert_eq!(flow.hub[0].line, None);
        let same_indent = parse("integrations:\n  hub:\n  - integrationName: a\n    type: ecr\n  - integrationName: b\n    type: ecr\n").unwrap();
        assert_eq!(
            same_indent.hub.iter().map(|h| h.line).collect::<Vec<_>>(),
            [Some(3), Some(5)]
        );
    }

    #[test]
    fn reads_what_berth_needs_and_tolerates_the_rest() {
        let y = parse(FILE).unwrap();
        assert_eq!(y.hub.len(), 3);
        assert_eq!(y.hub[0].region.as_deref(), Some("us-west-2"));
        assert!(y.hub[2].agent_only);
        assert_eq!(y.notes.len(), 1);
        let boot = y.pre_ci_boot.unwrap();
        assert_eq!(
            (boot.image_tag.as_deref(), boot.pull),
            (Some("tip"), Some(true))
        );
        assert_eq!(y.resources.len(), 3, "gitRepo is not Berth's");
        assert_eq!(
            y.resources[1].kind,
            ResourceKind::Image {
                source_name: "123456789012.dkr.ecr.us-west-2.amazonaws.com/old".into(),
                version_name: "1.2".into()
            }
        );
        assert!(
            matches!(&y.resources[0].kind, ResourceKind::Image { version_name, .. } if version_name == "latest")
        );
        assert_eq!(y.resources[0].env_prefix(), "MYIMAGE");
    }

    #[test]
    fn branch_rules_with_wildcards_and_tags() {
        let y = parse(FILE).unwrap();
        let applies = |b: &str| {
            y.hub
                .iter()
                .filter(|h| h.applies(b))
                .map(|h| h.integration_name.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(applies("master"), ["ecr-prod", "ecr-all"]);
        assert_eq!(applies("v1.4.2"), ["ecr-prod", "ecr-dev", "ecr-all"]);
        assert_eq!(applies("feature/x"), ["ecr-dev", "ecr-all"]);
        assert!(wildcard("feature/*", "feature/a/b"));
        assert!(wildcard("v?.0", "v2.0") && !wildcard("v?.0", "v10.0"));
        assert!(!wildcard("master", "master2"));
    }

    fn err(text: &str) -> YmlError {
        parse(text).unwrap_err()
    }

    #[test]
    fn errors_point_at_the_place_and_say_what_was_expected() {
        let e = err("integrations:\n  hub:\n    - type: ecr\n");
        assert!(e.message.contains("integrationName"), "{e}");
        assert_eq!(e.line, Some(3));
        let e = err(
            "integrations:\n  hub:\n    - integrationName: a\n      type: ecr\n      branches:\n        only: [a]\n        except: [b]\n",
        );
        assert!(e.message.contains("either `only` or `except`"), "{e}");
        assert!(
            e.message.starts_with("integrations.hub[0]"),
            "the entry is named: {e}"
        );
        assert_eq!(e.line, Some(3), "the entry's line: {e:?}");
        let e = err(
            "integrations:\n  hub:\n    - integrationName: a\n      type: ecr\n      region: mars\n",
        );
        assert!(
            e.message.contains("not an AWS region") && e.message.contains("hub[0]: region:"),
            "{e}"
        );
        assert_eq!(e.line, Some(3), "{e:?}");
        let e = err("integrations:\n  hub:\n    - integrationName: a\n      type: dockerhubx\n");
        assert!(e.message.contains("dockerhubx"), "{e}");
        let e = err(
            "resources:\n  - name: a\n    type: integration\n    integration: x\n  - name: a\n    type: integration\n    integration: y\n",
        );
        assert!(e.message.contains("used twice"), "{e}");
        let e = err("integrations: [\n");
        assert!(e.line.is_some(), "{e:?}");
    }

    #[test]
    fn alias_bombs_are_refused() {
        // Nine maps deep, nine references each: 9^9 nodes once expanded.
        let mut bomb = String::from("a: &a {x: lol}\n");
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        for w in names.windows(2) {
            let refs: Vec<String> = (1..=9).map(|k| format!("{}{k}: *{}", w[1], w[0])).collect();
            bomb.push_str(&format!("{}: &{} {{{}}}\n", w[1], w[1], refs.join(", ")));
        }
        bomb.push_str("integrations: *j\n");
        let e = parse(&bomb).unwrap_err();
        assert!(e.message.contains("limit"), "{e}");
        // Aliases under keys Berth does not read are never expanded at all.
        let harmless = bomb.replace("integrations: *j\n", "");
        assert!(parse(&harmless).is_ok());
    }
}
