//! The command line, as clap sees it. Handlers live in `commands/`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "Registry integrations for CI/CD: define once, get short-lived credentials anywhere"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone)]
pub struct Global {
    /// Berth server URL.
    #[arg(
        long,
        global = true,
        env = "BERTH_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// API token (admin or subscription).
    #[arg(long, global = true, env = "BERTH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server with embedded defaults (SQLite and key file under ./berth-data) and the
    /// local ECR beside it, and print how to reach both.
    Up(UpArgs),
    /// Run only the local ECR (ECR API, STS and registry v2 on one listener).
    LocalEcr(LocalEcrArgs),
    /// Run the server (for deployments: configure with berth.toml, BERTH_* or flags).
    Serve(ServeArgs),
    /// Registry integrations.
    #[command(subcommand)]
    Integration(IntegrationCmd),
    /// CI subscriptions (organisations).
    #[command(subcommand)]
    Subscription(SubscriptionCmd),
    /// CI projects (ORG/REPO), each in one subscription.
    #[command(subcommand)]
    Project(ProjectCmd),
    /// A project's image resources and their versions.
    #[command(subcommand)]
    Resource(ResourceCmd),
    /// What CI reported about images: digests with their commits, pull requests and issues.
    #[command(subcommand)]
    Images(ImagesCmd),
    /// GitOps runtimes (clusters).
    #[command(subcommand)]
    Runtime(RuntimeCmd),
    /// The shared GitOps configuration repository: settings, sync status, diff, reconcile.
    #[command(subcommand)]
    Gitops(GitOpsCmd),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// People who sign in to the web pages.
    #[command(subcommand)]
    User(UserCmd),
    /// Log in to an integration's registry: writes the Docker config (or prints credentials).
    Login(LoginArgs),
    /// Remove what `berth login` added for an integration.
    Logout { integration: String },
    /// CI jobs: log in to the integrations a project's shippable.yml names for this branch.
    #[command(subcommand)]
    Ci(CiCmd),
    /// Offline administration on the data directory or database.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Copy an image from a local OCI layout or Docker archive to a registry.
    Push(TransferArgs),
    /// Copy an image from a registry to a local OCI layout or Docker archive.
    Pull(TransferArgs),
    /// Copy an image between any two locations (registries, OCI layouts, Docker archives).
    Copy(TransferArgs),
    /// Build an image without a daemon: a base image plus files, environment and settings.
    Build(BuildArgs),
    /// Show an image's manifest, config and layers.
    Inspect(InspectArgs),
    /// List the tags of a repository.
    Tags(TagsArgs),
}

/// How the transfer commands reach registries.
#[derive(Args, Clone)]
pub struct RegistryOptions {
    /// Use plain HTTP for registries on these hosts (loopback hosts always do).
    #[arg(long = "plain-http", value_name = "HOST")]
    pub plain_http: Vec<String>,
    /// Credentials USER:PASSWORD for the source registry (default: Berth, then the Docker config).
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "BERTH_SRC_CREDS",
        hide_env_values = true
    )]
    pub src_creds: Option<String>,
    /// Credentials USER:PASSWORD for the destination registry.
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "BERTH_DEST_CREDS",
        hide_env_values = true
    )]
    pub dest_creds: Option<String>,
    /// Create the destination ECR repository when it does not exist (ECR does not create on push).
    #[arg(long)]
    pub create_repo: bool,
    /// Blobs moved at once.
    #[arg(long, default_value_t = 8)]
    pub jobs: usize,
    /// Progress display: bars on a terminal, one line per event otherwise.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    Auto,
    Bars,
    Plain,
    None,
}

#[derive(Args, Clone)]
pub struct TransferArgs {
    /// oci:DIR[:TAG], docker-archive:FILE[:REF], ecr://INTEGRATION/REPO:TAG or HOST/REPO:TAG.
    pub source: String,
    /// Where to put it (same forms).
    pub destination: String,
    /// Copy only this platform of a multi-platform image, like linux/arm64.
    #[arg(long)]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryOptions,
}

