//! The Docker client configuration (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`):
//! read without losing a key, refused when malformed, written atomically with mode 0600. Beside
//! it, `berth-logins.json` records what `berth login` added, so `berth logout` removes exactly that.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub fn dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let home = std::env::var_os("HOME").context("neither DOCKER_CONFIG nor HOME is set")?;
    Ok(PathBuf::from(home).join(".docker"))
}

fn read_object(path: &Path) -> anyhow::Result<Map<String, Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => bail!(
            "refusing to change {}: it is not a JSON object",
            path.display()
        ),
        Err(e) => bail!(
            "refusing to change {}: it is not valid JSON (line {}, column {}: {e}); fix or move it first",
            path.display(),
            e.line(),
            e.column()
        ),
    }
}

/// `berth-logins.json`; an entry Berth cannot read is left out rather than refused, since
/// `berth logout` can only remove what it recognises.
fn read_logins(path: &Path) -> anyhow::Result<BTreeMap<String, Login>> {
    Ok(read_object(path)?
        .into_iter()
        .filter_map(|(host, v)| Some((host, serde_json::from_value(v).ok()?)))
        .collect())
}

/// Writes to a temporary file in the same directory, then renames it over the target.
fn write_atomically(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    berth_files::write_atomically(path, text.as_bytes(), berth_files::Access::Private).with_context(
        || {
            format!(
                "cannot write {} (is the directory read-only?)",
                path.display()
            )
        },
    )
}

/// What a Docker config holds for one registry host.
pub enum StoredAuth {
    /// `docker-credential-<name>` answers for it.
    Helper(String),
    Basic(String, String),
}

/// Docker config keys come as `host`, `https://host/v1/` and the like; Docker Hub as `index.docker.io`.
fn normalize(key: &str) -> String {
    let host = berth_core::normalize_host(key);
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        _ => host,
    }
}

/// What `berth login` added for one host, in `berth-logins.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Login {
    integration: String,
    kind: LoginKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum LoginKind {
    /// `auths[host]`.
    Auth,
    /// `credHelpers[host] = "berth"`.
    Helper,
}

/// One `auths` entry as Docker and its peers write it.
#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    username: Option<String>,
    password: Option<String>,
    /// base64 of `user:password`.
    auth: Option<String>,
}

impl AuthEntry {
    fn user_and_password(self) -> Option<(String, String)> {
        if let (Some(u), Some(p)) = (self.username, self.password) {
            return Some((u, p));
        }
        let decoded = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            self.auth?.trim(),
        )
        .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (u, p) = text.split_once(':')?;
        Some((u.to_owned(), p.to_owned()))
    }
}

/// The credential-helper protocol's answer to `get`, as `docker-credential-*` helpers print it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HelperAnswer {
    #[serde(rename = "ServerURL", default)]
    pub server_url: String,
    pub username: String,
    pub secret: String,
}

pub struct DockerConfig {
    dir: PathBuf,
    /// Kept as a map: keys Berth does not know are written back as they were.
    config: Map<String, Value>,
    logins: BTreeMap<String, Login>,
}

impl DockerConfig {
    pub fn load() -> anyhow::Result<DockerConfig> {
        let dir = dir()?;
        Ok(DockerConfig {
            config: read_object(&dir.join("config.json"))?,
            logins: read_logins(&dir.join("berth-logins.json"))?,
            dir,
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    fn section(&mut self, name: &str) -> &mut Map<String, Value> {
        let entry = self
            .config
            .entry(name.to_owned())
            .or_insert_with(|| json!({}));
        if !entry.is_object() {
            *entry = json!({});
        }
        entry.as_object_mut().expect("made an object above")
    }

    /// Adds `auths[host]` (or, with `helper`, `credHelpers[host] = "berth"`) for an integration.
    pub fn add(&mut self, host: &str, integration: &str, auth: Option<&str>) {
        match auth {
            Some(auth) => {
                self.section("auths")
                    .insert(host.to_owned(), json!({"auth": auth}));
            }
            None => {
                self.section("credHelpers")
                    .insert(host.to_owned(), json!("berth"));
            }
        }
        let kind = match auth {
            Some(_) => LoginKind::Auth,
            None => LoginKind::Helper,
        };
        self.logins.insert(
            host.to_owned(),
            Login {
                integration: integration.to_owned(),
                kind,
            },
        );
    }

    /// Removes what `add` wrote for the integration; returns the hosts removed.
    pub fn remove(&mut self, integration: &str) -> Vec<String> {
        let hosts: Vec<(String, LoginKind)> = self
            .logins
            .iter()
            .filter(|(_, l)| l.integration == integration)
            .map(|(h, l)| (h.clone(), l.kind))
            .collect();
        for (host, kind) in &hosts {
            match kind {
                LoginKind::Helper => {
                    let helpers = self.section("credHelpers");
                    if helpers.get(host) == Some(&json!("berth")) {
                        helpers.remove(host);
                    }
                }
                LoginKind::Auth => {
                    self.section("auths").remove(host);
                }
            }
            self.logins.remove(host);
        }
        for section in ["auths", "credHelpers"] {
            if self
                .config
                .get(section)
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
            {
                self.config.remove(section);
            }
        }
        hosts.into_iter().map(|(h, _)| h).collect()
    }

    /// Every integration Berth logins added.
    pub fn logged_in(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .logins
            .values()
            .map(|l| l.integration.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// How Docker would authenticate to `host`: a credential helper, or a stored user/password.
    pub fn lookup(&self, host: &str) -> Option<StoredAuth> {
        if let Some(helper) = self
            .config
            .get("credHelpers")
            .and_then(|h| h.get(host))
            .and_then(Value::as_str)
        {
            return Some(StoredAuth::Helper(helper.to_owned()));
        }
        let auths = self.config.get("auths").and_then(Value::as_object);
        for (key, entry) in auths.into_iter().flatten() {
            if crate::docker_config::normalize(key) != host {
                continue;
            }
            let entry: AuthEntry = serde_json::from_value(entry.clone()).unwrap_or_default();
            if let Some((u, p)) = entry.user_and_password() {
                return Some(StoredAuth::Basic(u, p));
            }
        }
        self.config
            .get("credsStore")
            .and_then(Value::as_str)
            .map(|s| StoredAuth::Helper(s.to_owned()))
    }

    pub fn save(&self) -> anyhow::Result<()> {
        write_atomically(&self.dir.join("config.json"), &self.config)?;
        write_atomically(&self.dir.join("berth-logins.json"), &self.logins)
    }
}
