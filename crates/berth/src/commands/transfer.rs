//! `berth push|pull|copy|build|inspect|tags`: opens both sides of a transfer, finds credentials
//! (Berth's broker for hosts an integration serves, else the Docker config and its credential
//! helpers, else anonymous), and renders the engine's progress.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use async_trait::async_trait;
use berth_api::{RegistryCredentials, RepositoryEnsured, RepositoryRequest};
use berth_registry::{
    CredentialSource, Credentials, Destination, Event, Location, OciLayout, Platform, Progress,
    RegistryClient, RemoteImage, SharedProgress, Source, Summary,
};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::cli::{Global, Output, ProgressMode, RegistryOptions, TagsArgs, TransferArgs};
use crate::client::{Api, ApiFailure};
use crate::docker_config::{DockerConfig, HelperAnswer, StoredAuth};

/// Credentials for one registry host, found once and kept for the transfer.
struct CliCredentials {
    global: Global,
    explicit: Option<Credentials>,
    integration: Option<String>,
    /// Only what Docker itself would use (the Docker config and its helpers).
    docker_config_only: bool,
    /// Held while looking up, so parallel blob requests that all meet a 401 ask once.
    found: tokio::sync::Mutex<Option<Option<Credentials>>>,
    /// Where the credentials came from, for error messages.
    from: Mutex<String>,
}

fn split_creds(text: &str) -> anyhow::Result<Credentials> {
    let (user, password) = text
        .split_once(':')
        .context("credentials must be USER:PASSWORD")?;
    Ok(Credentials {
        username: user.to_owned(),
        password: SecretString::from(password.to_owned()),
    })
}

fn from_api(c: RegistryCredentials) -> Credentials {
    Credentials {
        username: c.username,
        password: SecretString::from(c.password),
    }
}