#[derive(Args, Clone)]
pub struct BuildArgs {
    /// The base image (any location form), or `scratch` for an empty one.
    #[arg(long)]
    pub from: String,
    /// Add a file or directory: SRC:DEST (DEST is an absolute path in the image).
    #[arg(long = "add", value_name = "SRC:DEST")]
    pub add: Vec<String>,
    /// Set an environment variable K=V.
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Entrypoint, as a JSON array or a single command.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Default command, as a JSON array or a single command.
    #[arg(long)]
    pub cmd: Option<String>,
    #[arg(long)]
    pub workdir: Option<String>,
    /// Set a label K=V.
    #[arg(long = "label", value_name = "K=V")]
    pub label: Vec<String>,
    /// Build for one platform of a multi-platform base (default: every platform).
    #[arg(long)]
    pub platform: Option<String>,
    /// Where to push the result (any location form).
    pub destination: String,
    #[command(flatten)]
    pub registry: RegistryOptions,
}

#[derive(Args, Clone)]
pub struct InspectArgs {
    pub image: String,
    /// Print the manifest exactly as stored.
    #[arg(long)]
    pub raw: bool,
    /// Inspect this platform of a multi-platform image.
    #[arg(long)]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryOptions,
}

#[derive(Args, Clone)]
pub struct TagsArgs {
    /// HOST/REPO or ecr://INTEGRATION/REPO.
    pub repository: String,
    #[command(flatten)]
    pub registry: RegistryOptions,
}

#[derive(Args, Clone, Default)]
pub struct ServeArgs {
    /// Configuration file [default: ./berth.toml when it exists].
    #[arg(long, env = "BERTH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory: SQLite database, master key file, initial admin token [default: ./berth-data].
    #[arg(long, env = "BERTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "BERTH_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Database: postgres://… for shared PostgreSQL [default: SQLite in the data directory].
    #[arg(long, env = "BERTH_DATABASE_URL", hide_env_values = true)]
    pub database: Option<String>,
    /// Master key file [default: <data-dir>/master.key]; BERTH_MASTER_KEY (base64) overrides it.
    #[arg(long, env = "BERTH_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
}

#[derive(Args, Clone)]
pub struct LoginArgs {
    pub integration: String,
    /// Registry region, when not the integration's own.
    #[arg(long)]
    pub region: Option<String>,
    /// Print the password to stdout (for `docker login --username AWS --password-stdin`).
    #[arg(long, conflicts_with_all = ["helper", "format"])]
    pub print: bool,
    /// Output: write the Docker config, or print a kubernetes.io/dockerconfigjson Secret.
    #[arg(long, value_enum, default_value_t = LoginFormat::DockerConfig)]
    pub format: LoginFormat,
    /// Point credHelpers at docker-credential-berth instead of storing a password.
    #[arg(long)]
    pub helper: bool,
    /// Name of the Kubernetes Secret [default: berth-<integration>].
    #[arg(long)]
    pub secret_name: Option<String>,
    /// Namespace of the Kubernetes Secret.
    #[arg(long)]
    pub namespace: Option<String>,
}

#[derive(Subcommand)]
pub enum CiCmd {
    /// Resolve the hub entries that apply, log in to each, write an env file for later steps.
    Login(CiLoginArgs),
    /// Remove every registry entry Berth logins added to the Docker config.
    Logout,
    /// Show which hub entries apply to this build, their registries and regions, and why the
    /// others are skipped, without logging in (records the project's dependencies, as login does).
    Resolve(CiTarget),
    /// Check that every base image a Dockerfile's FROM lines name is pullable with the current
    /// Docker config (what docker, buildah and kaniko will use), naming any that is not and why.
    CheckDockerfile(CheckDockerfileArgs),
    /// The custom CI image of build.pre_ci_boot: check it is pullable through the integrations,
    /// and with `pull: true` pull it to an OCI layout.
    BootImage(BootImageArgs),
    /// Print the environment a pipeline job sees for its resources (KEY='value' lines); an
    /// image resource's version as <NAME>_VERSIONNAME, _VERSIONNUMBER and _VERSIONDIGEST.
    ResourceEnv(ResourceEnvArgs),
    /// Record a version of an image resource (as `shipctl post_resource_state`): Berth reads
    /// the digest the tag has now through the integration; the job needs no registry login.
    PostResourceState(PostResourceStateArgs),
    /// Report an image this build made: Berth reads its digest, size and platforms through the
    /// integration and links it to the commit, pull request and issues the CI variables (or the
    /// flags) name.
    ReportImage(ReportImageArgs),
}

