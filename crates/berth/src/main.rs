//! `berth`: the CLI and server binary. Thin: it parses arguments, reads configuration and calls
//! the library crates. Exit codes: 0 ok, 1 failure, 2 usage.

#![forbid(unsafe_code)]
// No function over 100 lines in `src/`: a longer one is doing two jobs.
#![deny(clippy::too_many_lines)]

mod cli;
mod client;
mod commands;
mod config;
mod docker_config;
mod output;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use cli::{AdminCmd, Cli, Command};

/// Crates whose debug and trace output carries credentials (the AWS SDK's resolved identity
/// with its access key id, request and response bodies with registry passwords, HTTP headers):
/// whatever `BERTH_LOG` asks, they log at `info` at most.
const CHATTY_WITH_SECRETS: &[&str] = &["aws_", "hyper", "h2", "reqwest", "rustls", "axum", "sqlx"];

fn quiet_about_secrets(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() <= tracing::Level::INFO
        || !CHATTY_WITH_SECRETS
            .iter()
            .any(|prefix| meta.target().starts_with(prefix))
}

fn init_logging(server: bool) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::{FilterExt, filter_fn};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let default = if server {
        "info,sqlx=warn,tower_http=info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter.and(filter_fn(quiet_about_secrets)));
    tracing_subscriber::registry().with(layer).init();
}

/// Run as `docker-credential-berth ACTION`: the Docker credential-helper protocol.
fn credential_helper() -> Option<ExitCode> {
    let argv0 = std::env::args_os().next()?;
    let name = std::path::Path::new(&argv0)
        .file_name()?
        .to_string_lossy()
        .into_owned();
    if !name.starts_with("docker-credential-berth") {
        return None;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let action = std::env::args().nth(1).unwrap_or_default();
    let global = cli::Global {
        url: std::env::var("BERTH_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into()),
        token: std::env::var("BERTH_TOKEN").ok(),
        output: cli::Output::Json,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    Some(
        match runtime.block_on(commands::login::helper(&global, &action)) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("docker-credential-berth: {e:#}");
                ExitCode::FAILURE
            }
        },
    )
}

fn main() -> ExitCode {
    if let Some(code) = credential_helper() {
        return code;
    }
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_logging(matches!(
        cli.command,
        Command::Up(_) | Command::Serve(_) | Command::LocalEcr(_)
    ));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let global = cli.global.clone();
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => commands::serve::up(&args).await,
            Command::Serve(args) => commands::serve::serve(&args).await,
            Command::LocalEcr(args) => commands::serve::local_ecr(&args).await,
            Command::Integration(cmd) => commands::integration::run(&global, cmd).await,
            Command::Subscription(cmd) => commands::records::subscription(&global, cmd).await,
            Command::Project(cmd) => commands::records::project(&global, cmd).await,
            Command::Runtime(cmd) => commands::records::runtime(&global, cmd).await,
            Command::Resource(cmd) => commands::resources::resource(&global, cmd).await,
            Command::Images(cmd) => commands::images::images(&global, cmd).await,
            Command::Token(cmd) => commands::records::token(&global, cmd).await,
            Command::User(cmd) => commands::users::user(&global, cmd).await,
            Command::Gitops(cmd) => commands::gitops::gitops(&global, cmd).await,
            Command::Admin(AdminCmd::RotateKey(args)) => {
                commands::admin::rotate_key(&global, &args).await
            }
            Command::Login(a) => {
                let options = commands::login::LoginOptions {
                    integration: a.integration,
                    region: a.region,
                    print: a.print,
                    format: a.format,
                    helper: a.helper,
                    secret_name: a.secret_name,
                    namespace: a.namespace,
                };
                commands::login::login(&global, options).await
            }
            Command::Logout { integration } => commands::login::logout(&integration),
            Command::Ci(cli::CiCmd::Login(args)) => commands::ci::login(&global, &args).await,
            Command::Ci(cli::CiCmd::Logout) => commands::ci::logout(),
            Command::Ci(cli::CiCmd::Resolve(t)) => commands::ci::show_resolution(&global, &t).await,
            Command::Ci(cli::CiCmd::CheckDockerfile(a)) => {
                commands::ci::check_dockerfile(&global, &a).await
            }
            Command::Ci(cli::CiCmd::BootImage(a)) => commands::ci::boot_image(&global, &a).await,
            Command::Push(a) | Command::Pull(a) | Command::Copy(a) => {
                commands::transfer::copy(&global, &a).await
            }
            Command::Build(a) => commands::transfer::build(&global, &a).await,
            Command::Inspect(a) => commands::transfer::inspect(&global, &a).await,
            Command::Tags(a) => commands::transfer::tags(&global, &a).await,
            Command::Ci(cli::CiCmd::ResourceEnv(args)) => {
                commands::ci::resource_env(&global, &args).await
            }
            Command::Ci(cli::CiCmd::PostResourceState(args)) => {
                commands::resources::post_state(&global, &args).await
            }
            Command::Ci(cli::CiCmd::ReportImage(args)) => {
                commands::images::report(&global, &args).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