/// Runs `docker-credential-<helper> get` (Berth's own helper is answered in-process).
async fn run_helper(helper: &str, host: &str) -> anyhow::Result<Option<Credentials>> {
    use tokio::io::AsyncWriteExt;
    let program = format!("docker-credential-{helper}");
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| {
            format!("the Docker config names credential helper {program}, which cannot be run")
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(host.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if said.contains("credentials not found") {
            return Ok(None);
        }
        bail!(
            "{program} get {host} failed: {} {}",
            said,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout).with_context(|| {
        format!("{program} answered with something that is not the helper protocol's JSON")
    })?;
    Ok(Some(Credentials {
        username: answer.username,
        password: SecretString::from(answer.secret),
    }))
}

impl CliCredentials {
    async fn find(&self, host: &str) -> anyhow::Result<(Option<Credentials>, String)> {
        if let Some(c) = &self.explicit {
            return Ok((
                Some(c.clone()),
                "the credentials given on the command line".into(),
            ));
        }
        if let Some(name) = &self.integration {
            let api = Api::new(&self.global)?;
            let c = super::login::credentials(&api, name, None).await?;
            return Ok((Some(from_api(c)), format!("integration {name}")));
        }
        if self.global.token.is_some() && !self.docker_config_only {
            let api = Api::new(&self.global)?;
            match super::login::credentials_by_host(&api, host).await {
                Ok(c) => {
                    let from = format!("integration {}", c.integration);
                    return Ok((Some(from_api(c)), from));
                }
                Err(e)
                    if e.downcast_ref::<ApiFailure>()
                        .is_some_and(|f| f.status == StatusCode::NOT_FOUND) => {}
                Err(e) => return Err(e),
            }
        }
        let config = DockerConfig::load()?;
        match config.lookup(host) {
            Some(StoredAuth::Basic(u, p)) => Ok((
                Some(Credentials {
                    username: u,
                    password: SecretString::from(p),
                }),
                format!("the Docker config entry for {host}"),
            )),
            Some(StoredAuth::Helper(helper)) if helper == "berth" => {
                let api = Api::new(&self.global)?;
                let c = super::login::credentials_by_host(&api, host).await?;
                Ok((Some(from_api(c)), "docker-credential-berth".into()))
            }
            Some(StoredAuth::Helper(helper)) => Ok((
                run_helper(&helper, host).await?,
                format!("docker-credential-{helper}"),
            )),
            None => Ok((
                None,
                format!("no credentials (nothing in Berth or the Docker config for {host})"),
            )),
        }
    }
}

#[async_trait]
impl CredentialSource for CliCredentials {
    async fn credentials(
        &self,
        host: &str,
        refresh: bool,
    ) -> berth_registry::Result<Option<Credentials>> {
        let mut found = self.found.lock().await;
        if !refresh && let Some(c) = found.as_ref() {
            return Ok(c.clone());
        }
        let (c, from) = self
            .find(host)
            .await
            .map_err(|e| berth_registry::Error::Auth(format!("credentials for {host}: {e:#}")))?;
        *found = Some(c.clone());
        *self.from.lock().unwrap_or_else(|p| p.into_inner()) = from;
        Ok(c)
    }

    fn describe(&self) -> String {
        let from = self.from.lock().unwrap_or_else(|p| p.into_inner());
        if from.is_empty() {
            "no credentials".into()
        } else {
            from.clone()
        }
    }
}

/// One side of a transfer, opened.
pub enum Side {
    Remote(RemoteImage),
    Layout(OciLayout),
    Archive(Box<berth_registry::DockerArchive>),
}

impl Side {
    pub fn source(&self) -> &dyn Source {
        match self {
            Side::Remote(r) => r,
            Side::Layout(l) => l,
            Side::Archive(a) => a.as_ref(),
        }
    }

    pub fn destination(&self) -> &dyn Destination {
        match self {
            Side::Remote(r) => r,
            Side::Layout(l) => l,
            Side::Archive(a) => a.as_ref(),
        }
    }

    /// The tag this side names, if any.
    pub fn tag(&self) -> Option<String> {
        match self {
            Side::Remote(r) if !r.reference.starts_with("sha256:") => Some(r.reference.clone()),
            Side::Remote(_) => None,
            Side::Layout(l) => l.tag.clone(),
            Side::Archive(a) => a.tag(),
        }
    }
}

pub struct Opener<'a> {
    pub global: &'a Global,
    pub options: &'a RegistryOptions,
    /// Find credentials as Docker would (for checks of what docker or buildah will be able to do).
    pub docker_config_only: bool,
}

impl Opener<'_> {
    fn client(
        &self,
        host: &str,
        creds: Option<&str>,
        integration: Option<String>,
    ) -> anyhow::Result<Arc<RegistryClient>> {
        let explicit = creds.map(split_creds).transpose()?;
        let source = Arc::new(CliCredentials {
            global: self.global.clone(),
            explicit,
            integration,
            docker_config_only: self.docker_config_only,
            found: tokio::sync::Mutex::new(None),
            from: Mutex::new(String::new()),
        });
        let plain = self.options.plain_http.iter().any(|h| h == host);
        Ok(Arc::new(RegistryClient::new(host, source, plain)?))
    }

    /// Resolves `ecr://` through the server: the integration's registry host.
    async fn ecr_host(&self, integration: &str) -> anyhow::Result<String> {
        let api = Api::new(self.global)?;
        let c = super::login::credentials(&api, integration, None)
            .await
            .with_context(|| format!("cannot resolve ecr://{integration}"))?;
        Ok(c.registry)
    }

    pub async fn open(&self, text: &str, as_source: bool) -> anyhow::Result<Side> {
        let creds = if as_source {
            self.options.src_creds.as_deref()
        } else {
            self.options.dest_creds.as_deref()
        };
        Ok(match Location::parse(text)? {
            Location::Oci { dir, tag } => Side::Layout(OciLayout::new(dir, tag)),
            Location::DockerArchive { file, reference } => Side::Archive(Box::new(
                berth_registry::DockerArchive::new(file, reference),
            )),
            Location::Registry(r) => {
                let client = self.client(r.api_host(), creds, None)?;
                Side::Remote(RemoteImage::new(client, &r.repository, r.reference()))
            }
            Location::Ecr {
                integration,
                repository,
                tag,
                digest,
            } => {
                let host = self.ecr_host(&integration).await?;
                let client = self.client(&host, creds, Some(integration))?;
                let reference = digest.or(tag).unwrap_or_else(|| "latest".into());
                Side::Remote(RemoteImage::new(client, &repository, &reference))
            }
        })
    }
}