#[derive(Args, Clone)]
pub struct ReportImageArgs {
    /// `registry/repository:tag` or `…@sha256:…`.
    pub image: String,
    /// Read it through this integration [default: the one serving its registry].
    #[arg(long)]
    pub integration: Option<String>,
    #[arg(long, env = "BERTH_PROJECT")]
    pub project: String,
    /// Override what the CI variables say:
    #[arg(long)]
    pub commit: Option<String>,
    #[arg(long)]
    pub branch: Option<String>,
    #[arg(long)]
    pub repository_url: Option<String>,
    #[arg(long)]
    pub author: Option<String>,
    #[arg(long)]
    pub message: Option<String>,
    #[arg(long = "pr", value_name = "NUMBER")]
    pub pull_request: Option<String>,
    #[arg(long = "pr-url")]
    pub pull_request_url: Option<String>,
    #[arg(long = "pr-title")]
    pub pull_request_title: Option<String>,
    #[arg(long)]
    pub build_url: Option<String>,
    /// Issue keys are these prefixes' (DEV,OPS)…
    #[arg(long, env = "BERTH_ISSUE_PREFIXES", conflicts_with = "issue_pattern")]
    pub issue_prefixes: Option<String>,
    /// …or this regular expression's matches (/[A-Z]{2,}-\d+/) [default: PROJ-123 keys].
    #[arg(long, env = "BERTH_ISSUE_PATTERN")]
    pub issue_pattern: Option<String>,
    /// The tracker's page of a key is this URL and the key.
    #[arg(long, env = "BERTH_ISSUE_TRACKER_URL")]
    pub issue_tracker_url: Option<String>,
}

/// `berth images …`: what CI reported about images, by digest.
#[derive(Subcommand)]
pub enum ImagesCmd {
    /// Reported digests, newest first.
    List {
        /// `registry/repository`
        #[arg(long)]
        repository: Option<String>,
        #[arg(long)]
        tag: Option<String>,
        /// An issue key.
        #[arg(long)]
        issue: Option<String>,
        #[arg(long)]
        commit: Option<String>,
    },
    /// One digest: its reports, tags, commits, pull requests, issues and resource versions.
    Show { digest: String },
}

#[derive(Args, Clone)]
pub struct ResourceEnvArgs {
    #[arg(long, default_value = "shippable.yml")]
    pub file: std::path::PathBuf,
    #[arg(long, env = "BERTH_PROJECT")]
    pub project: String,
    /// Include secret values (AWS keys or session credentials).
    #[arg(long)]
    pub with_secrets: bool,
    /// Pin the one image resource named to this version number.
    #[arg(long, value_name = "N", conflicts_with = "version_name")]
    pub version_number: Option<i64>,
    /// Pin the one image resource named to the newest version of this tag.
    #[arg(long, value_name = "TAG")]
    pub version_name: Option<String>,
    /// Resource names [default: every image, integration and cliConfig resource].
    pub resources: Vec<String>,
}

#[derive(Args, Clone)]
pub struct PostResourceStateArgs {
    /// The image resource (defined in --file, or already known to Berth).
    pub resource: String,
    /// `versionName=TAG` (default: the tag the resource follows) and other `key=value` facts
    /// kept with a new version (commit=…, buildNumber=…).
    #[arg(value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    #[arg(long, default_value = "shippable.yml")]
    pub file: std::path::PathBuf,
    #[arg(long, env = "BERTH_PROJECT")]
    pub project: String,
}

