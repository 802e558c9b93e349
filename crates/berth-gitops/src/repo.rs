//! The shared configuration repository through the system `git`: the Codefresh form of its
//! address (`<repo_url>.git[/<path>][?ref=<branch>]`), a working checkout, and changes that land
//! as one commit each. A push that someone else beat is retried after a rebase; a real conflict
//! on the same file is reported and the checkout is put back as it was.
//!
//! Credentials reach `git` through its own `credential-cache` helper: handed to the cache daemon
//! on a pipe before each command that talks to the remote, they are never in an argument list,
//! an environment (where `ps e` would show them), a URL, a config file or anywhere on disk.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use secrecy::{ExposeSecret, SecretString};

/// Why a repository operation failed, with git's own words.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("repo: {0}")]
    Address(String),
    #[error("git {action} failed: {stderr}")]
    Git { action: String, stderr: String },
    #[error(
        "the change conflicts with a commit pushed meanwhile to {file}: nothing was pushed; resolve it in the repository, then retry"
    )]
    Conflict { file: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Where the shared configuration lives: a repository, a folder in it, a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoAddress {
    /// The clone URL, ending in `.git`.
    pub url: String,
    /// A folder inside the repository; empty for its root.
    pub path: String,
    /// `None` for the repository's default branch.
    pub branch: Option<String>,
}

impl RepoAddress {
    /// Parses `<repo_url>.git[/<path>][?ref=<branch>]`. Credentials in the URL are refused: they
    /// belong in the sealed credentials.
    pub fn parse(text: &str) -> Result<RepoAddress, RepoError> {
        let bad = |why: &str| RepoError::Address(format!("'{text}' {why}"));
        let (rest, branch) = match text.split_once("?ref=") {
            Some((rest, b)) if !b.is_empty() && !b.contains(['?', '&', ' ']) => (rest, Some(b)),
            Some(_) => return Err(bad("has an empty or malformed ?ref=")),
            None => (text, None),
        };
        let at = rest.find(".git").ok_or_else(|| {
            bad("must be <repo_url>.git[/<path>][?ref=<branch>] (the URL ends in .git)")
        })?;
        let (url, path) = rest.split_at(at + 4);
        if !(url.starts_with("https://") || url.starts_with("http://") || url.starts_with('/')) {
            return Err(bad("must be an http(s) URL or a local path"));
        }
        if url
            .split("://")
            .nth(1)
            .is_some_and(|r| r.split('/').next().unwrap_or("").contains('@'))
        {
            return Err(bad(
                "carries credentials in the URL: give them as credentials instead",
            ));
        }
        let path = path.trim_matches('/');
        if !(path.is_empty() || path.starts_with(|c: char| c != '/')) || path.contains("..") {
            return Err(bad("has a path that leaves the repository"));
        }
        Ok(RepoAddress {
            url: url.to_owned(),
            path: path.to_owned(),
            branch: branch.map(str::to_owned),
        })
    }
}

/// Push credentials: an HTTPS token or a user and password.
pub struct RepoCredentials {
    pub username: String,
    pub password: SecretString,
}

/// One file change under the address's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Write { path: String, content: String },
    Remove { path: String },
}

/// Who commits.
#[derive(Debug, Clone)]
pub struct Author {
    pub name: String,
    pub email: String,
}

/// A checkout of the shared repository in a directory Berth owns.
pub struct Checkout {
    dir: PathBuf,
    address: RepoAddress,
    credentials: Option<CredentialCache>,
    /// The checked-out branch, asked of git once.
    branch: std::sync::OnceLock<String>,
}

/// How many times a push beaten by another writer is rebased and tried again.
const PUSH_ATTEMPTS: usize = 4;