/// Progress for people (bars) or logs (a line per event).
struct Render {
    mode: ProgressMode,
    bars: Option<indicatif::MultiProgress>,
    overall: Option<indicatif::ProgressBar>,
    blobs: Mutex<HashMap<String, indicatif::ProgressBar>>,
}

fn short(digest: &str) -> &str {
    digest.get(7..19).unwrap_or(digest)
}

fn mib(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / 1048576.0),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

impl Render {
    fn new(mode: ProgressMode) -> Render {
        let mode = match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bars,
            ProgressMode::Auto => ProgressMode::Plain,
            m => m,
        };
        let bars = (mode == ProgressMode::Bars).then(indicatif::MultiProgress::new);
        Render {
            mode,
            bars,
            overall: None,
            blobs: Mutex::new(HashMap::new()),
        }
    }
}

struct Shared(Mutex<Render>);

impl Progress for Shared {
    fn event(&self, event: Event) {
        let mut r = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match r.mode {
            ProgressMode::Plain => plain_line(&event),
            ProgressMode::Bars => r.draw(&event),
            _ => {}
        }
        if let Event::ManifestPushed { .. } = event
            && let Some(o) = r.overall.take()
        {
            o.finish_and_clear();
        }
    }
}

/// `--progress plain`: one parseable line per event worth a line in a CI log.
fn plain_line(event: &Event) {
    match event {
        Event::Plan { blobs, bytes } => {
            eprintln!("plan: {blobs} blobs, {}", mib(*bytes));
        }
        Event::BlobDone {
            digest,
            size,
            outcome,
        } => {
            eprintln!(
                "blob {} {} {}",
                short(digest),
                mib(*size),
                serde_json::to_value(outcome)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or("")
            );
        }
        Event::Retry {
            what,
            attempt,
            reason,
        } => eprintln!("retry {attempt} {what}: {reason}"),
        Event::ManifestPushed { digest, reference } => {
            eprintln!("manifest {digest} written as {reference}");
        }
        _ => {}
    }
}

impl Render {
    /// `--progress bars`: one bar per blob in flight under a total.
    fn draw(&mut self, event: &Event) {
        match event {
            Event::Plan { bytes, .. } => {
                let bar = indicatif::ProgressBar::new(*bytes).with_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg:>12} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_message("total");
                let bar = self
                    .bars
                    .as_ref()
                    .map(|m| m.add(bar.clone()))
                    .unwrap_or(bar);
                self.overall = Some(bar);
            }
            Event::BlobStarted { digest, size } => {
                let bar = indicatif::ProgressBar::new(*size).with_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg:>12} [{bar:40}] {bytes}/{total_bytes}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_message(short(digest).to_owned());
                let bar = self
                    .bars
                    .as_ref()
                    .map(|m| m.add(bar.clone()))
                    .unwrap_or(bar);
                self.blobs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(digest.clone(), bar);
            }
            Event::BlobProgress { digest, bytes } => {
                if let Some(b) = self
                    .blobs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(digest)
                {
                    b.inc(*bytes);
                }
                if let Some(o) = &self.overall {
                    o.inc(*bytes);
                }
            }
            Event::BlobRestarted { digest, offset } => {
                if let Some(b) = self
                    .blobs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(digest)
                {
                    b.set_position(*offset);
                }
            }
            Event::BlobDone {
                digest,
                size,
                outcome,
            } => {
                let bar = self
                    .blobs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(digest);
                if let Some(b) = bar {
                    if let Some(o) = &self.overall
                        && *outcome != berth_registry::BlobOutcome::Copied
                    {
                        o.inc(*size);
                    }
                    b.finish_and_clear();
                    if let Some(m) = &self.bars {
                        m.remove(&b);
                    }
                }
            }
            Event::Retry {
                what,
                attempt,
                reason,
            } => {
                if let Some(b) = &self.bars {
                    let _ = b.println(format!("retry {attempt} {what}: {reason}"));
                }
            }
            _ => {}
        }
    }
}