/// `berth resource …`: a project's image resources and their versions.
#[derive(Subcommand)]
pub enum ResourceCmd {
    /// Define (or redefine) an image resource: the tag it follows, and how often Berth polls it.
    Add {
        /// ORG/REPO
        project: String,
        name: String,
        #[arg(long)]
        integration: String,
        /// registry/repository, without a tag.
        #[arg(long)]
        source_name: String,
        /// The tag followed [default: latest].
        #[arg(long)]
        version_name: Option<String>,
        /// Seconds between polls (0: never; versions then come from CI and push events).
        #[arg(long)]
        poll_seconds: Option<i64>,
    },
    /// The project's image resources.
    List { project: String },
    /// One resource: what it follows, its polling and its newest version number.
    Show { project: String, name: String },
    /// Its versions, newest first.
    Versions {
        project: String,
        name: String,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// A new secret for its push events (shown once; the previous one stops working).
    EventSecret { project: String, name: String },
    /// Delete it and its versions (admin).
    Delete { project: String, name: String },
    /// Announce its new versions to URL, signed with HMAC-SHA256 (admin). The key is read from
    /// stdin with --secret-stdin, else made and shown once.
    AddTrigger {
        project: String,
        name: String,
        url: String,
        #[arg(long)]
        secret_stdin: bool,
    },
    /// Its triggers and their delivery log.
    Triggers { project: String, name: String },
    /// Stop announcing to a trigger (admin).
    RemoveTrigger {
        project: String,
        name: String,
        id: String,
    },
}

#[derive(Args, Clone)]
pub struct CiLoginArgs {
    #[command(flatten)]
    pub target: CiTarget,
    /// Where to write BERTH_REGISTRY_<NAME>=host lines for later steps.
    #[arg(long, default_value = "berth-registries.env")]
    pub env_file: std::path::PathBuf,
    /// Point credHelpers at docker-credential-berth instead of storing passwords.
    #[arg(long)]
    pub helper: bool,
}

/// Which build a `berth ci` command is for: the file, the project and the branch or tag.
#[derive(Args, Clone)]
pub struct CiTarget {
    #[arg(long, default_value = "shippable.yml")]
    pub file: std::path::PathBuf,
    /// ORG/REPO [default: from the CI's environment: GITHUB_REPOSITORY, CI_PROJECT_PATH, REPO_FULL_NAME].
    #[arg(long, env = "BERTH_PROJECT")]
    pub project: Option<String>,
    /// Branch [default: from the CI's environment: GITHUB_REF_NAME, CI_COMMIT_BRANCH, BRANCH, GIT_BRANCH].
    #[arg(long, conflicts_with = "tag")]
    pub branch: Option<String>,
    /// Release tag, instead of a branch [default: CI_COMMIT_TAG, GIT_TAG_NAME, GITHUB_REF_NAME of a tag].
    #[arg(long)]
    pub tag: Option<String>,
}

#[derive(Args, Clone)]
pub struct BootImageArgs {
    #[command(flatten)]
    pub target: CiTarget,
    /// Where `pull: true` puts the image (an OCI layout).
    #[arg(long, default_value = "berth-boot-image")]
    pub output_dir: std::path::PathBuf,
    #[command(flatten)]
    pub registry: RegistryOptions,
}

#[derive(Args, Clone)]
pub struct CheckDockerfileArgs {
    /// The Dockerfile to read.
    #[arg(default_value = "Dockerfile")]
    pub dockerfile: std::path::PathBuf,
    /// Build arguments K=V, as `docker build --build-arg` would get them.
    #[arg(long = "build-arg", value_name = "K=V")]
    pub build_arg: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryOptions,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
pub enum LoginFormat {
    DockerConfig,
    K8sSecret,
}

#[derive(Args, Clone)]
pub struct UpArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Address of the local ECR.
    #[arg(long, env = "BERTH_LOCAL_ECR_LISTEN", default_value = "127.0.0.1:5080")]
    pub local_ecr_listen: SocketAddr,
    /// Do not start the local ECR.
    #[arg(long)]
    pub no_local_ecr: bool,
}

#[derive(Args, Clone)]
pub struct LocalEcrArgs {
    /// Data directory; the local ECR keeps its files in <data-dir>/local-ecr.
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "berth-data")]
    pub data_dir: PathBuf,
    #[arg(long, env = "BERTH_LOCAL_ECR_LISTEN", default_value = "127.0.0.1:5080")]
    pub listen: SocketAddr,
    /// URL clients reach it at, when not the listen address (proxyEndpoint, repository URIs).
    #[arg(long, env = "BERTH_LOCAL_ECR_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Create repositories on first push (real ECR does not).
    #[arg(long)]
    pub create_on_push: bool,
    /// Registry token lifetime in seconds [default: 43200, as ECR].
    #[arg(long, default_value_t = 43200)]
    pub token_ttl: u64,
    /// Smallest chunk but the last a chunked upload accepts, in bytes [default: 5 MiB, as ECR];
    /// 0 accepts any size, for development.
    #[arg(long, default_value_t = berth_ecr_local::UploadLimits::default().min_part)]
    pub min_chunk_size: u64,
    /// Where layer downloads are served (ADDR or `off`): blob GETs on /v2/ redirect there, as
    /// ECR's go to S3 [default: a free port on the listen address, or off with --public-url];
    /// `off` serves them in line.
    #[arg(long, env = "BERTH_LOCAL_ECR_LAYER_LISTEN", value_parser = layer_listen)]
    pub layer_listen: Option<berth_ecr_local::LayerListen>,
    /// URL the layer redirects point at, when not the layer listener's own address.
    #[arg(long, env = "BERTH_LOCAL_ECR_LAYER_PUBLIC_URL")]
    pub layer_public_url: Option<String>,
    /// Keep blobs in S3-compatible object storage, `s3://BUCKET[/PREFIX]` (credentials from the
    /// AWS chain: AWS_ACCESS_KEY_ID…, a profile, IMDS); blob GETs redirect to pre-signed URLs
    /// [default: files in the data directory].
    #[arg(
        long,
        env = "BERTH_LOCAL_ECR_BLOB_STORE",
        value_name = "s3://BUCKET[/PREFIX]"
    )]
    pub blob_store: Option<String>,
    /// The object store's URL, for Garage, MinIO and others (path-style addressing).
    #[arg(long, env = "BERTH_LOCAL_ECR_S3_ENDPOINT", requires = "blob_store")]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = "BERTH_LOCAL_ECR_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
}