impl Checkout {
    /// Clones into `dir` (or reuses the clone there) and brings it to the remote branch.
    pub fn open(
        dir: &Path,
        address: RepoAddress,
        credentials: Option<RepoCredentials>,
    ) -> Result<Checkout, RepoError> {
        std::fs::create_dir_all(dir)?;
        let checkout = Checkout {
            dir: dir.join("repo"),
            address,
            credentials: CredentialCache::new(dir, credentials)?,
            branch: std::sync::OnceLock::new(),
        };
        if !checkout.dir.join(".git").exists() {
            let mut args = vec!["clone", "--quiet"];
            if let Some(b) = &checkout.address.branch {
                args.extend(["--branch", b]);
            }
            let target = checkout.dir.to_string_lossy().into_owned();
            let url = checkout.address.url.clone();
            args.extend([url.as_str(), target.as_str()]);
            checkout.git_in(dir, "clone", &args)?;
        }
        checkout.sync()?;
        Ok(checkout)
    }

    /// Checks that the repository answers with these credentials and that the branch exists,
    /// without cloning (`git ls-remote`); `scratch` holds the credential cache's socket meanwhile.
    pub fn probe(
        scratch: &Path,
        address: &RepoAddress,
        credentials: Option<RepoCredentials>,
    ) -> Result<(), RepoError> {
        std::fs::create_dir_all(scratch)?;
        let probe = Checkout {
            dir: scratch.to_owned(),
            address: address.clone(),
            credentials: CredentialCache::new(scratch, credentials)?,
            branch: std::sync::OnceLock::new(),
        };
        let branch = address.branch.as_deref().unwrap_or("HEAD");
        let wanted = match &address.branch {
            Some(b) => format!("refs/heads/{b}"),
            None => "HEAD".to_owned(),
        };
        let out = probe
            .command(
                scratch,
                &["ls-remote", "--exit-code", &address.url, &wanted],
            )?
            .output()?;
        match out.status.code() {
            Some(0) => Ok(()),
            // An empty repository has no HEAD yet: the first commit creates the branch.
            Some(2) if address.branch.is_none() => Ok(()),
            Some(2) => Err(RepoError::Address(format!(
                "branch '{branch}' does not exist in {}",
                address.url
            ))),
            _ => Err(RepoError::Git {
                action: "ls-remote".into(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            }),
        }
    }

    /// The folder inside the checkout that the address names.
    fn root(&self) -> PathBuf {
        self.dir.join(&self.address.path)
    }

    /// `git <args>` in `cwd`; a command that talks to the remote gets the credentials first.
    fn command(&self, cwd: &Path, args: &[&str]) -> Result<Command, RepoError> {
        let mut cmd = Command::new("git");
        cmd.current_dir(cwd)
            // No background maintenance: nothing of Berth's outlives the command in the checkout.
            .args(["-c", "maintenance.auto=false", "-c", "core.askPass="])
            .env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("GIT_ASKPASS")
            .env_remove("SSH_ASKPASS")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE");
        if let Some(cache) = &self.credentials {
            // An empty helper first drops any the system or user configuration names.
            cmd.args(["-c", "credential.helper=", "-c", &cache.helper()]);
            if matches!(
                args.first(),
                Some(&("clone" | "fetch" | "push" | "ls-remote"))
            ) {
                cache.store(&self.address.url)?;
            }
        }
        cmd.args(args);
        Ok(cmd)
    }

    fn git_in(&self, cwd: &Path, action: &str, args: &[&str]) -> Result<Output, RepoError> {
        let out = self.command(cwd, args)?.output()?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(RepoError::Git {
                action: action.to_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
    }

    fn git(&self, action: &str, args: &[&str]) -> Result<Output, RepoError> {
        self.git_in(&self.dir, action, args)
    }

    fn branch(&self) -> Result<String, RepoError> {
        if let Some(b) = self.branch.get() {
            return Ok(b.clone());
        }
        // symbolic-ref also names the unborn branch of an empty repository.
        let out = self.git("symbolic-ref", &["symbolic-ref", "--short", "HEAD"])?;
        let branch = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Ok(self.branch.get_or_init(|| branch).clone())
    }

    /// Resets the checkout to `base` (a commit) or else to the remote branch, dropping
    /// anything local.
    fn sync_to(&self, base: Option<&str>) -> Result<(), RepoError> {
        let branch = self.branch()?;
        self.git("fetch", &["fetch", "--quiet", "origin"])?;
        let remote = format!("origin/{branch}");
        let target = base.unwrap_or(&remote);
        // An empty remote has no branch yet: nothing to reset to.
        if self
            .git("rev-parse", &["rev-parse", "--verify", "--quiet", target])
            .is_ok()
        {
            self.git("reset", &["reset", "--quiet", "--hard", target])?;
        }
        self.git("clean", &["clean", "--quiet", "-fdx"])?;
        Ok(())
    }

    fn sync(&self) -> Result<(), RepoError> {
        self.sync_to(None)
    }

    /// Brings the checkout to the remote branch's head (what `read` then sees).
    pub fn refresh(&self) -> Result<(), RepoError> {
        self.sync()
    }

    /// As [`Checkout::refresh`] in two git processes, for a checkout Berth keeps clean itself
    /// (after a failed commit it is cleaned): before planning a change on the current head.
    pub fn update(&self) -> Result<(), RepoError> {
        let branch = self.branch()?;
        self.git("fetch", &["fetch", "--quiet", "origin"])?;
        let remote = self.read_ref(&format!("refs/remotes/origin/{branch}"));
        if remote.is_some() && remote == self.read_ref("HEAD") {
            // Already there, and the checkout is clean: no reset to run.
            return Ok(());
        }
        match self.git(
            "reset",
            &["reset", "--quiet", "--hard", &format!("origin/{branch}")],
        ) {
            // An empty remote has no branch yet: nothing to reset to.
            Err(RepoError::Git { stderr, .. }) if stderr.contains("unknown revision") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// The commit a ref names, read from the repository's files (loose, then `packed-refs`),
    /// which spares a git process on every change; `None` when it is not there.
    fn read_ref(&self, name: &str) -> Option<String> {
        let git_dir = self.dir.join(".git");
        if let Ok(text) = std::fs::read_to_string(git_dir.join(name)) {
            let text = text.trim();
            return match text.strip_prefix("ref: ") {
                Some(target) if target != name => self.read_ref(target),
                Some(_) => None,
                None => Some(text.to_owned()),
            };
        }
        let packed = std::fs::read_to_string(git_dir.join("packed-refs")).ok()?;
        packed.lines().find_map(|line| {
            let (commit, packed_name) = line.split_once(' ')?;
            (packed_name == name).then(|| commit.to_owned())
        })
    }

    /// The commit the checkout is at; `None` for a repository without commits.
    pub fn head(&self) -> Option<String> {
        self.read_ref("HEAD").or_else(|| {
            self.git("rev-parse", &["rev-parse", "--verify", "--quiet", "HEAD"])
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        })
    }

    /// The `.yaml` files under `folder` (inside the address's folder), as relative paths.
    pub fn yaml_files(&self, folder: &str) -> Result<Vec<String>, RepoError> {
        let root = self.root();
        let mut found = Vec::new();
        let mut pending = vec![root.join(folder)];
        while let Some(dir) = pending.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            for entry in entries {
                let path = entry?.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|x| x == "yaml" || x == "yml")
                    && let Ok(relative) = path.strip_prefix(&root)
                {
                    found.push(relative.to_string_lossy().into_owned());
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// A file under the address's folder as the checkout holds it; `None` when absent.
    pub fn read(&self, relative: &str) -> Result<Option<String>, RepoError> {
        if relative.split('/').any(|p| p == ".." || p.is_empty()) {
            return Err(RepoError::Address(format!(
                "'{relative}' leaves the folder"
            )));
        }
        match std::fs::read(self.root().join(relative)) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies `changes` as one commit on `base` (the commit Berth last saw; the remote branch
    /// when `None`) and pushes it; `None` when they change nothing. When the branch moved past
    /// `base`, the commit is rebased and pushed again; if someone changed the same file
    /// meanwhile, that is a conflict: it is reported and nothing is pushed.
    pub fn commit(
        &self,
        base: Option<&str>,
        changes: &[Change],
        message: &str,
        author: &Author,
    ) -> Result<Option<String>, RepoError> {
        let result = self.commit_on(base, changes, message, author);
        if result.is_err() {
            // Nothing half-done stays behind for the next change: back to the last fetched
            // state of the branch (no network needed, so this works when the remote is gone).
            self.reset_to_tracking();
        }
        result
    }

    fn reset_to_tracking(&self) {
        let remote = format!("origin/{}", self.branch().unwrap_or_default());
        let known = self
            .git("rev-parse", &["rev-parse", "--verify", "--quiet", &remote])
            .is_ok();
        if known {
            let _ = self.git("reset", &["reset", "--quiet", "--hard", &remote]);
        }
        let _ = self.git("clean", &["clean", "--quiet", "-fdx"]);
    }

    /// The commit is made where the checkout is (the caller brought it to the branch head with
    /// [`Checkout::update`], or `base` names the commit): when someone pushed meanwhile, the
    /// push is refused and the commit rebased.
    fn commit_on(
        &self,
        base: Option<&str>,
        changes: &[Change],
        message: &str,
        author: &Author,
    ) -> Result<Option<String>, RepoError> {
        if base.is_some() {
            self.sync_to(base)?;
        }
        for change in changes {
            self.apply(change)?;
        }
        self.git("add", &["add", "--all", "."])?;
        let who = format!("{} <{}>", author.name, author.email);
        let name = format!("user.name={}", author.name);
        let email = format!("user.email={}", author.email);
        let committed = self
            .command(
                &self.dir,
                &[
                    "-c", &name, "-c", &email, "commit", "--quiet", "--author", &who, "-m", message,
                ],
            )?
            .output()?;
        if !committed.status.success() {
            // `git commit` says so on stdout when the changes changed nothing.
            if String::from_utf8_lossy(&committed.stdout).contains("nothing to commit") {
                return Ok(None);
            }
            return Err(RepoError::Git {
                action: "commit".into(),
                stderr: String::from_utf8_lossy(&committed.stderr).trim().to_owned(),
            });
        }
        self.push_with_retries()
    }

    fn apply(&self, change: &Change) -> Result<(), RepoError> {
        let relative = match change {
            Change::Write { path, .. } | Change::Remove { path } => path,
        };
        if relative.split('/').any(|p| p == ".." || p.is_empty()) || relative.starts_with('/') {
            return Err(RepoError::Address(format!(
                "'{relative}' leaves the folder"
            )));
        }
        let path = self.root().join(relative);
        match change {
            Change::Write { content, .. } => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&path, content)?;
            }
            Change::Remove { .. } => match std::fs::remove_file(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            },
        }
        Ok(())
    }

    fn push_with_retries(&self) -> Result<Option<String>, RepoError> {
        let branch = self.branch()?;
        for _ in 0..PUSH_ATTEMPTS {
            let pushed = self
                .command(
                    &self.dir,
                    &["push", "--quiet", "origin", &format!("HEAD:{branch}")],
                )?
                .output()?;
            if pushed.status.success() {
                if let Some(head) = self.read_ref("HEAD") {
                    return Ok(Some(head));
                }
                let head = self.git("rev-parse", &["rev-parse", "HEAD"])?;
                return Ok(Some(
                    String::from_utf8_lossy(&head.stdout).trim().to_owned(),
                ));
            }
            let stderr = String::from_utf8_lossy(&pushed.stderr).into_owned();
            if !(stderr.contains("rejected") || stderr.contains("fetch first")) {
                return Err(RepoError::Git {
                    action: "push".into(),
                    stderr: stderr.trim().to_owned(),
                });
            }
            self.git("fetch", &["fetch", "--quiet", "origin"])?;
            let rebased = self
                .command(
                    &self.dir,
                    &["rebase", "--quiet", &format!("origin/{branch}")],
                )?
                .output()?;
            if !rebased.status.success() {
                let file = self.conflicted_file();
                let _ = self
                    .command(&self.dir, &["rebase", "--abort"])
                    .map(|mut c| c.output());
                self.sync()?;
                return Err(RepoError::Conflict { file });
            }
        }
        Err(RepoError::Git {
            action: "push".into(),
            stderr: format!(
                "still rejected after {PUSH_ATTEMPTS} rebases: the branch moves too fast"
            ),
        })
    }

    fn conflicted_file(&self) -> String {
        self.command(&self.dir, &["diff", "--name-only", "--diff-filter=U"])
            .ok()
            .and_then(|mut c| c.output().ok())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .unwrap_or_default()
    }
}

/// How long the cache daemon keeps credentials after they were last handed over; each command
/// that talks to the remote hands them over again, so this only bounds how long they outlive
/// Berth's last use of them.
const CACHE_SECONDS: u32 = 300;

/// Push credentials kept by git's `credential-cache` daemon on a socket in a directory only
/// Berth's user can enter; the daemon is told to exit when the checkout goes away.
struct CredentialCache {
    socket: PathBuf,
    credentials: RepoCredentials,
}

impl CredentialCache {
    fn new(dir: &Path, credentials: Option<RepoCredentials>) -> Result<Option<Self>, RepoError> {
        let Some(credentials) = credentials else {
            return Ok(None);
        };
        let line_break = |v: &str| v.contains(['\n', '\r', '\0']);
        if line_break(&credentials.username) || line_break(credentials.password.expose_secret()) {
            return Err(RepoError::Address(
                "the username and password must not contain line breaks".into(),
            ));
        }
        // git refuses a socket directory that others may enter.
        let private = dir.join("credentials");
        std::fs::create_dir_all(&private)?;
        restrict(&private)?;
        let socket = private.join("socket");
        if socket.to_string_lossy().contains('\'') {
            return Err(RepoError::Address(format!(
                "the data directory {} has a quote in its path, which git's helper syntax cannot carry",
                dir.display()
            )));
        }
        Ok(Some(CredentialCache {
            socket,
            credentials,
        }))
    }

    /// The `credential.helper` setting that reads from this cache.
    fn helper(&self) -> String {
        format!(
            "credential.helper=cache --timeout={CACHE_SECONDS} --socket='{}'",
            self.socket.display()
        )
    }

    fn daemon(&self, action: &str) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("credential-cache")
            .arg(format!("--timeout={CACHE_SECONDS}"))
            .arg(format!("--socket={}", self.socket.display()))
            .arg(action);
        cmd
    }

    /// Hands the credentials for `url` to the daemon (starting it if needed) on its stdin.
    fn store(&self, url: &str) -> Result<(), RepoError> {
        use std::io::Write;
        let mut child = self
            .daemon("store")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let request = format!(
            "url={url}\nusername={}\npassword={}\n\n",
            self.credentials.username,
            self.credentials.password.expose_secret()
        );
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(request.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if out.status.success() {
            return Ok(());
        }
        Err(RepoError::Git {
            action: "credential-cache store".into(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

impl Drop for CredentialCache {
    fn drop(&mut self) {
        let _ = self
            .daemon("exit")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[cfg(unix)]
fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn restrict(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codefresh_address_form_parses_and_bad_ones_are_named() {
        let a =
            RepoAddress::parse("https://github.com/acme/config.git/berth/shared?ref=main").unwrap();
        assert_eq!(a.url, "https://github.com/acme/config.git");
        assert_eq!(a.path, "berth/shared");
        assert_eq!(a.branch.as_deref(), Some("main"));
        let b = RepoAddress::parse("https://example.com/config.git").unwrap();
        assert_eq!((b.path.as_str(), b.branch), ("", None));
        for bad in [
            "https://example.com/config",
            "https://user:pw@example.com/config.git",
            "https://example.com/config.git/../x",
            "ftp://example.com/config.git",
            "https://example.com/config.git?ref=",
        ] {
            let e = RepoAddress::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("repo: '"), "{bad}: {e}");
        }
    }
}