fn finish(global: &Global, summary: &Summary) {
    if global.output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(summary).unwrap_or_default()
        );
    } else {
        eprintln!(
            "done: {} blobs ({} copied, {} skipped, {} mounted), {} moved, {} skipped, {:.2} s",
            summary.blobs,
            summary.blobs_copied,
            summary.blobs_skipped,
            summary.blobs_mounted,
            mib(summary.bytes_moved),
            mib(summary.bytes_skipped),
            summary.seconds
        );
        println!("{}", summary.digest);
    }
}

pub fn progress(mode: ProgressMode) -> SharedProgress {
    Arc::new(Shared(Mutex::new(Render::new(mode))))
}

pub async fn copy(global: &Global, args: &TransferArgs) -> anyhow::Result<()> {
    let opener = Opener {
        global,
        options: &args.registry,
        docker_config_only: false,
    };
    let source = opener.open(&args.source, true).await?;
    let destination = opener.open(&args.destination, false).await?;
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    if args.registry.create_repo {
        create_repo(global, &args.destination).await?;
    }
    let options = berth_registry::CopyOptions {
        platform,
        jobs: args.registry.jobs,
        tag: destination
            .tag()
            .or_else(|| source.tag())
            .or_else(|| Some("latest".into())),
    };
    let summary = berth_registry::copy(
        source.source(),
        destination.destination(),
        &options,
        progress(args.registry.progress),
    )
    .await
    .with_context(|| format!("copy {} → {}", args.source, args.destination))?;
    finish(global, &summary);
    Ok(())
}

/// Asks the server to create an ECR repository through the integration that serves it.
pub async fn create_repo(global: &Global, destination: &str) -> anyhow::Result<()> {
    let (integration, host, repository) = match Location::parse(destination)? {
        Location::Ecr {
            integration,
            repository,
            ..
        } => (Some(integration), None, repository),
        Location::Registry(r) => (None, Some(r.registry.clone()), r.repository),
        _ => bail!("--create-repo applies to registry destinations only"),
    };
    let api = Api::new(global)?;
    let body = RepositoryRequest {
        integration,
        host,
        repository,
    };
    let v: RepositoryEnsured = api
        .call(Method::POST, "/api/v1/repositories", Some(&body))
        .await
        .context("--create-repo")?;
    if v.created {
        eprintln!(
            "created repository {} through integration {}",
            v.repository, v.integration
        );
    }
    Ok(())
}

/// The parts of an OCI image configuration `berth inspect` shows; the rest is ignored.
#[derive(Debug, Default, Deserialize)]
struct ImageConfig {
    created: Option<String>,
    architecture: Option<String>,
    os: Option<String>,
    config: Option<RunConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig {
    env: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    working_dir: Option<String>,
    labels: Option<std::collections::BTreeMap<String, String>>,
}

pub async fn inspect(global: &Global, args: &crate::cli::InspectArgs) -> anyhow::Result<()> {
    let opener = Opener {
        global,
        options: &args.registry,
        docker_config_only: false,
    };
    let side = opener.open(&args.image, true).await?;
    let source = side.source();
    if args.raw {
        let m = source.root().await?;
        println!("{}", String::from_utf8_lossy(&m.bytes));
        return Ok(());
    }
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let root = source.root().await?;
    let plan = berth_registry::plan(source, platform.as_ref()).await?;
    let image = &plan.images[0];
    let config: ImageConfig = match &image.config {
        Some(d) => serde_json::from_value(berth_registry::read_config(source, d).await?)
            .context("the image's config blob is not an OCI image configuration")?,
        None => ImageConfig::default(),
    };
    let run = config.config.unwrap_or_default();
    let out = json!({
        "Name": source.name(),
        "Digest": root.digest,
        "MediaType": root.media_type,
        "Platforms": root.manifests.iter().filter_map(|d| d.platform.as_ref().map(|p| p.to_string())).collect::<Vec<_>>(),
        "ImageDigest": image.digest,
        "Created": config.created,
        "Architecture": config.architecture,
        "Os": config.os,
        "Env": run.env,
        "Entrypoint": run.entrypoint,
        "Cmd": run.cmd,
        "WorkingDir": run.working_dir,
        "Labels": run.labels,
        "Layers": image.layers.iter().map(|l| json!({"Digest": l.digest, "Size": l.size, "MediaType": l.media_type})).collect::<Vec<_>>(),
        "Size": image.blobs().map(|d| d.size).sum::<u64>(),
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(())
}

pub async fn tags(global: &Global, args: &TagsArgs) -> anyhow::Result<()> {
    let opener = Opener {
        global,
        options: &args.registry,
        docker_config_only: false,
    };
    let side = opener.open(&args.repository, true).await?;
    let Side::Remote(remote) = side else {
        bail!("tags lists a registry repository: give HOST/REPO or ecr://INTEGRATION/REPO");
    };
    let tags = remote.client.tags(&remote.repository).await?;
    if global.output == Output::Json {
        println!("{}", json!({"repository": remote.repository, "tags": tags}));
    } else {
        for t in tags {
            println!("{t}");
        }
    }
    Ok(())
}

fn key_value(flag: &str, text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => bail!("{flag} '{text}' must be KEY=VALUE"),
    }
}

/// `["a","b"]` as given, or a shell-form command run by `/bin/sh -c` (as a Dockerfile does).
fn command_form(flag: &str, text: &str) -> anyhow::Result<Vec<String>> {
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(text)
            .with_context(|| format!("{flag} looks like a JSON array but is not one of strings"));
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), text.to_owned()])
}