fn layer_listen(value: &str) -> Result<berth_ecr_local::LayerListen, String> {
    match value {
        "off" => Ok(berth_ecr_local::LayerListen::Off),
        v => v
            .parse()
            .map(berth_ecr_local::LayerListen::At)
            .map_err(|_| format!("'{v}' is neither an address (host:port) nor 'off'")),
    }
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    AccessKeys,
    AssumeRole,
    Ambient,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
pub enum RoleSource {
    Ambient,
    AccessKeys,
}

/// Settings shared by `integration add` and `integration edit`.
#[derive(Args, Clone, Default)]
pub struct IntegrationFields {
    /// AWS region [add default: us-east-1].
    #[arg(long)]
    pub region: Option<String>,
    /// How Berth gets AWS credentials [add default: access-keys].
    #[arg(long, value_enum)]
    pub auth: Option<AuthMode>,
    /// AWS access key id (access-keys mode, or the source of assume-role).
    #[arg(long)]
    pub access_key_id: Option<String>,
    /// Read the secret access key from this file.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["secret_access_key_stdin", "secret_access_key"])]
    pub secret_access_key_file: Option<PathBuf>,
    /// Read the secret access key from standard input.
    #[arg(long, conflicts_with = "secret_access_key")]
    pub secret_access_key_stdin: bool,
    /// The secret itself (discouraged: it ends up in shell history and `ps`).
    #[arg(long, hide = true)]
    pub secret_access_key: Option<String>,
    /// IAM role to assume (assume-role mode).
    #[arg(long)]
    pub role_arn: Option<String>,
    /// External id for AssumeRole.
    #[arg(long)]
    pub external_id: Option<String>,
    /// Session name for AssumeRole [default: berth-<integration>].
    #[arg(long)]
    pub session_name: Option<String>,
    /// Credentials the role is assumed with [default: ambient].
    #[arg(long, value_enum)]
    pub role_source: Option<RoleSource>,
    /// Registry (AWS account) id, 12 digits.
    #[arg(long)]
    pub registry_id: Option<String>,
    /// Endpoint override (local ECR, FIPS or China endpoints).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Let CI jobs receive the long-lived access keys themselves (`true`), for tools that cannot
    /// use session tokens; by default (`false`) they get short-lived STS sessions. Audited.
    #[arg(long, value_name = "BOOL")]
    pub export_long_lived_keys: Option<bool>,
    /// Subscription that may use the integration (repeat for several).
    #[arg(long = "subscription", value_name = "NAME")]
    pub subscriptions: Vec<String>,
    /// Share with every runtime.
    #[arg(long, conflicts_with = "runtimes")]
    pub all_runtimes: bool,
    /// Share with this runtime (repeat for several).
    #[arg(long = "runtime", value_name = "NAME")]
    pub runtimes: Vec<String>,
}

#[derive(Subcommand)]
pub enum IntegrationCmd {
    /// Add an integration. The secret access key is prompted for, or read from a file or stdin.
    Add {
        name: String,
        #[arg(long = "type", default_value = "ecr")]
        kind: String,
        #[command(flatten)]
        fields: IntegrationFields,
    },
    /// List integrations, optionally filtered.
    List {
        #[arg(long = "type")]
        kind: Option<String>,
        /// Case-insensitive part of the name.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        subscription: Option<String>,
        /// Page size; all pages are fetched.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one integration (secrets masked).
    Show { name: String },
    /// Change an integration; what is not given stays as it is.
    Edit {
        name: String,
        /// New name.
        #[arg(long)]
        rename: Option<String>,
        /// Remove the endpoint override.
        #[arg(long, conflicts_with = "endpoint")]
        clear_endpoint: bool,
        /// Remove the registry id.
        #[arg(long, conflicts_with = "registry_id")]
        clear_registry_id: bool,
        /// Replace the subscriptions with none.
        #[arg(long, conflicts_with = "subscriptions")]
        no_subscriptions: bool,
        #[command(flatten)]
        fields: IntegrationFields,
    },
    /// Test connection: each step from the credentials to the registry, then whether each
    /// runtime's cluster role is trusted by the integration's role. Exits 1 when a step fails.
    Test {
        name: String,
        /// Test another region than the integration's own.
        #[arg(long)]
        region: Option<String>,
    },
    /// Delete an integration (refused, with the list, while anything depends on it).
    Delete { name: String },
    /// What uses an integration: projects, environments, subscription images, pipeline
    /// resources, runtimes.
    Dependencies { name: String },
}

#[derive(Subcommand)]
pub enum SubscriptionCmd {
    Add { name: String },
    List,
}

#[derive(Subcommand)]
pub enum ProjectCmd {
    Add {
        /// ORG/REPO
        name: String,
        #[arg(long)]
        subscription: String,
    },
    List {
        #[arg(long)]
        subscription: Option<String>,
    },
    /// Delete a project; releases the integrations its builds and pipelines depended on.
    Delete {
        /// ORG/REPO
        name: String,
    },
    /// Forget the dependencies the project's builds recorded, keeping the project; its next
    /// build records again what it still uses.
    ReleaseDependencies {
        /// ORG/REPO
        name: String,
    },
}

#[derive(Subcommand)]
pub enum RuntimeCmd {
    Add {
        name: String,
        /// PEM certificate of the cluster's sealed-secrets controller: a file, or the
        /// controller's URL (`http://…/v1/cert.pem`).
        #[arg(long, value_name = "FILE|URL")]
        sealing_cert: Option<String>,
        /// Namespace its GitOps resources are applied in [default: the repository's].
        #[arg(long)]
        namespace: Option<String>,
        /// The IAM role the cluster assumes integration roles as; Test connection checks that
        /// the roles shared with the runtime trust it.
        #[arg(long, value_name = "ARN")]
        cluster_role: Option<String>,
    },
    /// Print an image pull secret for a cluster: fresh credentials as a dockerconfigjson Secret
    /// (apply it, do not commit it), or `--external-secrets` for an ExternalSecret that lets the
    /// cluster's operator mint and refresh the token itself.
    PullSecret {
        runtime: String,
        integration: String,
        #[arg(long, default_value = "default")]
        namespace: String,
        /// The Secret's name [default: <integration>-pull-secret].
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        external_secrets: bool,
    },
    /// Move the runtime's GitOps resources to another namespace (one commit).
    SetNamespace {
        name: String,
        namespace: String,
    },
    /// Record the IAM role the runtime's cluster assumes integration roles as (Test connection
    /// checks their trust policies allow it), or forget it with `--clear`.
    SetClusterRole {
        name: String,
        #[arg(
            value_name = "ARN",
            required_unless_present = "clear",
            conflicts_with = "clear"
        )]
        arn: Option<String>,
        #[arg(long)]
        clear: bool,
    },
    /// Replace the runtime's sealing certificate; its SealedSecrets are re-sealed in one commit.
    SetCert {
        name: String,
        /// A file, or the controller's URL (`http://…/v1/cert.pem`).
        #[arg(long, value_name = "FILE|URL")]
        sealing_cert: String,
    },
    List,
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Mint a token for one subscription (printed once).
    Create {
        #[arg(long)]
        subscription: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Replace the admin token (offline: works on the data directory or database directly).
    RotateAdmin(ServeArgs),
}

#[derive(Subcommand)]
pub enum GitOpsCmd {
    /// Set the repository: `<repo_url>.git[/<path>][?ref=<branch>]` (checked before it is saved).
    Configure {
        repo: String,
        /// HTTPS user name for the push.
        #[arg(long)]
        username: Option<String>,
        /// Read the HTTPS token or password from stdin (sealed; never on the command line).
        #[arg(long)]
        password_stdin: bool,
        /// PEM certificate that `resources/all-runtimes-all-clusters/` is sealed for.
        #[arg(long)]
        account_cert: Option<PathBuf>,
        /// Namespace of the written resources [default: codefresh].
        #[arg(long)]
        namespace: Option<String>,
    },
    /// Show the repository settings (never the password).
    Show,
    /// Each integration's sync status: SYNCED, OUT_OF_SYNC (and why), SYNCING or UNKNOWN.
    Status,
    /// The repository's difference from what Berth would write, as a unified diff.
    Diff,
    /// Re-write the repository from Berth in one commit.
    Reconcile,
    /// Adopt the integrations the repository holds and Berth does not.
    Import,
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Add a user; the password is read from stdin when it is not a terminal, else prompted.
    Add {
        name: String,
        /// An admin, who may change everything.
        #[arg(
            long,
            conflicts_with = "subscription",
            required_unless_present = "subscription"
        )]
        admin: bool,
        /// The subscription a member belongs to; they see only its integrations.
        #[arg(long)]
        subscription: Option<String>,
    },
    /// Set a user's password (read like `add`'s) and end their sessions.
    Passwd { name: String },
    /// Delete a user and end their sessions.
    Delete { name: String },
    /// List users.
    List,
}

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Re-seal every secret under a new master key, in one transaction. With BERTH_MASTER_KEY,
    /// the new key is read from BERTH_NEW_MASTER_KEY or generated and printed.
    RotateKey(ServeArgs),
}