pub async fn build(global: &Global, args: &crate::cli::BuildArgs) -> anyhow::Result<()> {
    let opener = Opener {
        global,
        options: &args.registry,
        docker_config_only: false,
    };
    let mut adds = Vec::new();
    for a in &args.add {
        let (src, dest) = a
            .rsplit_once(':')
            .with_context(|| format!("--add '{a}' must be SRC:DEST"))?;
        adds.push((std::path::PathBuf::from(src), dest.to_owned()));
    }
    let created = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse::<i64>()
            .with_context(|| format!("SOURCE_DATE_EPOCH '{v}' must be whole seconds since 1970"))?,
        Err(_) => 0,
    };
    let mut created_by = String::from("berth build");
    for a in &args.add {
        created_by.push_str(&format!(" --add {a}"));
    }
    let spec = berth_registry::BuildSpec {
        adds,
        env: args
            .env
            .iter()
            .map(|e| key_value("--env", e))
            .collect::<Result<_, _>>()?,
        entrypoint: args
            .entrypoint
            .as_deref()
            .map(|e| command_form("--entrypoint", e))
            .transpose()?,
        cmd: args
            .cmd
            .as_deref()
            .map(|c| command_form("--cmd", c))
            .transpose()?,
        workdir: args.workdir.clone(),
        labels: args
            .label
            .iter()
            .map(|l| key_value("--label", l))
            .collect::<Result<_, _>>()?,
        created,
        platform: args.platform.as_deref().map(Platform::parse).transpose()?,
        created_by,
    };
    let scratch;
    let opened;
    let base: &dyn Source = if args.from == "scratch" {
        scratch = berth_registry::Scratch::new(spec.platform.as_ref());
        &scratch
    } else {
        opened = opener.open(&args.from, true).await?;
        opened.source()
    };
    let destination = opener.open(&args.destination, false).await?;
    if args.registry.create_repo {
        create_repo(global, &args.destination).await?;
    }
    let work = std::env::temp_dir().join(format!("berth-build-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let result = async {
        let started = std::time::Instant::now();
        let built = berth_registry::build(base, &spec, &work).await?;
        let options = berth_registry::CopyOptions {
            platform: None,
            jobs: args.registry.jobs,
            tag: destination.tag().or_else(|| Some("latest".into())),
        };
        berth_registry::copy_plan(
            &built,
            destination.destination(),
            &built.plan,
            &options,
            progress(args.registry.progress),
            started,
        )
        .await
    }
    .await;
    let _ = std::fs::remove_dir_all(&work);
    let summary =
        result.with_context(|| format!("build on {} → {}", args.from, args.destination))?;
    finish(global, &summary);
    Ok(())
}
